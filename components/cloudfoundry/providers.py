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
import os
import sys
from collections.abc import Mapping
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
from components.changes import refreshed_members
from components.cloudfoundry.models import CfUser
from components.cloudfoundry.scopes import SCIM_READ
from components.cloudfoundry.session import ScopeNotFound, Session, session_from_config
from components.model import UserRef
from components.pulumi_sdk import exit_when_engine_is_gone, provider_engine_address

log = logging.getLogger("cf_access.providers")

# Imported by the program and by the dynamic provider host; in the latter, exit when the
# engine dies (pulumi_sdk.exit_when_engine_is_gone).
exit_when_engine_is_gone(sys.argv)

# Audit reason for a user cf-access creates.
JOINED = "a mapping grants this user a role"

# The one-run override that lets a delete (pulumi destroy) remove managed roles.
ALLOW_DESTROY_ENV = "CF_ACCESS_ALLOW_DESTROY"


class SessionProvider(ResourceProvider):
    serialize_as_secret_always = False

    def __init__(self, stack: str | None = None) -> None:
        self._session: Session | None = None
        # The stack name travels with the pickled provider: the engine does not tell
        # dynamic providers which stack they serve (for the audit trail).
        self._stack = stack
        self._audit: AuditTrail | None = None
        self._engine: str | None = None

    def configure(self, req: ConfigureRequest) -> None:
        self._session = session_from_config(req.config)
        self._engine = provider_engine_address(sys.argv)
        self._audit = audit_trail_from_config(req.config, stack=self._stack)
        if self._audit is not None:
            self._audit.check()  # a bad auditLog path fails before any CF write

    def audit(
        self, action: AuditAction, user: str, scope: str | None, role: str | None, reason: str, operation: str
    ) -> None:
        """Called after each write CF accepted (components/audit.py)."""
        if self._audit is not None:
            self._audit.record(action, user, scope, role, reason, operation=operation)

    def before_write(self) -> None:
        """Stops before a CF change when the audit trail can no longer record it."""
        if self._audit is not None:
            self._audit.ensure_writable()

    def ensure_user(self, key: str, reason: str, operation: str) -> CfUser:
        """The CF user for a member key, created (and audited once) when missing."""
        user, created = self.session.ensure_user(key)
        if created:
            self.audit("create-user", key, None, None, reason, operation)
        return user

    def delete_cf_user(self, key: str, user_guid: str | None, operation: str) -> None:
        """Delete the CC user (async job), then the UAA user; audited once, after both.

        ``user_guid`` None: the CC user is already gone (a deletion that stopped half-way):
        finish it by deleting the UAA user."""
        session = self.session
        ref = UserRef.parse(key)
        uaa_user = session.client.find_uaa_user(ref.username, ref.origin)
        if user_guid is None and uaa_user is None:
            return
        self.before_write()
        if user_guid is not None:
            session.client.delete_user(user_guid)
            session.forget_user(user_guid)
        if uaa_user is not None:
            session.client.delete_uaa_user(uaa_user.id)
        self.audit("delete-user", key, None, None, "no mapping grants this user anything", operation)

    def share_refresh_read(self) -> None:
        """Called by read() (a refresh): the program of this run then reads CF no second
        time (components/cloudfoundry/shared_read.py)."""
        self.session.share_read(self._engine)

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
        self._engine = None
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


