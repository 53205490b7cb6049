"""Dynamic providers: CF user sets and role memberships.

Rules that shape this module (see ../shared/DESIGN.md):
- Credentials come from the stack config through ``configure()``; the
  provider objects hold nothing but a reference to the process session, so
  what dill pickles into state is a class reference and no secret
  (``serialize_as_secret_always = False`` then saves one encryption per
  resource).
- A membership is one (scope, role type) with a map of members
  ``"<origin>/<username>" -> provenance``; writes add and remove only the
  difference, concurrently, and are idempotent (adopt existing roles, 404 on
  delete means already gone), so an interrupted ``up`` converges on retry.
- ``organization_user`` cannot be removed while the user holds space roles in
  the org (CC answers 422), so removing someone from it first removes their
  remaining space roles in that org.
"""

from __future__ import annotations

import logging
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from components.audit import AuditAction, AuditTrail, audit_trail_from_config
from components.cloudfoundry.models import CfUser
from components.cloudfoundry.session import Session, session_from_config
from components.model import ORG_ROLE_TYPES, ORG_USER, SPACE_ROLE_TYPES, UserRef

log = logging.getLogger("cf_access.providers")

# Audit reason for a user cf-access creates.
JOINED = "a mapping grants this user a role"

# What read() puts as provenance for a holder found in CF that no mapping grants.
FOUND_IN_CF = "found in CF, not granted by any mapping"


class _SessionProvider(ResourceProvider):
    serialize_as_secret_always = False

    def __init__(self, stack: str | None = None) -> None:
        self._session: Session | None = None
        # The stack name travels with the pickled provider: the engine does not tell
        # dynamic providers which stack they serve (for the audit trail).
        self._stack = stack
        self._audit: AuditTrail | None = None

    def configure(self, req: ConfigureRequest) -> None:
        self._session = session_from_config(req.config)
        self._audit = audit_trail_from_config(req.config, stack=self._stack)
        if self._audit is not None:
            self._audit.check()  # a bad auditLog path fails before any CF write

    def audit(
        self, action: AuditAction, user: str, scope: str | None, role: str | None, reason: str, operation: str
    ) -> None:
        """Called after each write CF accepted (components/audit.py)."""
        if self._audit is not None:
            self._audit.record(action, user, scope, role, reason, operation=operation)

    def ensure_user(self, key: str, reason: str, operation: str) -> CfUser:
        """The CF user for a member key, created (and audited once) when missing."""
        user, created = self.session.ensure_user(key)
        if created:
            self.audit("create-user", key, None, None, reason, operation)
        return user

    def delete_cf_user(self, key: str, user_guid: str, operation: str) -> None:
        """Delete the CC user (async job), then the UAA user; audited once."""
        session = self.session
        ref = UserRef.parse(key)
        uaa_user = session.client.find_uaa_user(ref.username, ref.origin)
        session.client.delete_user(user_guid)
        session.forget_user(user_guid)
        if uaa_user is not None:
            session.client.delete_uaa_user(uaa_user.id)
        self.audit("delete-user", key, None, None, "no mapping grants this user anything", operation)

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError(
                "provider used before configure(); the Pulumi engine always configures it first"
            )
        return self._session

    # Pickle by reference and without the session (it holds a client and the
    # decrypted secret); configure() rebuilds it in the provider process.
    def __getstate__(self) -> dict[str, Any]:
        return {"stack": self._stack}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._session = None
        self._audit = None
        self._stack = state.get("stack")


# ---------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------

# The value of every entry in a user set's map. Constant on purpose: a person's grants
# are shown by the memberships; the user set's diff should only move when someone
# joins or leaves cf-access's care, so it reads as "+ key" / "- key".
USER_SET_ENTRY = "managed by cf-access"


def _users(props: dict[str, Any]) -> dict[str, str]:
    users = props.get("users") or {}
    return {str(k): str(v) for k, v in users.items()}


