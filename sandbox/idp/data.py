"""Users and groups for the IdP emulators, from a dict/YAML file or generated for scale.

::

    users:
      - {id: u1, login: alice@corp.com, email: alice@corp.com, status: ACTIVE, name: Alice A}
      - {id: u2, login: bob@corp.com, status: SUSPENDED}            # Okta status; Entra: disabled
      - {id: u3, login: carol@corp.com, email: null, enabled: false} # Entra: accountEnabled false
    groups:
      - {id: g1, name: payments-dev, members: [alice@corp.com, bob@corp.com]}
      - {id: g2, name: platform, members: [carol@corp.com, "group:payments-dev"]}  # nested (Graph only)

Members name users by login (or id) and groups by ``group:<name>`` / ``group-id:<id>``.
Okta has no nested groups: the Okta emulator rejects data with group members.
Ids are generated when left out. Two groups may share a name (to test ambiguity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

OKTA_STATUSES = (
    "ACTIVE",
    "DEPROVISIONED",
    "LOCKED_OUT",
    "PASSWORD_EXPIRED",
    "PROVISIONED",
    "RECOVERY",
    "STAGED",
    "SUSPENDED",
)


@dataclass
class IdpUser:
    id: str
    login: str
    email: str | None
    status: str = "ACTIVE"
    name: str | None = None
    enabled: bool | None = None  # Entra accountEnabled; None = derived from status

    @property
    def account_enabled(self) -> bool:
        return self.enabled if self.enabled is not None else self.status == "ACTIVE"


@dataclass
class IdpGroup:
    id: str
    name: str
    users: list[str] = field(default_factory=list)  # user ids (direct members)
    groups: list[str] = field(default_factory=list)  # group ids (nested, Graph only)


@dataclass
class IdpData:
    users: dict[str, IdpUser] = field(default_factory=dict)  # by id, in insertion order
    groups: dict[str, IdpGroup] = field(default_factory=dict)  # by id

    @classmethod
    def from_obj(cls, raw: IdpData | dict[str, Any] | str | Path | None) -> IdpData:
        if raw is None:
            return cls()
        if isinstance(raw, IdpData):
            return raw
        if isinstance(raw, (str, Path)):
            loaded = yaml.safe_load(Path(raw).read_text(encoding="utf-8"))
            return cls.from_dict(loaded or {})
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> IdpData:
        data = cls()
        by_login: dict[str, str] = {}
        for i, u in enumerate(raw.get("users") or []):
            uid = str(u.get("id") or f"00u{i:06d}")
            status = str(u.get("status", "ACTIVE")).upper()
            if status not in OKTA_STATUSES:
                raise ValueError(f"user {uid}: unknown status {status!r}")
            email = u.get("email", u.get("login"))
            user = IdpUser(uid, str(u["login"]), email, status, u.get("name"), u.get("enabled"))
            data.users[uid] = user
            by_login[user.login.casefold()] = uid
        groups_raw = list(raw.get("groups") or [])
        for i, g in enumerate(groups_raw):
            gid = str(g.get("id") or f"00g{i:06d}")
            data.groups[gid] = IdpGroup(gid, str(g["name"]))
        gids = list(data.groups)
        for gid, g in zip(gids, groups_raw, strict=True):
            group = data.groups[gid]
            for m in g.get("members") or []:
                m = str(m)
                if m.startswith("group:"):
                    target = [x.id for x in data.groups.values() if x.name == m[6:]]
                    if len(target) != 1:
                        raise ValueError(f"group {group.name}: member {m!r} matches {len(target)} groups")
                    group.groups.append(target[0])
                elif m.startswith("group-id:"):
                    if m[9:] not in data.groups:
                        raise ValueError(f"group {group.name}: unknown group id {m[9:]!r}")
                    group.groups.append(m[9:])
                elif m in data.users:
                    group.users.append(m)
                elif m.casefold() in by_login:
                    group.users.append(by_login[m.casefold()])
                else:
                    raise ValueError(f"group {group.name}: unknown member {m!r}")
        return data

    def groups_named(self, name: str, *, case_insensitive: bool = True) -> list[IdpGroup]:
        if case_insensitive:
            return [g for g in self.groups.values() if g.name.casefold() == name.casefold()]
        return [g for g in self.groups.values() if g.name == name]

    def direct_users(self, gid: str) -> list[IdpUser]:
        return [self.users[u] for u in self.groups[gid].users]

    def transitive_users(self, gid: str) -> list[IdpUser]:
        """Users of a group and of every group nested in it, once each; cycles are fine."""
        seen_groups: set[str] = set()
        seen_users: set[str] = set()
        out: list[IdpUser] = []
        stack = [gid]
        while stack:
            current = stack.pop(0)
            if current in seen_groups:
                continue
            seen_groups.add(current)
            for uid in self.groups[current].users:
                if uid not in seen_users:
                    seen_users.add(uid)
                    out.append(self.users[uid])
            stack.extend(self.groups[current].groups)
        return out

    def nested_groups(self, gid: str) -> list[IdpGroup]:
        seen: set[str] = {gid}
        out: list[IdpGroup] = []
        stack = list(self.groups[gid].groups)
        while stack:
            current = stack.pop(0)
            if current in seen:
                continue
            seen.add(current)
            out.append(self.groups[current])
            stack.extend(self.groups[current].groups)
        return out


def generate_data(
    users: int,
    groups: int,
    *,
    memberships_per_user: int = 1,
    inactive_every: int = 0,
    domain: str = "corp.example",
    group_prefix: str = "team-",
) -> IdpData:
    """N users over M groups (round robin; each user in ``memberships_per_user`` groups).

    Every ``inactive_every``-th user (0 = none) is SUSPENDED / disabled.
    """
    data = IdpData()
    for g in range(groups):
        gid = f"00g{g:06d}"
        data.groups[gid] = IdpGroup(gid, f"{group_prefix}{g:04d}")
    gids = list(data.groups)
    for i in range(users):
        uid = f"00u{i:07d}"
        inactive = inactive_every > 0 and i % inactive_every == inactive_every - 1
        login = f"user{i:06d}@{domain}"
        data.users[uid] = IdpUser(uid, login, login, "SUSPENDED" if inactive else "ACTIVE", f"User {i}")
        for k in range(min(memberships_per_user, groups)):
            data.groups[gids[(i + k) % groups]].users.append(uid)
    return data
