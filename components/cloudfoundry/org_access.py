"""``cf:OrgAccess``: every org role and space role cf-access grants in one org.

One resource per org (one mapping file): its input ``roles`` maps a role key
(``organization_manager``, ``dev/space_developer``; model.role_key) to the members
``"<origin>/<username>" -> provenance``. The preview of a change is per person,
under the org: ``~ roles: { ~ dev/space_developer: { + corp/judy@corp.com: "group …" } }``.

Each operation converges the whole org in one ordered pass, so CC's rule that a
space role needs ``organization_user`` (and that ``organization_user`` cannot go
while space roles remain) lives here and nowhere else:

1. the users of every add (created when missing);
2. ``organization_user`` adds, the declared ones and those a space add needs;
3. every other add;
4. every removal except ``organization_user``;
5. ``organization_user`` removals, skipped (kept, with a ``kept:`` provenance) while the
   person still holds space roles in the org.

Writes inside a step run concurrently, bounded by the client's ``concurrency``.
What a step adds and removes is ``components/changes.membership_delta`` per role
key: adds are desired holders CF lacks; removals are only managed holders (this
resource's state) that are no longer desired. ``create`` manages nothing yet, so it
only adds (its preview could not show a removal); an org upgraded from the
per-scope model hands its managed holders over through ``adopt`` (changes._adopt).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, UpdateResult

from components.audit import AuditWriteError
from components.changes import FOUND_IN_CF, kept_reason, membership_delta, refreshed_members
from components.cloudfoundry.providers import (
    JOINED,
    SessionProvider,
    allow_destroy,
    destroy_refused,
    reason_of,
)
from components.cloudfoundry.session import ScopeNotFound
from components.model import ORG_ROLE_TYPES, ORG_USER, SPACE_ROLE_TYPES, Scope, UserRef, parse_role_key

log = logging.getLogger("cf_access.org_access")

Roles = dict[str, dict[str, str]]


def roles_of(props: dict[str, Any], name: str = "roles") -> Roles:
    """``{role key: {member: provenance}}`` of an input or output map."""
    raw = props.get(name) or {}
    return {str(k): {str(m): str(v) for m, v in (members or {}).items()} for k, members in raw.items()}


@dataclass
class _Target:
    """One role key of the org as this operation sees it."""

    key: str
    scope: Scope
    role: str
    scope_guid: str
    desired: dict[str, str]
    live: dict[str, str]  # member -> user guid
    adds: tuple[str, ...]
    removes: tuple[str, ...]
    was: dict[str, str]  # what the state recorded (provenance) for the audit trail


@dataclass
class _Outcome:
    """The state after the operation (what CF holds of what cf-access manages) and the
    writes CF rejected, each naming the person, scope, role and CF's answer."""

    roles: Roles = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, key: str, member: str, provenance: str) -> None:
        with self.lock:
            self.roles.setdefault(key, {})[member] = provenance

    def drop(self, key: str, member: str) -> None:
        with self.lock:
            self.roles.get(key, {}).pop(member, None)

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)


