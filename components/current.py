"""What Cloud Foundry holds now, read in bulk by the program (read-only).

The guards compare the plan with this before a single resource is
registered. A read failure raises: the program must stop rather than plan
against an unknown foundation.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from components.cloudfoundry import shared_read
from components.cloudfoundry.client import CloudFoundryClient, client_for
from components.cloudfoundry.models import CfUser, Role, user_key

if TYPE_CHECKING:
    from components.settings import CfConnection

# (scope label, role type) -> member keys holding it now
Holders = dict[tuple[str, str], frozenset[str]]


@dataclass(frozen=True)
class CurrentAccess:
    holders: Holders = field(default_factory=dict)
    # scope labels that exist in CF: "org" and "org/space"
    scopes: frozenset[str] = frozenset()

    def of(self, scope: str, role: str) -> frozenset[str]:
        return self.holders.get((scope, role), frozenset())


def read_current_access(
    connection: CfConnection,
    orgs: Collection[str],
    shared: shared_read.FoundationRead | None = None,
    client: CloudFoundryClient | None = None,
) -> tuple[CurrentAccess, str]:
    """Role holders in the given orgs and their spaces (users without a username, i.e.
    UAA clients, are left out), and where they came from.

    ``shared``: this run's refresh read (shared_read.py), used instead of reading CF again.
    ``client``: the program's open client (its token is reused); one is opened otherwise."""
    if shared is not None:
        scope_of, roles, users = _from_shared(shared, set(orgs))
        source = f"the refresh read of this run ({time.time() - shared.taken_at:.1f} s old)"
    elif client is not None:
        scope_of, roles, users = _read_mapped_orgs(client, set(orgs))
        source = f"a bulk read of {connection.api_url}"
    else:
        with client_for(connection) as own:
            scope_of, roles, users = _read_mapped_orgs(own, set(orgs))
        source = f"a bulk read of {connection.api_url}"
    holders: dict[tuple[str, str], set[str]] = defaultdict(set)
    for role in roles:
        scope = scope_of.get(role.space_guid or role.org_guid or "")
        user = users.get(role.user_guid)
        key = user_key(user) if user is not None else None
        if scope is not None and key is not None:
            holders[(scope, role.type)].add(key)
    current = CurrentAccess(
        holders={k: frozenset(v) for k, v in holders.items()},
        scopes=frozenset(scope_of.values()),
    )
    return current, source


def _from_shared(
    read: shared_read.FoundationRead, wanted: set[str]
) -> tuple[dict[str, str], list[Role], dict[str, CfUser]]:
    """The same as _read_mapped_orgs, from a whole-foundation read."""
    org_names = {org.guid: org.name for org in read.orgs if org.name in wanted}
    scope_of = dict(org_names)
    for space in read.spaces:
        if space.org_guid in org_names:
            scope_of[space.guid] = f"{org_names[space.org_guid]}/{space.name}"
    roles = [r for r in read.roles if (r.space_guid or r.org_guid or "") in scope_of]
    return scope_of, roles, {u.guid: u for u in read.users}


def _read_mapped_orgs(
    client: CloudFoundryClient, wanted: set[str]
) -> tuple[dict[str, str], list[Role], dict[str, CfUser]]:
    """({scope guid: scope label}, roles, {user guid: user}) of the mapped orgs that exist."""
    if not wanted:
        return {}, [], {}
    # All orgs: one page per 5,000 - fewer calls than a names filter split over requests.
    all_orgs = client.list_orgs()
    org_names = {org.guid: org.name for org in all_orgs if org.name in wanted}
    if not org_names:
        return {}, [], {}
    # When the mappings cover most of the foundation, unfiltered lists are fewer calls than
    # guid filters split over many requests (11 instead of 24 at 400 orgs x 5 spaces).
    whole = 2 * len(org_names) >= len(all_orgs)
    if whole:
        spaces = [s for s in client.list_spaces() if s.org_guid in org_names]
    else:
        spaces = client.list_spaces(org_guids=list(org_names))
    scope_of = dict(org_names)
    for space in spaces:
        scope_of[space.guid] = f"{org_names[space.org_guid]}/{space.name}"
    if whole:
        roles, users = client.list_roles(include_users=True)
        return scope_of, roles, users
    roles, users = client.list_roles(organization_guids=list(org_names), include_users=True)
    if spaces:
        space_roles, space_users = client.list_roles(space_guids=[s.guid for s in spaces], include_users=True)
        roles += space_roles
        users.update(space_users)
    return scope_of, roles, users
