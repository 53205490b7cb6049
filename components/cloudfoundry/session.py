"""Per-process Cloud Foundry session for the dynamic providers.

The provider process (one per ``pulumi`` run) serves up to four resource
operations at once on gRPC threads. They share one client (one connection
pool, one token) and bulk-read caches: all orgs, spaces, users and roles are
listed once (per_page=5000) the first time any resource needs them, and every
write we make updates the caches, so a refresh of N membership resources costs
a handful of list calls instead of N.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from components.cloudfoundry.client import CloudFoundryClient, client_for
from components.cloudfoundry.models import CfUser, Org, Role, Space, user_key
from components.cloudfoundry.shared_read import FoundationRead, publish
from components.model import UserRef
from components.protection import ProtectedUsers
from components.settings import CfConnection, ConfigReader, load_cf_connection, load_deprovision_policy


class ScopeNotFound(LookupError):
    """An org or space named in the mappings does not exist in CF."""


@dataclass
class RoleIndex:
    """All roles of the foundation, indexed the ways the providers ask."""

    # (scope guid, role type) -> {user guid: role guid}
    holders: dict[tuple[str, str], dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    # user guid -> {(scope guid, role type): role guid}: every role the user holds, org or space
    roles_of_user: dict[str, dict[tuple[str, str], str]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, role: Role) -> None:
        scope = role.space_guid or role.org_guid
        if scope is None:
            return
        self.holders[(scope, role.type)][role.user_guid] = role.guid
        self.roles_of_user[role.user_guid][(scope, role.type)] = role.guid

    def remove(self, scope_guid: str, role_type: str, user_guid: str) -> None:
        self.holders.get((scope_guid, role_type), {}).pop(user_guid, None)
        self.roles_of_user.get(user_guid, {}).pop((scope_guid, role_type), None)


class Session:
    def __init__(self, connection: CfConnection, protected_users: Iterable[str], deprovision_policy: str):
        self.connection = connection
        self.client: CloudFoundryClient = client_for(connection)
        self.deprovision_policy = deprovision_policy
        self._protected = ProtectedUsers.from_patterns(protected_users)
        self._created: set[str] = set()  # member keys this process created (user sets record them)
        self._failures: list[str] = []  # writes CF rejected in this run (each names the person)
        self._lock = threading.RLock()
        self._orgs: dict[str, Org] | None = None
        self._spaces: dict[tuple[str, str], Space] | None = None
        self._users_by_key: dict[str, CfUser] | None = None
        self._users_by_guid: dict[str, CfUser] = {}
        self._user_locks: dict[str, threading.Lock] = {}
        self._roles: RoleIndex | None = None
        self._role_list: list[Role] = []  # as listed (for the shared read)
        self._shared = False
        self._read_at: float | None = None  # when the first bulk list started

    # -- protection -----------------------------------------------------
    def is_protected(self, key: str) -> bool:
        return self._protected.matches(key)

    # -- scopes -----------------------------------------------------------
    def _mark_read(self) -> None:
        if self._read_at is None:
            self._read_at = time.time()

    def _load_scopes(self) -> None:
        if self._orgs is not None:
            return
        self._mark_read()
        orgs = {org.name: org for org in self.client.list_orgs()}
        by_guid = {org.guid: org for org in orgs.values()}
        spaces: dict[tuple[str, str], Space] = {}
        for space in self.client.list_spaces():
            org = by_guid.get(space.org_guid)
            if org is not None:
                spaces[(org.name, space.name)] = space
        self._orgs, self._spaces = orgs, spaces

    def org(self, name: str) -> Org:
        with self._lock:
            self._load_scopes()
            assert self._orgs is not None
            org = self._orgs.get(name)
        if org is None:
            raise ScopeNotFound(
                f"organization {name!r} does not exist in Cloud Foundry at {self.connection.api_url}; "
                "create it (cf create-org) or remove it from the mappings"
            )
        return org

    def space(self, org_name: str, space_name: str) -> Space:
        self.org(org_name)
        with self._lock:
            assert self._spaces is not None
            space = self._spaces.get((org_name, space_name))
        if space is None:
            raise ScopeNotFound(
                f"space {space_name!r} does not exist in organization {org_name!r}; "
                "create it (cf create-space) or remove it from the mappings"
            )
        return space

    def scope_label(self, scope_guid: str) -> str:
        """``org`` for an org guid, ``org/space`` for a space guid (the guid itself if unknown)."""
        with self._lock:
            self._load_scopes()
            assert self._orgs is not None and self._spaces is not None
            for org in self._orgs.values():
                if org.guid == scope_guid:
                    return org.name
            for (org_name, space_name), space in self._spaces.items():
                if space.guid == scope_guid:
                    return f"{org_name}/{space_name}"
        return scope_guid

    def spaces_of_org(self, org_guid: str) -> set[str]:
        with self._lock:
            self._load_scopes()
            assert self._spaces is not None
            return {s.guid for s in self._spaces.values() if s.org_guid == org_guid}

    # -- users --------------------------------------------------------------
    def _load_users(self) -> None:
        if self._users_by_key is not None:
            return
        self._mark_read()
        users = self.client.list_users()
        self._users_by_key = {}
        for user in users:
            self._remember_user(user)

    def _remember_user(self, user: CfUser) -> None:
        assert self._users_by_key is not None
        self._users_by_guid[user.guid] = user
        key = user_key(user)
        if key is not None:
            self._users_by_key[key] = user

    def find_user(self, key: str) -> CfUser | None:
        with self._lock:
            self._load_users()
            assert self._users_by_key is not None
            return self._users_by_key.get(key)

    def user_by_guid(self, guid: str) -> CfUser | None:
        with self._lock:
            self._load_users()
            return self._users_by_guid.get(guid)

    def ensure_user(self, key: str) -> tuple[CfUser, bool]:
        """The CF user for a member key and whether this call created it.

        Creates the UAA shadow user and the CC user when missing (both creates
        adopt existing users, so this is idempotent). Several memberships add the
        same joiner at once (every org and space they join), so creation is
        serialised per key: one create, one audit record, the rest read the cache.
        """
        existing = self.find_user(key)
        if existing is not None:
            return existing, False
        with self._lock:
            key_lock = self._user_locks.setdefault(key, threading.Lock())
        with key_lock:
            existing = self.find_user(key)
            if existing is not None:
                return existing, False
            ref = UserRef.parse(key)
            # Not in the bulk user list: create directly.
            user = self.client.ensure_user(ref.username, ref.origin, probably_missing=True)
            with self._lock:
                self._load_users()
                self._remember_user(user)
                # ensure_user returns the username as UAA holds it; index by our key too.
                assert self._users_by_key is not None
                self._users_by_key[key] = user
                self._created.add(key)
        return user, True

    def record_failure(self, message: str) -> None:
        with self._lock:
            self._failures.append(message)

    def failures(self) -> list[str]:
        with self._lock:
            return sorted(self._failures)

    def created_users(self) -> set[str]:
        with self._lock:
            return set(self._created)

    def forget_user(self, guid: str) -> None:
        with self._lock:
            user = self._users_by_guid.pop(guid, None)
            if user is not None and self._users_by_key is not None:
                for key, cached in list(self._users_by_key.items()):
                    if cached.guid == guid:
                        del self._users_by_key[key]
            if self._roles is not None:
                for holders in self._roles.holders.values():
                    holders.pop(guid, None)
                self._roles.roles_of_user.pop(guid, None)

    # -- roles ----------------------------------------------------------------
    def roles(self) -> RoleIndex:
        with self._lock:
            if self._roles is None:
                self._mark_read()
                roles, included = self.client.list_roles(include_users=True)
                self._load_users()
                for user in included.values():
                    if user.guid not in self._users_by_guid:
                        self._remember_user(user)
                index = RoleIndex()
                for role in roles:
                    index.add(role)
                self._roles = index
                self._role_list = list(roles)
            return self._roles

    def share_read(self, engine: str | None) -> None:
        """Hand this process's bulk read to the program of the same run, once (refresh;
        shared_read.py says why that cannot cause a wrong write)."""
        if engine is None:
            return
        with self._lock:
            if self._shared:
                return
            self._shared = True
            self._load_scopes()
            self.roles()
            assert self._orgs is not None and self._spaces is not None
            read = FoundationRead(
                orgs=list(self._orgs.values()),
                spaces=list(self._spaces.values()),
                users=list(self._users_by_guid.values()),
                roles=list(self._role_list),  # a refresh reads before any write
                taken_at=self._read_at or time.time(),
                scopes=sorted(self.client.granted_scopes()),
            )
        publish(read, engine, self.connection.api_url, self.connection.client_id)

    def live_holders(self, scope_guid: str, role_type: str) -> dict[str, str]:
        """{member key: user guid} of everyone holding the role in CF now,
        leaving out users without a username (UAA clients)."""
        index = self.roles()
        with self._lock:
            guids = list(index.holders.get((scope_guid, role_type), {}))
        result: dict[str, str] = {}
        for guid in guids:
            user = self.user_by_guid(guid)
            key = user_key(user) if user is not None else None
            if key is not None:
                result[key] = guid
        return result

    def role_guid(self, scope_guid: str, role_type: str, user_guid: str) -> str | None:
        index = self.roles()
        with self._lock:
            return index.holders.get((scope_guid, role_type), {}).get(user_guid)

    def space_roles_in_org(self, user_guid: str, org_guid: str) -> list[tuple[str, str, str]]:
        """(space guid, role type, role guid) of the user's roles in the org's spaces."""
        spaces = self.spaces_of_org(org_guid)
        index = self.roles()
        with self._lock:
            held = dict(index.roles_of_user.get(user_guid, {}))
        return [(space, role_type, guid) for (space, role_type), guid in held.items() if space in spaces]

    def holds_any_role(self, user_guid: str) -> bool:
        """Whether the user holds any org or space role in the foundation (cache)."""
        index = self.roles()
        with self._lock:
            return bool(index.roles_of_user.get(user_guid))

    def roles_of_user(self, user_guid: str) -> list[tuple[str, str]]:
        """(scope label, role type) of every role the user holds now (cache), sorted."""
        index = self.roles()
        with self._lock:
            held = list(index.roles_of_user.get(user_guid, ()))
        return sorted((self.scope_label(scope), role_type) for scope, role_type in held)

    def ensure_org_user(self, org_guid: str, user_guid: str) -> Role | None:
        """Grant organization_user in the org when the user lacks it; the role if created.

        Called once per person by the org's own operation (org_access.py), before any of
        their space roles: the ordering lives there, this only consults the role cache."""
        if self.role_guid(org_guid, "organization_user", user_guid) is not None:
            return None
        role = self.client.create_role("organization_user", user_guid, org_guid=org_guid)
        self.record_created(role)
        return role

    def record_created(self, role: Role) -> None:
        index = self.roles()
        with self._lock:
            index.add(role)

    def record_deleted(self, scope_guid: str, role_type: str, user_guid: str) -> None:
        index = self.roles()
        with self._lock:
            index.remove(scope_guid, role_type, user_guid)


_SESSIONS: dict[tuple[str, str, str], Session] = {}
_SESSIONS_LOCK = threading.Lock()


def session_from_config(config: ConfigReader) -> Session:
    """The process-wide session for this stack config (created on first use)."""
    connection = load_cf_connection(config)
    protected_raw = config.get("protectedUsers") or "[]"
    policy = load_deprovision_policy(config)
    key = (connection.api_url, connection.client_id, protected_raw + policy)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            import json

            session = Session(connection, json.loads(protected_raw), policy)
            _SESSIONS[key] = session
        return session