class UserSetProvider(_SessionProvider):
    """Every CF user cf-access manages for one UAA origin (one resource, a map of users).

    Memberships create the users they need (a role needs its user), so on an initial
    run this resource only confirms them from the bulk user list. It is ordered after
    every membership, so on update it deprovisions leavers *after* their roles went:
    ``deprovisionPolicy: delete-user`` deletes the CC user and the UAA user,
    ``roles-only`` just stops tracking them. Refresh drops users deleted by hand, so
    the next ``up`` re-creates them. id = ``users:<origin>``.
    """

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        origin = news.get("origin")
        if not isinstance(origin, str) or not origin or origin != origin.strip():
            failures.append(
                CheckFailure("origin", "origin must be a non-empty string without surrounding spaces")
            )
        for key in _users(news):
            try:
                ref = UserRef.parse(key)
            except ValueError as exc:
                failures.append(CheckFailure("users", str(exc)))
                continue
            if ref.origin != origin:
                failures.append(CheckFailure("users", f"user {key!r} does not belong to origin {origin!r}"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = ["origin"] if olds.get("origin") != news.get("origin") else []
        changed = bool(replaces) or _users(olds) != _users(news)
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=False)

    def _outs(self, origin: str, users: dict[str, str]) -> dict[str, Any]:
        return {"origin": origin, "users": dict(sorted(users.items()))}

    def _ensure_all(self, keys: list[str], operation: str) -> None:
        def ensure(key: str) -> None:
            if not self.session.is_protected(key):
                self.ensure_user(key, JOINED, operation)

        self.session.client.map_concurrently(ensure, keys)

    def _deprovision_all(self, keys: list[str], operation: str) -> None:
        session = self.session
        if session.deprovision_policy != "delete-user":
            return  # roles-only: the memberships already removed the roles
        session.client.map_concurrently(lambda key: self._delete_user(key, operation), keys)

    def _delete_user(self, key: str, operation: str) -> None:
        session = self.session
        if session.is_protected(key):
            log.warning("not deleting protected user %s", key)
            return
        user = session.find_user(key)
        if user is None:
            return  # already gone
        # Roles in scopes that left the mappings are deleted only after this (the engine
        # deletes removed resources last); CC deletes them with the user: say so.
        for scope_label, role_type in session.roles_of_user(user.guid):
            reason = "removed with the user (deprovisionPolicy: delete-user)"
            self.audit("remove", key, scope_label, role_type, reason, operation)
        self.delete_cf_user(key, user.guid, operation)

    def create(self, props: dict[str, Any]) -> CreateResult:
        users = _users(props)
        self._ensure_all(sorted(users), "create")
        return CreateResult(id_=f"users:{props['origin']}", outs=self._outs(props["origin"], users))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        before, after = _users(olds), _users(news)
        joined = sorted(after.keys() - before.keys())
        left = sorted(before.keys() - after.keys())
        if joined or left:
            log.info("users:%s: %d joined, %d left", news["origin"], len(joined), len(left))
        self._ensure_all(joined, "update")
        self._deprovision_all(left, "update")
        return UpdateResult(outs=self._outs(news["origin"], after))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # From the bulk user list (one paged read per process), not a GET per user.
        session = self.session
        present = {
            k: v
            for k, v in _users(props).items()
            if session.is_protected(k) or session.find_user(k) is not None
        }
        outs = self._outs(str(props.get("origin")), present)
        return ReadResult(id_=id_, outs=outs, inputs=dict(outs))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        self._deprovision_all(sorted(_users(props)), "delete")


class UserProvider(_SessionProvider):
    """Retired: one ``cf:User`` resource per person (cf-access before the user sets).

    Kept so that stacks created by earlier versions upgrade safely: the new program no
    longer registers ``cf:User`` resources, so the engine deletes them from state at the
    end of the first run (after every membership and user set has converged). That
    delete must not deprovision people who are now tracked by a user set, so it only
    deletes a CF user (``deprovisionPolicy: delete-user``) who holds no role at all
    in the foundation any more: a leaver in the same run. Everyone else is just
    forgotten. docs/operations.md, "Upgrading", explains why dropping them with
    ``pulumi state delete --target-dependents`` instead is wrong.
    """

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=False, replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        raise RuntimeError(
            "cf:User resources are retired: users are tracked by cf:UserSet; "
            "this program version does not create cf:User"
        )

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        user = self.session.user_by_guid(id_)
        if user is None:
            return ReadResult(id_=None, outs={})
        outs = {"origin": props.get("origin"), "username": props.get("username")}
        return ReadResult(id_=id_, outs=outs, inputs=dict(outs))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        session = self.session
        key = UserRef(origin=props["origin"], username=props["username"]).key
        if session.deprovision_policy != "delete-user" or session.is_protected(key):
            return
        if session.user_by_guid(id_) is None or session.holds_any_role(id_):
            return  # gone already, or still has access: now tracked by a user set
        self.delete_cf_user(key, id_, "delete")


# ---------------------------------------------------------------------------
# Role memberships
# ---------------------------------------------------------------------------


def _members(props: dict[str, Any]) -> dict[str, str]:
    members = props.get("members") or {}
    return {str(k): str(v) for k, v in members.items()}


def membership_id(props: dict[str, Any]) -> str:
    scope = props["org"] if not props.get("space") else f"{props['org']}/{props['space']}"
    return f"{scope}:{props['role']}"


class MembershipProvider(_SessionProvider):
    """Holders of one role type in one org or space."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        role, space = news.get("role"), news.get("space")
        allowed = SPACE_ROLE_TYPES if space else ORG_ROLE_TYPES
        if role not in allowed:
            failures.append(
                CheckFailure("role", f"{role!r} is not a {'space' if space else 'org'} role type")
            )
        if news.get("ownership") not in ("additive", "authoritative"):
            failures.append(CheckFailure("ownership", "ownership must be additive or authoritative"))
        for key in _members(news):
            try:
                UserRef.parse(key)
            except ValueError as exc:
                failures.append(CheckFailure("members", str(exc)))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("org", "space", "role") if (olds.get(k) or None) != (news.get(k) or None)]
        changed = (
            bool(replaces)
            or _members(olds) != _members(news)
            or olds.get("ownership") != news.get("ownership")
        )
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=True)

    # -- helpers ---------------------------------------------------------------
    def _scope(self, props: dict[str, Any]) -> tuple[str, str | None]:
        """(scope guid, org guid if this is an org scope else None)."""
        session = self.session
        if props.get("space"):
            return session.space(props["org"], props["space"]).guid, None
        org = session.org(props["org"])
        return org.guid, org.guid

    def _outs(self, props: dict[str, Any], members: dict[str, str]) -> dict[str, Any]:
        return {
            "org": props["org"],
            "space": props.get("space") or None,
            "role": props["role"],
            "ownership": props["ownership"],
            "members": dict(sorted(members.items())),
        }

    def _converge(self, props: dict[str, Any], old_members: dict[str, str], operation: str) -> None:
        session = self.session
        previously_managed = set(old_members)
        label = membership_id(props)
        scope_label = props["org"] if not props.get("space") else f"{props['org']}/{props['space']}"
        granted = _members(props)
        role_type: str = props["role"]
        scope_guid, org_guid = self._scope(props)
        desired = {k for k in _members(props) if not session.is_protected(k)}
        live = session.live_holders(scope_guid, role_type)

        to_add = sorted(desired - live.keys())
        if props["ownership"] == "authoritative":
            to_remove = sorted(k for k in live.keys() - desired if not session.is_protected(k))
        else:
            to_remove = sorted(
                k for k in (previously_managed & live.keys()) - desired if not session.is_protected(k)
            )

        def add(key: str) -> None:
            user = self.ensure_user(key, JOINED, operation)
            if session.role_guid(scope_guid, role_type, user.guid) is not None:
                return
            if props.get("space"):
                role = session.client.create_role(role_type, user.guid, space_guid=scope_guid)
            else:
                role = session.client.create_role(role_type, user.guid, org_guid=scope_guid)
            session.record_created(role)
            self.audit("add", key, scope_label, role_type, granted.get(key, ""), operation)

        def remove(key: str) -> None:
            user_guid = live[key]
            if role_type == ORG_USER and org_guid is not None:
                # CC refuses to drop organization_user while space roles remain.
                for space_guid, space_role, guid in session.space_roles_in_org(user_guid, org_guid):
                    session.client.delete_role(guid)
                    session.record_deleted(space_guid, space_role, user_guid)
                    self.audit(
                        "remove",
                        key,
                        session.scope_label(space_guid),
                        space_role,
                        f"no longer granted: goes before {scope_label} organization_user (CC requires it)",
                        operation,
                    )
            role_guid = session.role_guid(scope_guid, role_type, user_guid)
            if role_guid is not None:
                session.client.delete_role(role_guid)
                was = old_members.get(key)
                reason = f"no longer granted (was: {was})" if was and was != FOUND_IN_CF else FOUND_IN_CF
                self.audit("remove", key, scope_label, role_type, reason, operation)
            session.record_deleted(scope_guid, role_type, user_guid)

        if to_add or to_remove:
            log.info("%s: adding %d, removing %d", label, len(to_add), len(to_remove))
        session.client.map_concurrently(add, to_add)
        session.client.map_concurrently(remove, to_remove)

    # -- CRUD ----------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> CreateResult:
        # Nothing was managed before: in additive scopes we only add.
        self._converge(props, old_members={}, operation="create")
        return CreateResult(id_=membership_id(props), outs=self._outs(props, _members(props)))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self._converge(news, old_members=_members(olds), operation="update")
        return UpdateResult(outs=self._outs(news, _members(news)))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        session = self.session
        scope_guid, _ = self._scope(props)
        live = session.live_holders(scope_guid, props["role"])
        managed = _members(props)
        members = {k: v for k, v in managed.items() if k in live or session.is_protected(k)}
        if props.get("ownership") == "authoritative":
            for key in live:
                if key not in members and not session.is_protected(key):
                    members[key] = FOUND_IN_CF
        outs = self._outs(props, members)
        return ReadResult(id_=id_, outs=outs, inputs=dict(outs))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # The scope left the mappings: remove exactly the members we managed
        # (state after refresh), never everyone in the scope.
        try:
            self._scope(props)
        except LookupError:
            return  # the org or space itself is gone, and its roles with it
        emptied = {**props, "members": {}, "ownership": "additive"}
        self._converge(emptied, old_members=_members(props), operation="delete")
