"""What a Cloud Foundry foundation holds now, read once for the CLI (read-only).

Four bulk reads (orgs, spaces, users, roles with their users) through the
program's own client, turned into plain data the ``doctor``, ``why`` and
``export`` logic work on - so that logic is pure and tested without a server.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from components.cloudfoundry.client import client_for
from components.cloudfoundry.models import CfUser
from components.current import CurrentAccess
from components.settings import CfConnection


@dataclass(frozen=True)
class HeldRole:
    """One role as CF holds it, by names."""

    org: str
    space: str | None
    role: str
    user_guid: str

    @property
    def scope(self) -> str:
        return self.org if self.space is None else f"{self.org}/{self.space}"

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.org, self.space or "", self.role, self.user_guid)


@dataclass
class Inventory:
    orgs: set[str] = field(default_factory=set)
    spaces: set[tuple[str, str]] = field(default_factory=set)
    users: dict[str, CfUser] = field(default_factory=dict)  # guid -> user
    roles: list[HeldRole] = field(default_factory=list)
    api_url: str = ""

    def user_key(self, guid: str) -> str | None:
        """``origin/username`` (username case-folded, as cf-access keys members); None for clients."""
        user = self.users.get(guid)
        if user is None or not user.username or not user.origin:
            return None
        return f"{user.origin}/{user.username.casefold()}"

    def keyed_roles(self) -> Iterator[tuple[str, HeldRole]]:
        for role in self.roles:
            key = self.user_key(role.user_guid)
            if key is not None:
                yield key, role

    def current_access(self) -> CurrentAccess:
        """The same view of CF the program's guards take (components/current.py)."""
        holders: dict[tuple[str, str], set[str]] = defaultdict(set)
        for key, role in self.keyed_roles():
            holders[(role.scope, role.role)].add(key)
        scopes = set(self.orgs) | {f"{org}/{space}" for org, space in self.spaces}
        return CurrentAccess(holders={k: frozenset(v) for k, v in holders.items()}, scopes=frozenset(scopes))

    def roles_of(self, key: str) -> list[HeldRole]:
        return sorted((r for k, r in self.keyed_roles() if k == key), key=HeldRole.sort_key)


def read_inventory(connection: CfConnection) -> Inventory:
    with client_for(connection) as client:
        orgs = {o.guid: o.name for o in client.list_orgs()}
        spaces = {s.guid: (orgs.get(s.org_guid, "?"), s.name) for s in client.list_spaces()}
        users = {u.guid: u for u in client.list_users()}
        roles, included = client.list_roles(include_users=True)
    for guid, user in included.items():
        users.setdefault(guid, user)
    held: list[HeldRole] = []
    for role in roles:
        if role.space_guid is not None:
            if role.space_guid not in spaces:
                continue
            org, space = spaces[role.space_guid]
            held.append(HeldRole(org, space, role.type, role.user_guid))
        elif role.org_guid is not None and role.org_guid in orgs:
            held.append(HeldRole(orgs[role.org_guid], None, role.type, role.user_guid))
    return Inventory(
        orgs=set(orgs.values()),
        spaces=set(spaces.values()),
        users=users,
        roles=sorted(held, key=HeldRole.sort_key),
        api_url=connection.api_url,
    )
