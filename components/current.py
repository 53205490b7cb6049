"""What Cloud Foundry holds now, read in bulk by the program (read-only).

The guards compare the plan with this before a single resource is
registered. A read failure raises: the program must stop rather than plan
against an unknown foundation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from components.cloudfoundry.client import CloudFoundryClient
from components.cloudfoundry.models import user_key

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


def read_current_access(connection: CfConnection, orgs: Collection[str]) -> CurrentAccess:
    """Role holders in the given orgs and their spaces (users without a
    username, i.e. UAA clients, are left out)."""
    with CloudFoundryClient(
        connection.api_url,
        connection.client_id,
        connection.client_secret.get_secret_value(),
        concurrency=connection.concurrency,
        verify_tls=not connection.skip_tls_verify,
    ) as client:
        found = {org.name: org for org in client.list_orgs(names=sorted(orgs))} if orgs else {}
        spaces = client.list_spaces(org_guids=[org.guid for org in found.values()]) if found else []
        org_names = {org.guid: org.name for org in found.values()}
        scope_of: dict[str, str] = dict(org_names.items())
        for space in spaces:
            scope_of[space.guid] = f"{org_names[space.org_guid]}/{space.name}"
        holders: dict[tuple[str, str], set[str]] = defaultdict(set)
        if found:
            org_roles, users = client.list_roles(organization_guids=list(org_names), include_users=True)
            space_roles, space_users = (
                client.list_roles(space_guids=[s.guid for s in spaces], include_users=True)
                if spaces
                else ([], {})
            )
            users.update(space_users)
            for role in [*org_roles, *space_roles]:
                scope = scope_of.get(role.space_guid or role.org_guid or "")
                user = users.get(role.user_guid)
                key = user_key(user) if user is not None else None
                if scope is not None and key is not None:
                    holders[(scope, role.type)].add(key)
    return CurrentAccess(
        holders={k: frozenset(v) for k, v in holders.items()},
        scopes=frozenset(scope_of.values()),
    )