class OrgAccessProvider(SessionProvider):
    """Org and space roles of one org (module docstring). id = the org's name."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        org = news.get("org")
        if not isinstance(org, str) or not org or org != org.strip():
            failures.append(CheckFailure("org", "org must be a non-empty string without surrounding spaces"))
            return CheckResult(news, failures)
        if news.get("ownership") not in ("additive", "authoritative"):
            failures.append(CheckFailure("ownership", "ownership must be additive or authoritative"))
        for name in ("roles", "adopt"):
            for key, members in roles_of(news, name).items():
                scope, role = parse_role_key(org, key)
                allowed = SPACE_ROLE_TYPES if scope.space else ORG_ROLE_TYPES
                if role not in allowed:
                    kind = "a space" if scope.space else "an org"
                    failures.append(CheckFailure(name, f"{key!r}: {role!r} is not {kind} role type"))
                for member in members:
                    try:
                        UserRef.parse(member)
                    except ValueError as exc:
                        failures.append(CheckFailure(name, f"{key}: {exc}"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # ``adopt`` only matters to the create of an upgraded org; it never changes a resource.
        changed = roles_of(olds) != roles_of(news) or olds.get("ownership") != news.get("ownership")
        replaces = ["org"] if olds.get("org") != news.get("org") else []
        return DiffResult(changes=changed or bool(replaces), replaces=replaces, delete_before_replace=True)

    # -- CRUD ----------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> CreateResult:
        outcome = self._converge(props, managed=None, operation="create")
        self._adopt(props, outcome)
        return CreateResult(id_=props["org"], outs=self._finish(props, outcome))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        outcome = self._converge(news, managed=roles_of(olds), operation="update")
        return UpdateResult(outs=self._finish(news, outcome))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        self.share_refresh_read()
        session = self.session
        org = props["org"]
        try:
            session.org(org)
        except ScopeNotFound as gone:
            # Deleted in CF: the refresh drops the org (its roles went with it); if the
            # mappings still list it, the program's missing-scope guard says what to do.
            log.warning("%s: %s; dropping it from the state", org, gone)
            return ReadResult(id_=None, outs={})
        authoritative = props.get("ownership") == "authoritative"
        roles: Roles = {}
        for key, managed in roles_of(props).items():
            scope_guid = self._scope_guid(org, key)
            if scope_guid is None:
                continue  # the space was deleted in CF, and its roles with it
            live = session.live_holders(scope_guid, parse_role_key(org, key)[1])
            roles[key] = refreshed_members(managed, live, authoritative, session.is_protected)
        outs = self._outs(props, roles)
        return ReadResult(id_=id_, outs=outs, inputs=dict(outs))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Removes roles only on a reviewed destroy.

        A normal run never deletes an org that manages anyone: an org that leaves the
        mappings stays declared with no roles for one run (its update removes, and its
        preview shows, every holder), and is deleted once empty. Anything else - ``pulumi
        destroy``, an older program - removes nothing unless ``CF_ACCESS_ALLOW_DESTROY=true``:
        then exactly the members cf-access granted (not holders it only found in CF), in the
        same order as an update (space roles before organization_user)."""
        org = props["org"]
        granted = {
            key: {k: v for k, v in members.items() if v != FOUND_IN_CF}
            for key, members in roles_of(props).items()
        }
        try:
            self.session.org(org)
        except ScopeNotFound:
            return  # the org is gone, and its roles with it
        held = sorted(
            {
                member
                for key, members in granted.items()
                if (guid := self._scope_guid(org, key)) is not None
                for member in members
                if member in self.session.live_holders(guid, parse_role_key(org, key)[1])
                and not self.session.is_protected(member)
            }
        )
        if not held:
            return
        if not allow_destroy():
            raise destroy_refused(org, held)
        outcome = self._converge({**props, "roles": {}}, managed=granted, operation="delete")
        if outcome.failures:
            raise RuntimeError("; ".join(sorted(outcome.failures)))

    # -- the ordered pass ------------------------------------------------------------
    def _converge(self, props: dict[str, Any], managed: Roles | None, operation: str) -> _Outcome:
        session = self.session
        org_name: str = props["org"]
        org_guid = session.org(org_name).guid
        targets = self._targets(org_name, roles_of(props), managed)
        outcome = _Outcome()
        for t in targets:  # what stays as it is: desired holders CF shows, protected ones as given
            for member, provenance in t.desired.items():
                if member in t.live or session.is_protected(member):
                    outcome.set(t.key, member, provenance)
        n_adds = sum(len(t.adds) for t in targets)
        n_removes = sum(len(t.removes) for t in targets)
        if n_adds or n_removes:
            log.info("%s: adding %d, removing %d role assignments", org_name, n_adds, n_removes)

        users = self._ensure_users(targets, outcome, operation)
        org_users = [t for t in targets if t.role == ORG_USER]
        others = [t for t in targets if t.role != ORG_USER]
        # 2. organization_user first: declared adds, and every person a space add needs it for.
        needs_org_user: dict[str, str] = {}
        for t in org_users:
            for member in t.adds:
                needs_org_user[member] = t.desired[member]
        for t in others:
            if t.scope.space is not None:
                for member in t.adds:
                    needs_org_user.setdefault(member, f"implied by space role {t.key}")
        blocked = self._add_org_users(
            org_name, org_guid, needs_org_user, users, org_users, outcome, operation
        )
        # 3. every other add (a space add only where organization_user is in place)
        self._run(
            [
                (t, m)
                for t in others
                for m in t.adds
                if m in users and (t.scope.space is None or m not in blocked)
            ],
            lambda t, m: self._add(org_name, t, m, users[m], outcome, operation),
        )
        # 4. removals, organization_user last (5.), each step as one batch of deletes
        self._remove_all([(t, m) for t in others for m in t.removes], outcome, operation)
        leaving = [
            (t, m) for t in org_users for m in t.removes if self._org_user_may_go(org_guid, t, m, outcome)
        ]
        self._remove_all(leaving, outcome, operation)
        return outcome

    def _targets(self, org: str, desired: Roles, managed: Roles | None) -> list[_Target]:
        session = self.session
        out: list[_Target] = []
        for key in sorted(set(desired) | set(managed or {})):
            scope, role = parse_role_key(org, key)
            scope_guid = self._scope_guid(org, key)
            if scope_guid is None:
                if desired.get(key):
                    # A mapped space that is missing never gets here (the program's
                    # missing-scope guard stops the run first); a race with a delete does.
                    self.session.record_failure(
                        f"{scope.label}: space does not exist in Cloud Foundry; create it or remove it "
                        "from the mappings"
                    )
                continue  # a space deleted in CF: its roles went with it
            live = session.live_holders(scope_guid, role)
            was = (managed or {}).get(key)
            delta = membership_delta(
                desired.get(key, {}), live, None if managed is None else set(was or {}), session.is_protected
            )
            out.append(
                _Target(
                    key,
                    scope,
                    role,
                    scope_guid,
                    desired.get(key, {}),
                    live,
                    delta.adds,
                    delta.removes,
                    was or {},
                )
            )
        return out

    def _scope_guid(self, org: str, key: str) -> str | None:
        scope, _ = parse_role_key(org, key)
        try:
            if scope.space is None:
                return self.session.org(org).guid
            return self.session.space(org, scope.space).guid
        except ScopeNotFound:
            return None

    def _ensure_users(self, targets: Iterable[_Target], outcome: _Outcome, operation: str) -> dict[str, str]:
        """member -> user guid for every member to add (created when missing)."""
        wanted = sorted({m for t in targets for m in t.adds})
        found: dict[str, str] = {}
        lock = threading.Lock()

        def one(member: str) -> None:
            try:
                self.before_write()
                user = self.ensure_user(member, JOINED, operation)
                with lock:
                    found[member] = user.guid
            except AuditWriteError:
                raise
            except Exception as exc:
                outcome.fail(f"could not create user {member}: {reason_of(exc)}")

        self.session.client.map_concurrently(one, wanted)
        return found

    def _add_org_users(
        self,
        org: str,
        org_guid: str,
        needed: dict[str, str],
        users: dict[str, str],
        org_user_targets: list[_Target],
        outcome: _Outcome,
        operation: str,
    ) -> set[str]:
        """Grant organization_user where missing; returns the members it failed for (their
        space adds cannot succeed)."""
        declared = next((t for t in org_user_targets), None)
        blocked: set[str] = {m for m in needed if m not in users}
        lock = threading.Lock()

        def one(member: str) -> None:
            try:
                self.before_write()
                role = self.session.ensure_org_user(org_guid, users[member])
                if role is not None:
                    self.audit("add", member, org, ORG_USER, needed[member], operation)
                if declared is not None and member in declared.desired:
                    outcome.set(declared.key, member, declared.desired[member])
            except AuditWriteError:
                raise
            except Exception as exc:
                with lock:
                    blocked.add(member)
                outcome.fail(f"{org} {ORG_USER}: could not add {member}: {reason_of(exc)}")

        self.session.client.map_concurrently(one, sorted(m for m in needed if m in users))
        return blocked

    def _add(
        self, org: str, t: _Target, member: str, user_guid: str, outcome: _Outcome, operation: str
    ) -> None:
        session = self.session
        try:
            self.before_write()
            if session.role_guid(t.scope_guid, t.role, user_guid) is None:
                if t.scope.space is None:
                    role = session.client.create_role(t.role, user_guid, org_guid=t.scope_guid)
                else:
                    role = session.client.create_role(t.role, user_guid, space_guid=t.scope_guid)
                session.record_created(role)
                self.audit("add", member, t.scope.label, t.role, t.desired.get(member, ""), operation)
            outcome.set(t.key, member, t.desired[member])
        except AuditWriteError:
            raise
        except Exception as exc:
            outcome.fail(f"{t.scope.label} {t.role}: could not add {member}: {reason_of(exc)}")

    def _remove_all(self, items: list[tuple[_Target, str]], outcome: _Outcome, operation: str) -> None:
        """Delete the roles of ``items`` (one batch: client.delete_roles), then record each."""
        if not items:
            return
        session = self.session
        self.before_write()
        by_guid: dict[str, tuple[_Target, str]] = {}
        for t, member in items:
            role_guid = session.role_guid(t.scope_guid, t.role, t.live[member])
            if role_guid is None:  # gone meanwhile
                session.record_deleted(t.scope_guid, t.role, t.live[member])
                outcome.drop(t.key, member)
            else:
                by_guid[role_guid] = (t, member)
        failures = session.client.delete_roles(sorted(by_guid))
        for role_guid, (t, member) in sorted(by_guid.items(), key=lambda kv: (kv[1][0].key, kv[1][1])):
            was = t.was.get(member, "")
            error = failures.get(role_guid)
            if error is not None:
                outcome.set(t.key, member, was or FOUND_IN_CF)  # still held: still managed
                outcome.fail(f"{t.scope.label} {t.role}: could not remove {member}: {reason_of(error)}")
                continue
            reason = f"no longer granted (was: {was})" if was and was != FOUND_IN_CF else FOUND_IN_CF
            if operation == "delete":
                reason = "destroy (CF_ACCESS_ALLOW_DESTROY)"
            self.audit("remove", member, t.scope.label, t.role, reason, operation)
            session.record_deleted(t.scope_guid, t.role, t.live[member])
            outcome.drop(t.key, member)

    def _org_user_may_go(self, org_guid: str, t: _Target, member: str, outcome: _Outcome) -> bool:
        """CC refuses to delete organization_user while space roles remain, and deleting those
        to make room would touch roles nobody reviewed: keep it, and say so."""
        session = self.session
        held = session.space_roles_in_org(t.live[member], org_guid)
        if not held:
            return True
        labels = [f"{session.scope_label(s).partition('/')[2]}/{r}" for s, r, _ in held]
        reason = kept_reason(labels)
        log.warning("%s %s: keeping %s: %s", t.scope.label, ORG_USER, member, reason)
        outcome.set(t.key, member, reason)
        return False

    def _adopt(self, props: dict[str, Any], outcome: _Outcome) -> None:
        """Record ``adopt``'s holders CF still shows as managed, without a write."""
        session = self.session
        org = props["org"]
        for key, members in roles_of(props, "adopt").items():
            scope_guid = self._scope_guid(org, key)
            if scope_guid is None:
                continue
            live = session.live_holders(scope_guid, parse_role_key(org, key)[1])
            for member, provenance in members.items():
                if member in live and not session.is_protected(member):
                    outcome.roles.setdefault(key, {}).setdefault(member, provenance)

    def _run(self, items: list[tuple[_Target, str]], write: Callable[[_Target, str], None]) -> None:
        self.session.client.map_concurrently(lambda item: write(*item), items)

    def _outs(self, props: dict[str, Any], roles: Roles) -> dict[str, Any]:
        return {
            "org": props["org"],
            "ownership": props["ownership"],
            "roles": {k: dict(sorted(v.items())) for k, v in sorted(roles.items())},
        }

    def _finish(self, props: dict[str, Any], outcome: _Outcome) -> dict[str, Any]:
        """The state as CF holds it. Rejected writes are not raised here: a failed resource
        would stop the engine from running its dependents (the user sets), i.e. the other
        changes. The session collects them and the user sets, which run last, fail the run
        with every one of them (UserSetProvider)."""
        for failure in outcome.failures:
            log.error("%s", failure)
            self.session.record_failure(failure)
        # Every declared key stays in the state (an authoritative org's empty keys name the
        # scopes a refresh sweeps), plus keys that still hold managed members.
        roles: Roles = {key: {} for key in roles_of(props)}
        for key, members in outcome.roles.items():
            if members or key in roles:
                roles[key] = members
        return self._outs(props, roles)