class UserSetProvider(SessionProvider):
    """Every CF user cf-access manages for one UAA origin (one resource, a map of users).

    Memberships create the users they need (a role needs its user), so on an initial
    run this resource only confirms them from the bulk user list. Its output ``created``
    lists the users cf-access created (the process session knows which): only those
    are ever deleted. It is ordered after every membership, so on update it
    deprovisions leavers *after* their roles went: under ``deprovisionPolicy:
    delete-user`` it deletes a leaver cf-access created who holds no role anywhere in
    the foundation any more (CC user, then UAA user; a deletion that stopped half-way is
    finished by the next run); ``roles-only`` just stops tracking them. Refresh drops
    users deleted by hand, so the next ``up`` re-creates them, but keeps a user it created
    whose UAA account is still there (the CC half deleted), so that a deletion stopped
    half-way is never forgotten. Deleting the resource never deletes users.
    id = ``users:<origin>``.
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
        # A user set is registered after every membership finished (it depends on them):
        # writes CF rejected in this run make it "change", so that update() fails the run.
        rejected = bool(self.session.failures())
        changed = bool(replaces) or _users(olds) != _users(news) or rejected
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=False)

    def _fail_on_rejected_writes(self) -> None:
        failures = self.session.failures()
        if failures:
            listed = "\n".join(f"  - {f}" for f in failures)
            raise RuntimeError(
                f"Cloud Foundry rejected {len(failures)} change(s); every other change was applied and "
                f"the state records what CF holds, so the next up retries them:\n{listed}"
            )

    def _outs(self, origin: str, users: dict[str, str], created: set[str]) -> dict[str, Any]:
        return {"origin": origin, "users": dict(sorted(users.items())), "created": sorted(created)}

    def _created(self, olds: dict[str, Any], origin: str) -> set[str]:
        before = {str(k) for k in (olds.get("created") or ())}
        return before | {k for k in self.session.created_users() if k.startswith(f"{origin}/")}

    def _ensure_all(self, keys: list[str], operation: str) -> None:
        def ensure(key: str) -> None:
            if not self.session.is_protected(key):
                self.ensure_user(key, JOINED, operation)

        self.session.client.map_concurrently(ensure, keys)

    def _deprovision_all(self, keys: list[str], created: set[str], operation: str) -> set[str]:
        """Deletes (delete-user) the leavers that may go; returns those deleted."""
        session = self.session
        if session.deprovision_policy != "delete-user":
            return set()  # roles-only: the memberships already removed the roles
        deleted: set[str] = set()

        def delete(key: str) -> None:
            if self._delete_user(key, created, operation):
                deleted.add(key)

        session.client.map_concurrently(delete, keys)
        return deleted

    def _delete_user(self, key: str, created: set[str], operation: str) -> bool:
        session = self.session
        if session.is_protected(key):
            log.warning("not deleting protected user %s", key)
            return False
        if key not in created:
            log.warning("not deleting %s: cf-access did not create this user", key)
            return False
        user = session.find_user(key)
        if user is not None and session.holds_any_role(user.guid):
            held = ", ".join(f"{scope} {role}" for scope, role in session.roles_of_user(user.guid)[:3])
            log.warning("not deleting %s: still holds roles cf-access does not manage (%s)", key, held)
            return False
        self.delete_cf_user(key, user.guid if user is not None else None, operation)
        return True

    def create(self, props: dict[str, Any]) -> CreateResult:
        users = _users(props)
        self._ensure_all(sorted(users), "create")
        outs = self._outs(props["origin"], users, self._created({}, props["origin"]))
        self._fail_on_rejected_writes()
        return CreateResult(id_=f"users:{props['origin']}", outs=outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        before, after = _users(olds), _users(news)
        joined = sorted(after.keys() - before.keys())
        left = sorted(before.keys() - after.keys())
        if joined or left:
            log.info("users:%s: %d joined, %d left", news["origin"], len(joined), len(left))
        self._ensure_all(joined, "update")
        created = self._created(olds, news["origin"])
        deleted = self._deprovision_all(left, created, "update")
        self._fail_on_rejected_writes()
        return UpdateResult(outs=self._outs(news["origin"], after, (created - deleted) & set(after)))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # From the bulk user list (one paged read per process), not a GET per user.
        self.share_refresh_read()
        session = self.session
        recorded = {str(k) for k in (props.get("created") or ())}
        present = {
            k: v
            for k, v in _users(props).items()
            if session.is_protected(k)
            or session.find_user(k) is not None
            or self._deletion_stopped_half_way(k, recorded)
        }
        created = recorded & set(present)
        outs = self._outs(str(props.get("origin")), present, created)
        inputs = {"origin": outs["origin"], "users": outs["users"]}
        return ReadResult(id_=id_, outs=outs, inputs=inputs)

    def _deletion_stopped_half_way(self, key: str, created: set[str]) -> bool:
        """A user cf-access created whose CC user is gone but whose UAA account is not.

        Kept in state by a refresh: dropping it would leave the UAA account orphaned for
        good, since nothing would ever try to delete it again. A leaver's next update then
        finishes the deletion (``delete_cf_user``); a person still mapped gets their CC
        user back with their roles. One UAA lookup, only for users missing from the bulk list.
        A read-only client without ``scim.read`` cannot look: the user is kept, which costs
        nothing (the next update finds no UAA account, or re-creates a mapped person)."""
        if key not in created:
            return False
        if SCIM_READ not in self.session.client.granted_scopes():
            return True
        ref = UserRef.parse(key)
        return self.session.client.find_uaa_user(ref.username, ref.origin) is not None

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # Never deletes users: a destroy (or an origin that left the mappings, retired by the
        # program first) only stops tracking them. Refused without the destroy override, so
        # that a plain destroy changes nothing at all.
        users = _users(props)
        if users and not allow_destroy():
            raise RuntimeError(
                f"users:{props.get('origin')}: refusing to delete the record of {len(users)} managed "
                f"user(s) without {ALLOW_DESTROY_ENV}=true. Nothing was changed. "
                "docs/operations.md, 'Destroy'."
            )


class UserProvider(SessionProvider):
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
# Retired: one resource per (scope, role type)
# ---------------------------------------------------------------------------


def allow_destroy(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(ALLOW_DESTROY_ENV, "").strip().lower() in ("1", "true", "yes")


def destroy_refused(what: str, held: list[str]) -> RuntimeError:
    return RuntimeError(
        f"{what}: refusing to remove {len(held)} managed role assignment(s) "
        f"({', '.join(held[:3])}{', …' if len(held) > 3 else ''}) on delete. Nothing was changed. "
        f"To remove them (pulumi destroy), run again with {ALLOW_DESTROY_ENV}=true; to stop managing "
        "them and leave the roles in place, remove the resource from the state "
        "(pulumi state delete <urn>). docs/operations.md, 'Destroy'."
    )


def _members(props: dict[str, Any]) -> dict[str, str]:
    members = props.get("members") or {}
    return {str(k): str(v) for k, v in members.items()}


def membership_id(props: dict[str, Any]) -> str:
    scope = props["org"] if not props.get("space") else f"{props['org']}/{props['space']}"
    return f"{scope}:{props['role']}"


class MembershipProvider(SessionProvider):
    """Holders of one role type in one org or space: the model before ``cf:OrgAccess``.

    The program no longer declares these; they live on only in stacks deployed by earlier
    versions, until the first run of this version upgrades them (docs/operations.md,
    "Upgrading"). That run creates each org's ``cf:OrgAccess``, which takes over every role
    these managed (``adopt``, components/changes.py), and then deletes these: a delete
    only forgets, it never writes to CF, so the upgrade makes 0 CF writes and cannot remove
    a role the new resources keep. Refresh still reads them (a refresh before upgrading)."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=_members(olds) != _members(news))

    def create(self, props: dict[str, Any]) -> CreateResult:
        raise RuntimeError(
            f"{membership_id(props)}: cf:RoleMembership is retired; this version declares one "
            "cf:OrgAccess per org (docs/operations.md, 'Upgrading')"
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        raise RuntimeError(
            f"{membership_id(news)}: cf:RoleMembership is retired; this version declares one "
            "cf:OrgAccess per org (docs/operations.md, 'Upgrading')"
        )

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        session = self.session
        try:
            if props.get("space"):
                scope_guid = session.space(props["org"], props["space"]).guid
            else:
                scope_guid = session.org(props["org"]).guid
        except ScopeNotFound as gone:
            log.warning("%s: %s; dropping it from the state", membership_id(props), gone)
            return ReadResult(id_=None, outs={})
        live = session.live_holders(scope_guid, props["role"])
        authoritative = props.get("ownership") == "authoritative"
        members = refreshed_members(_members(props), live, authoritative, session.is_protected)
        outs = {**{k: props.get(k) for k in ("org", "space", "role", "ownership")}, "members": members}
        return ReadResult(id_=id_, outs=outs, inputs=dict(outs))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        if _members(props):
            log.warning(
                "%s: retired cf:RoleMembership forgotten, its %d role assignment(s) left in place "
                "(the org's cf:OrgAccess manages them)",
                membership_id(props),
                len(_members(props)),
            )


def reason_of(exc: BaseException) -> str:
    """CF's answer, without a traceback (the error classes carry code, title and detail)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
