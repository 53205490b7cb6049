"""The plan: mappings x identity snapshot -> desired CF access. Pure, no I/O.

Rules (see docs/mappings.md and DESIGN.md):

* Only active people get roles; inactive group members are simply absent (their
  roles become removals downstream) and are listed in ``skipped_inactive``.
* Named users are granted even when the IdP does not list them, with the
  default source's origin unless the entry gives one - except when the snapshot
  lists them as inactive (a leaver named in a file is not re-granted). Someone
  listed as inactive in any group is treated as inactive everywhere.
* Everyone with a space role in an org is in that org's ``organization_user``
  membership, with provenance ``implied by space role dev/space_developer``.
* Authoritative orgs get all org role types and all space role types of every
  listed space (empty ones too: they sweep unmapped holders). Additive orgs get
  only the role types the mappings mention, plus ``organization_user`` when any
  space role is mentioned. The set of memberships never depends on who is in a
  group, so a group emptying out never deletes a resource.
* Protected users are never in any membership or in ``users``; the ones the
  mappings would have granted are listed in ``excluded_protected``.
* Grants with ``until`` in the past are dropped (with a warning); grants ending
  within ``expiry_warning_days`` produce a warning.
* Provenance in ``Membership.members`` names the file only (``group
  directory:payments-dev (mappings/payments.yaml)``): it is a resource input
  stored in state, and a line number there would update every membership below
  a line inserted at the top of a file. The same reasons with ``file:line``, for
  people (PR summary, ``why``), are in ``AccessPlan.located``.
* Output is sorted: the same input gives the same plan.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from components.identity.base import IdentitySnapshot, Person
from components.mappings import GroupGrant, Mappings, OrgMapping, RoleGrants, UserGrant
from components.model import (
    ORG_ROLE_TYPES,
    ORG_USER,
    SPACE_ROLE_TYPES,
    Membership,
    Ownership,
    RoleType,
    Scope,
    UserRef,
    role_key,
)
from components.protection import ProtectedUsers

MAX_REASONS = 3  # provenance values appear in preview diffs: keep them short


class PlanError(ValueError):
    """The inputs cannot be planned (e.g. a referenced group is missing from the snapshot)."""


@dataclass(frozen=True)
class PlanSettings:
    """Plan knobs from stack config.

    ``protected_users`` are regexes matched by search, case-insensitive, against
    both ``origin/username`` and the bare username (components/protection.py).
    ``source_origins`` gives the UAA origin of each identity source; named users
    without an explicit origin get the default source's.
    """

    protected_users: tuple[str, ...] = ()
    default_source: str = "directory"
    source_origins: Mapping[str, str] = field(default_factory=dict)
    expiry_warning_days: int = 7
    _protected: ProtectedUsers = field(init=False, repr=False, compare=False, default=ProtectedUsers())

    def __post_init__(self) -> None:
        object.__setattr__(self, "protected_users", tuple(self.protected_users))
        object.__setattr__(self, "source_origins", MappingProxyType(dict(self.source_origins)))
        object.__setattr__(self, "_protected", ProtectedUsers.from_patterns(self.protected_users))

    def is_protected(self, user: UserRef) -> bool:
        return self._protected.matches(user.key)

    def default_origin(self) -> str:
        try:
            return self.source_origins[self.default_source]
        except KeyError:
            raise PlanError(
                f"no origin configured for the default source {self.default_source!r} "
                "(needed for named users without an origin)"
            ) from None


@dataclass(frozen=True, order=True)
class DesiredUser:
    """A CF user the plan needs, with every role it is granted (``org/space/role``)."""

    ref: UserRef
    grants: tuple[str, ...]


@dataclass(frozen=True)
class SpacePlan:
    name: str
    memberships: tuple[Membership, ...]


@dataclass(frozen=True)
class OrgPlan:
    name: str
    ownership: Ownership
    org_memberships: tuple[Membership, ...]
    spaces: tuple[SpacePlan, ...]

    def memberships(self) -> Iterator[Membership]:
        yield from self.org_memberships
        for space in self.spaces:
            yield from space.memberships

    def roles(self) -> dict[str, dict[str, str]]:
        """``{role key: {member: provenance}}``: the org's ``cf:OrgAccess`` input
        (``organization_manager``, ``dev/space_developer``; model.role_key)."""
        return {role_key(m.scope, m.role): dict(sorted(m.members.items())) for m in self.memberships()}

    def membership_keys(self) -> list[str]:
        return sorted(self.roles())


@dataclass(frozen=True)
class AccessPlan:
    """Desired CF access: users and role memberships with provenance."""

    users: tuple[DesiredUser, ...]
    orgs: tuple[OrgPlan, ...]
    warnings: tuple[str, ...] = ()
    excluded_protected: tuple[str, ...] = ()
    skipped_inactive: tuple[str, ...] = ()
    # (scope label, role, member key) -> the member's provenance with file:line (for people;
    # the state keeps the line-free text in Membership.members).
    located: Mapping[tuple[str, RoleType, str], str] = field(default_factory=dict, hash=False)

    def memberships(self) -> Iterator[Membership]:
        for org in self.orgs:
            yield from org.memberships()

    def located_reason(self, scope: str, role: RoleType, key: str) -> str | None:
        """Why ``key`` holds ``role`` in ``scope`` (label ``org`` or ``org/space``), with
        ``file:line``; None when the plan does not grant it."""
        return self.located.get((scope, role, key))

    def membership(self, org: str, role: RoleType, space: str | None = None) -> Membership | None:
        return self._by_scope_role.get((Scope(org, space), role))

    @cached_property
    def _by_scope_role(self) -> dict[tuple[Scope, str], Membership]:
        # run_changes looks up every deployed membership: a scan per lookup was quadratic
        # (25 s of 8,800 memberships at the L size), an index built once is linear.
        index: dict[tuple[Scope, str], Membership] = {}
        for m in self.memberships():
            index.setdefault((m.scope, m.role), m)  # the first, as the scan returned
        return index

    def summary(self) -> dict[str, int]:
        """Counts (a plain dict, so it can be exported as a stack output or logged)."""
        memberships = list(self.memberships())
        return {
            "orgs": len(self.orgs),
            "spaces": sum(len(o.spaces) for o in self.orgs),
            "memberships": len(memberships),
            "assignments": sum(len(m.members) for m in memberships),
            "users": len(self.users),
            "excluded_protected": len(self.excluded_protected),
            "skipped_inactive": len(self.skipped_inactive),
            "warnings": len(self.warnings),
        }

    def summary_line(self) -> str:
        return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.summary().items())


# --------------------------------------------------------------------------- building

# A reason is (rank, text, text with line): groups first, then named users, then implied;
# the line-free text breaks ties, so both renderings list the same reasons in the same order.
_Reason = tuple[int, str, str]
_Members = dict[str, set[_Reason]]


def build_plan(
    mappings: Mappings, snapshot: IdentitySnapshot, settings: PlanSettings, today: dt.date
) -> AccessPlan:
    """Turn validated mappings and an identity snapshot into the desired access (pure)."""
    builder = _Builder(snapshot, settings, today)
    orgs = tuple(builder.org(org) for org in sorted(mappings.orgs, key=lambda o: o.name))
    users = tuple(DesiredUser(ref, tuple(sorted(grants))) for ref, grants in sorted(builder.users.items()))
    return AccessPlan(
        users=users,
        orgs=orgs,
        warnings=tuple(sorted(set(builder.warnings))),
        excluded_protected=tuple(sorted(builder.excluded)),
        skipped_inactive=tuple(sorted(builder.inactive)),
        located=MappingProxyType(dict(sorted(builder.located.items()))),
    )


class _Builder:
    def __init__(self, snapshot: IdentitySnapshot, settings: PlanSettings, today: dt.date) -> None:
        self.snapshot = snapshot
        self.settings = settings
        self.today = today
        self.warnings: list[str] = []
        self.excluded: set[str] = set()
        self.inactive: set[str] = set()
        self.users: dict[UserRef, set[str]] = {}
        self.located: dict[tuple[str, RoleType, str], str] = {}
        self._protected: dict[UserRef, bool] = {}
        # Anyone listed as inactive anywhere in the snapshot is treated as inactive everywhere
        # (least privilege if a source ever reports one person inconsistently).
        self.inactive_refs: frozenset[UserRef] = frozenset(
            p.ref for people in snapshot.groups.values() for p in people if not p.active
        )

    def org(self, org: OrgMapping) -> OrgPlan:
        authoritative = org.ownership == "authoritative"
        org_roles: dict[RoleType, _Members] = {}
        if authoritative:
            org_roles = {role: {} for role in ORG_ROLE_TYPES}
        for rg in org.roles:
            org_roles[rg.role] = self.grant(rg, Scope(org.name))

        spaces: list[tuple[str, dict[RoleType, _Members]]] = []
        any_space_role = False
        for space in sorted(org.spaces, key=lambda s: s.name):
            roles: dict[RoleType, _Members] = {}
            if authoritative:
                roles = {role: {} for role in SPACE_ROLE_TYPES}
            for rg in space.roles:
                roles[rg.role] = self.grant(rg, Scope(org.name, space.name))
                any_space_role = True
            spaces.append((space.name, roles))

        if any_space_role or authoritative:
            org_user = org_roles.setdefault(ORG_USER, {})
            for space_name, roles in spaces:
                for role, members in roles.items():
                    for key in members:
                        implied = f"{space_name}/{role}"
                        org_user.setdefault(key, set()).add((2, implied, implied))

        org_memberships = tuple(
            self.membership(Scope(org.name), role, org.ownership, org_roles[role])
            for role in ORG_ROLE_TYPES
            if role in org_roles
        )
        space_plans = tuple(
            SpacePlan(
                name,
                tuple(
                    self.membership(Scope(org.name, name), role, org.ownership, roles[role])
                    for role in SPACE_ROLE_TYPES
                    if role in roles
                ),
            )
            for name, roles in spaces
        )
        return OrgPlan(org.name, org.ownership, org_memberships, space_plans)

    def membership(self, scope: Scope, role: RoleType, ownership: Ownership, members: _Members) -> Membership:
        for key in members:
            self.users.setdefault(UserRef.parse(key), set()).add(f"{scope.label}/{role}")
            self.located[(scope.label, role, key)] = _render(members[key], with_lines=True)
        return Membership(
            scope=scope,
            role=role,
            ownership=ownership,
            members={key: _render(members[key]) for key in sorted(members)},
        )

    def grant(self, rg: RoleGrants, scope: Scope) -> _Members:
        members: _Members = {}
        target = f"{scope.label}/{rg.role}"
        for g in rg.groups:
            ref = g.ref(self.settings.default_source)
            if not self.in_force(g, f"group {ref}", target):
                continue
            try:
                people = self.snapshot.members(ref)
            except KeyError:
                raise PlanError(
                    f"{g.location}: group {ref} is not in the identity snapshot; refusing to plan without it"
                ) from None
            what = f"group {ref}{_until(g.until)}"
            reason = (0, f"{what} ({g.location.file})", f"{what} ({g.location})")
            for person in people:
                self.add(members, person.ref, reason, person)
        for u in rg.users:
            ref_user = UserRef(u.origin or self.settings.default_origin(), u.username)
            if not self.in_force(u, f"user {ref_user.key}", target):
                continue
            if ref_user in self.inactive_refs:
                self.warnings.append(
                    f"{u.location}: user {ref_user.key} is inactive in the identity provider; "
                    f"not granted {target}"
                )
                self.inactive.add(ref_user.key)
                continue
            what = f"named user{_until(u.until)}"
            self.add(members, ref_user, (1, f"{what} ({u.location.file})", f"{what} ({u.location})"), None)
        return members

    def protected(self, user: UserRef) -> bool:
        hit = self._protected.get(user)
        if hit is None:
            hit = self._protected[user] = self.settings.is_protected(user)
        return hit

    def add(self, members: _Members, user: UserRef, reason: _Reason, person: Person | None) -> None:
        if self.protected(user):
            self.excluded.add(user.key)
            return
        if person is not None and (not person.active or user in self.inactive_refs):
            self.inactive.add(user.key)
            return
        members.setdefault(user.key, set()).add(reason)

    def in_force(self, grant: GroupGrant | UserGrant, what: str, target: str) -> bool:
        if grant.until is None:
            return True
        days = (grant.until - self.today).days
        if days < 0:
            self.warnings.append(
                f"{grant.location}: grant of {target} to {what} expired on {grant.until.isoformat()}; "
                "it is not applied - remove it from the mappings"
            )
            return False
        if days <= self.settings.expiry_warning_days:
            when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
            self.warnings.append(
                f"{grant.location}: grant of {target} to {what} expires {when} ({grant.until.isoformat()})"
            )
        return True


# The explicit reasons _render writes, parsed back (``until`` and the file are optional parts).
_GROUP_REASON = re.compile(r"group (?P<ref>.+?)(?P<until> until \d{4}-\d{2}-\d{2})? \((?P<file>[^()]+)\)")
_USER_REASON = re.compile(r"named user(?P<until> until \d{4}-\d{2}-\d{2})? \((?P<file>[^()]+)\)")


def locate_provenance(
    provenance: str, mappings: Mappings, scope: Scope, role: RoleType, member: str, settings: PlanSettings
) -> str:
    """``provenance`` as stored in state (file only) with each reason's ``file:line`` put back,
    found in ``mappings`` - for reports built from a preview's state diff (the PR summary).

    Within one scope and role a group or a named user is listed once, so each reason has one
    location. Reasons the mappings no longer hold (a removal's ``was: ...``) stay as they are.
    """
    grants = _role_grants(mappings, scope, role)
    if grants is None:
        return provenance
    return "; ".join(_locate_part(part, grants, member, settings) for part in provenance.split("; "))


def _role_grants(mappings: Mappings, scope: Scope, role: RoleType) -> RoleGrants | None:
    org = mappings.org(scope.org)
    if org is None:
        return None
    if scope.space is None:
        return org.role(role)
    space = org.space(scope.space)
    return None if space is None else space.role(role)


def _locate_part(part: str, grants: RoleGrants, member: str, settings: PlanSettings) -> str:
    group = _GROUP_REASON.fullmatch(part)
    if group is not None:
        for g in grants.groups:
            if g.ref(settings.default_source) == group["ref"] and g.location.file == group["file"]:
                return part.removesuffix(f"({g.location.file})") + f"({g.location})"
        return part
    named = _USER_REASON.fullmatch(part)
    if named is not None:
        ref = UserRef.parse(member)
        default_origin = settings.source_origins.get(settings.default_source)
        for u in grants.users:
            if (u.username, u.origin or default_origin) == (ref.username, ref.origin) and (
                u.location.file == named["file"]
            ):
                return part.removesuffix(f"({u.location.file})") + f"({u.location})"
    return part


def _until(until: dt.date | None) -> str:
    return f" until {until.isoformat()}" if until else ""


def _render(reasons: set[_Reason], *, with_lines: bool = False) -> str:
    ordered = sorted(reasons)
    explicit = [located if with_lines else text for rank, text, located in ordered if rank < 2]
    implied = sorted(text for rank, text, _ in reasons if rank == 2)
    parts = list(explicit)
    if implied:
        label = "implied by space role" if len(implied) == 1 else "implied by space roles"
        shown = implied[:MAX_REASONS]
        more = f" +{len(implied) - len(shown)} more" if len(implied) > len(shown) else ""
        parts.append(f"{label} {', '.join(shown)}{more}")
    if len(parts) > MAX_REASONS:
        extra = len(parts) - MAX_REASONS
        parts = [*parts[:MAX_REASONS], f"+{extra} more"]
    return "; ".join(parts)
