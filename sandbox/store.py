"""In-memory Cloud Controller + UAA data with the indexes the API needs.

Roles are indexed by guid, by (user, scope, type), by scope (org or space guid) and by user, so
every rule check and filtered list is a dict lookup rather than a scan. Insertion order of the
dicts doubles as ``created_at`` order (CC stores microsecond timestamps; we present seconds).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ORG_ROLE_TYPES: tuple[str, ...] = (
    "organization_auditor",
    "organization_manager",
    "organization_billing_manager",
    "organization_user",
)
SPACE_ROLE_TYPES: tuple[str, ...] = ("space_auditor", "space_manager", "space_developer", "space_supporter")
ALL_ROLE_TYPES: tuple[str, ...] = ORG_ROLE_TYPES + SPACE_ROLE_TYPES
ORG_ROLE_SET = frozenset(ORG_ROLE_TYPES)
SPACE_ROLE_SET = frozenset(SPACE_ROLE_TYPES)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_guid() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class Org:
    guid: str
    name: str
    created_at: str
    updated_at: str
    quota_guid: str
    suspended: bool = False


@dataclass(slots=True)
class Space:
    guid: str
    name: str
    org_guid: str
    created_at: str
    updated_at: str


@dataclass(slots=True)
class CCUser:
    guid: str
    created_at: str
    updated_at: str
    is_oauth_client: bool = False


@dataclass(slots=True)
class UAAUser:
    id: str
    username: str
    origin: str
    created: str
    last_modified: str
    emails: list[dict[str, Any]] = field(default_factory=list)
    name: dict[str, Any] = field(default_factory=dict)
    active: bool = True
    verified: bool = True
    version: int = 0
    external_id: str | None = None
    phone_numbers: list[dict[str, Any]] | None = None
    password_last_modified: str | None = None


@dataclass(slots=True)
class Role:
    guid: str
    type: str
    user_guid: str
    org_guid: str | None
    space_guid: str | None
    created_at: str
    seq: int = 0  # creation order (CC orders by microsecond created_at, then guid)
    # cached presentation: (base_url, json text)
    cache: tuple[str, str] | None = None

    @property
    def updated_at(self) -> str:  # roles are never updated
        return self.created_at

    @property
    def scope_guid(self) -> str:
        return self.space_guid if self.space_guid is not None else self.org_guid  # type: ignore[return-value]


@dataclass(slots=True)
class Job:
    guid: str
    operation: str
    resource_type: str
    resource_guid: str
    created_at: str
    updated_at: str
    state: str = "PROCESSING"
    errors: list[dict[str, Any]] = field(default_factory=list)
    polls_left: int = 0
    due: float = 0.0  # monotonic time after which the job completes (time mode)


class Store:
    """All sandbox data. Single-threaded use (the server's event loop)."""

    def __init__(self) -> None:
        self.orgs: dict[str, Org] = {}
        self.org_by_name: dict[str, str] = {}
        self.spaces: dict[str, Space] = {}
        self.spaces_by_org: dict[str, dict[str, None]] = {}
        self.cc_users: dict[str, CCUser] = {}
        self.uaa_users: dict[str, UAAUser] = {}
        self.uaa_by_key: dict[tuple[str, str], str] = {}
        self.uaa_by_name: dict[str, dict[str, None]] = {}
        self.roles: dict[str, Role] = {}
        self.role_by_key: dict[tuple[str, str, str], str] = {}
        self.roles_by_scope: dict[str, dict[str, None]] = {}
        self.roles_by_user: dict[str, dict[str, None]] = {}
        self.jobs: dict[str, Job] = {}
        self.version = 0  # bumped on every mutation (for caches and persistence)
        self._seq = 0

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ---- orgs / spaces ---------------------------------------------------------------------
    def add_org(self, name: str, guid: str | None = None) -> Org:
        ts = now_iso()
        org = Org(guid or new_guid(), name, ts, ts, quota_guid=DEFAULT_QUOTA_GUID)
        self.orgs[org.guid] = org
        self.org_by_name[name] = org.guid
        self.spaces_by_org.setdefault(org.guid, {})
        self.version += 1
        return org

    def add_space(self, org_guid: str, name: str, guid: str | None = None) -> Space:
        ts = now_iso()
        space = Space(guid or new_guid(), name, org_guid, ts, ts)
        self.spaces[space.guid] = space
        self.spaces_by_org.setdefault(org_guid, {})[space.guid] = None
        self.version += 1
        return space

    def space_by_name(self, org_guid: str, name: str) -> Space | None:
        for sg in self.spaces_by_org.get(org_guid, {}):
            if self.spaces[sg].name == name:
                return self.spaces[sg]
        return None

    # ---- users -------------------------------------------------------------------------------
    def add_cc_user(self, guid: str, is_oauth_client: bool = False) -> CCUser:
        ts = now_iso()
        user = CCUser(guid, ts, ts, is_oauth_client)
        self.cc_users[guid] = user
        self.version += 1
        return user

    def ensure_cc_user(self, guid: str, is_oauth_client: bool = False) -> CCUser:
        user = self.cc_users.get(guid)
        return user if user is not None else self.add_cc_user(guid, is_oauth_client)

    def delete_cc_user(self, guid: str) -> None:
        """Destroy the CC user and every role row it has (UAA user is kept)."""
        for role_guid in list(self.roles_by_user.get(guid, {})):
            self.remove_role(role_guid)
        self.roles_by_user.pop(guid, None)
        if self.cc_users.pop(guid, None) is not None:
            self.version += 1

    def uaa_lookup(self, username: str, origin: str) -> UAAUser | None:
        uid = self.uaa_by_key.get((username.lower(), origin.lower()))
        return self.uaa_users[uid] if uid is not None else None

    def uaa_origins_for(self, username: str) -> list[str]:
        return sorted(self.uaa_users[i].origin for i in self.uaa_by_name.get(username.lower(), {}))

    def add_uaa_user(
        self,
        username: str,
        origin: str,
        *,
        user_id: str | None = None,
        emails: list[dict[str, Any]] | None = None,
        name: dict[str, Any] | None = None,
        active: bool = True,
        verified: bool = True,
        external_id: str | None = None,
        phone_numbers: list[dict[str, Any]] | None = None,
    ) -> UAAUser:
        ts = now_iso()
        user = UAAUser(
            id=user_id or new_guid(),
            username=username,
            origin=origin,
            created=ts,
            last_modified=ts,
            emails=emails if emails is not None else [{"value": username, "primary": True}],
            name=name or {},
            active=active,
            verified=verified,
            external_id=external_id,
            phone_numbers=phone_numbers,
            password_last_modified=ts,
        )
        self.uaa_users[user.id] = user
        self._index_uaa(user)
        self.version += 1
        return user

    def _index_uaa(self, user: UAAUser) -> None:
        self.uaa_by_key[(user.username.lower(), user.origin.lower())] = user.id
        self.uaa_by_name.setdefault(user.username.lower(), {})[user.id] = None

    def _unindex_uaa(self, user: UAAUser) -> None:
        self.uaa_by_key.pop((user.username.lower(), user.origin.lower()), None)
        ids = self.uaa_by_name.get(user.username.lower())
        if ids is not None:
            ids.pop(user.id, None)
            if not ids:
                del self.uaa_by_name[user.username.lower()]

    def rename_uaa_user(self, user: UAAUser, username: str) -> None:
        self._unindex_uaa(user)
        user.username = username
        self._index_uaa(user)
        self._invalidate_user_roles(user.id)
        self.version += 1

    def delete_uaa_user(self, user_id: str) -> UAAUser | None:
        user = self.uaa_users.pop(user_id, None)
        if user is not None:
            self._unindex_uaa(user)
            self._invalidate_user_roles(user_id)
            self.version += 1
        return user

    def _invalidate_user_roles(self, user_guid: str) -> None:
        for rg in self.roles_by_user.get(user_guid, {}):
            self.roles[rg].cache = None

    def presentation_name(self, user_guid: str) -> str:
        uaa = self.uaa_users.get(user_guid)
        return uaa.username if uaa is not None else user_guid

    # ---- roles -------------------------------------------------------------------------------
    def find_role(self, user_guid: str, scope_guid: str, role_type: str) -> Role | None:
        rg = self.role_by_key.get((user_guid, scope_guid, role_type))
        return self.roles[rg] if rg is not None else None

    def add_role(self, role_type: str, user_guid: str, scope_guid: str, guid: str | None = None) -> Role:
        is_space = role_type in SPACE_ROLE_SET
        role = Role(
            guid=guid or new_guid(),
            type=role_type,
            user_guid=user_guid,
            org_guid=None if is_space else scope_guid,
            space_guid=scope_guid if is_space else None,
            created_at=now_iso(),
            seq=self._next_seq(),
        )
        self.roles[role.guid] = role
        self.role_by_key[(user_guid, scope_guid, role_type)] = role.guid
        self.roles_by_scope.setdefault(scope_guid, {})[role.guid] = None
        self.roles_by_user.setdefault(user_guid, {})[role.guid] = None
        self.version += 1
        return role

    def remove_role(self, guid: str) -> bool:
        role = self.roles.pop(guid, None)
        if role is None:
            return False
        scope = role.scope_guid
        self.role_by_key.pop((role.user_guid, scope, role.type), None)
        by_scope = self.roles_by_scope.get(scope)
        if by_scope is not None:
            by_scope.pop(guid, None)
        by_user = self.roles_by_user.get(role.user_guid)
        if by_user is not None:
            by_user.pop(guid, None)
        self.version += 1
        return True

    def delete_space(self, guid: str) -> None:
        """The space and every role in it (CC deletes them with the space)."""
        for role_guid in list(self.roles_by_scope.get(guid, {})):
            self.remove_role(role_guid)
        self.roles_by_scope.pop(guid, None)
        space = self.spaces.pop(guid, None)
        if space is not None:
            self.spaces_by_org.get(space.org_guid, {}).pop(guid, None)
            self.version += 1

    def has_org_user(self, user_guid: str, org_guid: str) -> bool:
        return (user_guid, org_guid, "organization_user") in self.role_by_key

    def has_space_roles_in_org(self, user_guid: str, org_guid: str) -> bool:
        for rg in self.roles_by_user.get(user_guid, {}):
            sg = self.roles[rg].space_guid
            if sg is not None and self.spaces[sg].org_guid == org_guid:
                return True
        return False

    def user_role_guids(self, user_guid: str) -> Iterable[str]:
        return self.roles_by_user.get(user_guid, {}).keys()

    # ---- jobs --------------------------------------------------------------------------------
    def add_job(self, operation: str, resource_type: str, resource_guid: str, polls: int) -> Job:
        ts = now_iso()
        job = Job(new_guid(), operation, resource_type, resource_guid, ts, ts, polls_left=polls)
        self.jobs[job.guid] = job
        return job

    # ---- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "organizations": [
                {"guid": o.guid, "name": o.name, "created_at": o.created_at} for o in self.orgs.values()
            ],
            "spaces": [
                {"guid": s.guid, "name": s.name, "organization_guid": s.org_guid, "created_at": s.created_at}
                for s in self.spaces.values()
            ],
            "users": [
                {
                    "guid": u.guid,
                    "created_at": u.created_at,
                    "is_oauth_client": u.is_oauth_client,
                    "username": self.uaa_users[u.guid].username if u.guid in self.uaa_users else None,
                    "origin": self.uaa_users[u.guid].origin if u.guid in self.uaa_users else None,
                }
                for u in self.cc_users.values()
            ],
            "uaa_users": [
                {
                    "id": u.id,
                    "userName": u.username,
                    "origin": u.origin,
                    "emails": u.emails,
                    "name": u.name,
                    "active": u.active,
                    "verified": u.verified,
                    "version": u.version,
                    "externalId": u.external_id,
                    "created": u.created,
                }
                for u in self.uaa_users.values()
            ],
            "roles": [
                {
                    "guid": r.guid,
                    "type": r.type,
                    "user_guid": r.user_guid,
                    "organization_guid": r.org_guid,
                    "space_guid": r.space_guid,
                    "created_at": r.created_at,
                }
                for r in self.roles.values()
            ],
        }

    def load_dict(self, data: dict[str, Any]) -> None:
        for o in data.get("organizations", []):
            self.add_org(o["name"], o["guid"]).created_at = o.get("created_at", now_iso())
        for s in data.get("spaces", []):
            self.add_space(s["organization_guid"], s["name"], s["guid"])
        for u in data.get("uaa_users", []):
            uu = self.add_uaa_user(
                u["userName"],
                u["origin"],
                user_id=u["id"],
                emails=u.get("emails"),
                name=u.get("name"),
                active=u.get("active", True),
                verified=u.get("verified", True),
                external_id=u.get("externalId"),
            )
            uu.version = int(u.get("version", 0))
        for c in data.get("users", []):
            self.add_cc_user(c["guid"], bool(c.get("is_oauth_client")))
        for r in data.get("roles", []):
            scope = r.get("space_guid") or r.get("organization_guid")
            self.add_role(r["type"], r["user_guid"], scope, r["guid"]).created_at = r.get(
                "created_at", now_iso()
            )


DEFAULT_QUOTA_GUID = "a8b2b8e0-0000-4000-8000-00000000d0a1"
