"""What a run will change: the one answer, computed in one place. Pure, no I/O.

Inputs: the plan (what the mappings grant now), what Cloud Foundry holds now,
and what cf-access manages (the stack's last deployed state). Output: every
role the run adds and every role it removes, per scope and role type, plus
the roles it *keeps* although the plan no longer grants them, and the users
it deletes. The guards (mass-removal brake), the providers (at write time,
per membership), the helper CLI (``why``, ``doctor``) and the PR summary all
call these functions, so they cannot disagree on what a run does.

The rules (README "What cf-access will never do"):

* **Removals are only ever of managed holders.** A holder is managed in a
  membership when the deployed state lists them (cf-access granted it, or a
  refresh of an authoritative scope found it in CF). A membership that is not
  in the deployed state yet (its first run) removes nothing: its preview could
  not show removals, so its ``create`` does not make any.
* **Authoritative scopes sweep through refresh.** ``read()`` records holders
  nobody mapped as ``found in CF`` members, so the preview after a refresh
  shows them as removed. The program counts them as if the run refreshes (the
  shipped workflows do): a run without ``--refresh`` removes fewer, never more.
* **Scopes that leave the mappings are retired, not dropped.** A membership in
  the deployed state that the plan no longer has (a deleted or moved mapping
  file, a space or role type removed) stays declared with no members for one
  run, so the preview shows each person losing the role and the brake counts
  them. Once empty it is dropped; deleting an empty membership changes nothing.
* **organization_user is kept while the person holds space roles that this run
  does not remove** (roles cf-access does not manage: unlisted spaces, hand
  grants in additive orgs). CC refuses to delete it otherwise, and deleting
  their space roles to make room would touch roles nobody reviewed. The kept
  member appears in the membership with a ``kept: ...`` provenance.
* **Protected users** are never added or removed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace

from components.current import CurrentAccess
from components.model import ORG_USER, SPACE_ROLE_TYPES, Membership, Ownership, RoleType, Scope
from components.plan import AccessPlan, OrgPlan, SpacePlan

# Provenance of a holder that a refresh found in CF and no mapping grants
# (authoritative scopes); also what read() writes into state.
FOUND_IN_CF = "found in CF, not granted by any mapping"
KEPT_PREFIX = "kept: "

IsProtected = Callable[[str], bool]


@dataclass(frozen=True)
class MembershipDelta:
    """What one membership adds and removes (member keys, sorted)."""

    adds: tuple[str, ...]
    removes: tuple[str, ...]


def membership_delta(
    desired: Collection[str],
    live: Collection[str],
    managed: Collection[str] | None,
    is_protected: IsProtected,
) -> MembershipDelta:
    """The rule every writer and every counter uses.

    ``managed`` is what cf-access manages in this membership (the deployed
    state, as the provider sees it in ``olds``), None when the membership is new.
    Adds: desired holders CF does not show. Removes: managed holders CF shows
    that are no longer desired. Protected users are in neither.
    """
    adds = tuple(sorted(k for k in desired if k not in live and not is_protected(k)))
    if managed is None:
        return MembershipDelta(adds, ())
    live_set = set(live)
    desired_set = set(desired)
    removes = tuple(
        sorted(k for k in managed if k in live_set and k not in desired_set and not is_protected(k))
    )
    return MembershipDelta(adds, removes)


def kept_reason(held: Iterable[str]) -> str:
    """Provenance of an organization_user kept for roles cf-access does not manage."""
    shown = sorted(set(held))
    more = f" +{len(shown) - 3} more" if len(shown) > 3 else ""
    return f"{KEPT_PREFIX}holds roles cf-access does not manage here ({', '.join(shown[:3])}{more})"


# --------------------------------------------------------------------------- deployed state


@dataclass(frozen=True)
class DeployedMembership:
    """A ``cf:RoleMembership`` as the stack's last deployment recorded it."""

    scope: Scope
    role: RoleType
    ownership: Ownership
    members: Mapping[str, str]


@dataclass(frozen=True)
class DeployedUserSet:
    origin: str
    users: frozenset[str]
    created: frozenset[str]  # users cf-access created (only those may be deleted)


@dataclass(frozen=True)
class Deployed:
    """What cf-access manages: the memberships and user sets of the last deployment."""

    memberships: Mapping[tuple[Scope, str], DeployedMembership] = field(default_factory=dict)
    user_sets: Mapping[str, DeployedUserSet] = field(default_factory=dict)

    def membership(self, scope: Scope, role: str) -> DeployedMembership | None:
        return self.memberships.get((scope, role))


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True, order=True)
class RoleChange:
    scope: str  # "org" or "org/space"
    role: str
    member: str
    reason: str = field(compare=False, default="")

    @property
    def org(self) -> str:
        return self.scope.partition("/")[0]


@dataclass(frozen=True)
class RunChanges:
    """Everything the run will change, and the plan as it will be declared."""

    declared: AccessPlan  # the plan + retiring memberships + kept organization_users
    adds: tuple[RoleChange, ...]
    removals: tuple[RoleChange, ...]
    kept: tuple[RoleChange, ...]  # organization_user kept for roles cf-access does not manage
    retiring: tuple[str, ...]  # "scope:role" of memberships that left the mappings
    managed: int  # managed role assignments the brake measures against
    managed_by_org: Mapping[str, int]
    user_deletions: tuple[str, ...] = ()
    retiring_user_sets: tuple[str, ...] = ()  # origins nobody is granted any more

    def removals_by_org(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for change in self.removals:
            counts[change.org] += 1
        return dict(counts)

    def of_member(self, key: str) -> tuple[list[RoleChange], list[RoleChange], list[RoleChange]]:
        """(adds, removals, kept) of one member key."""

        def pick(changes: Iterable[RoleChange]) -> list[RoleChange]:
            return [c for c in changes if c.member == key]

        return pick(self.adds), pick(self.removals), pick(self.kept)


def managed_now(deployed: DeployedMembership | None, live: Collection[str]) -> set[str] | None:
    """What a membership manages as a refreshing run sees it (None: new membership)."""
    if deployed is None:
        return None
    managed = set(deployed.members)
    if deployed.ownership == "authoritative":
        managed |= set(live)  # a refresh records every unmapped holder as found in CF
    return managed


def run_changes(
    plan: AccessPlan,
    current: CurrentAccess,
    deployed: Deployed,
    is_protected: IsProtected,
    *,
    delete_users: bool = False,
) -> RunChanges:
    """The run's changes (pure). See the module docstring for the rules."""
    orgs = _with_retiring(plan, deployed)
    adds: list[RoleChange] = []
    removals: list[RoleChange] = []
    kept: list[RoleChange] = []
    managed_by_org: dict[str, int] = defaultdict(int)
    declared_orgs: list[OrgPlan] = []
    for org in orgs:
        space_removals: dict[str, set[str]] = defaultdict(set)  # member -> "space/role" removed
        space_memberships: list[tuple[SpacePlan, list[Membership]]] = []
        for space in org.spaces:
            kept_space: list[Membership] = []
            for m in space.memberships:
                delta = _delta(m, current, deployed, is_protected)
                adds.extend(RoleChange(m.scope.label, m.role, k, m.members.get(k, "")) for k in delta.adds)
                was = deployed.membership(m.scope, m.role)
                removals.extend(RoleChange(m.scope.label, m.role, k, _was(was, k)) for k in delta.removes)
                for k in delta.removes:
                    space_removals[k].add(f"{space.name}/{m.role}")
                managed_by_org[org.name] += _managed_size(m, delta.removes)
                kept_space.append(m)
            space_memberships.append((space, kept_space))
        org_memberships: list[Membership] = []
        for m in org.org_memberships:
            delta = _delta(m, current, deployed, is_protected)
            was = deployed.membership(m.scope, m.role)
            removes = list(delta.removes)
            if m.role == ORG_USER:
                m, removes, kept_here = _keep_org_users(org.name, m, removes, current, space_removals)
                kept.extend(kept_here)
            adds.extend(RoleChange(m.scope.label, m.role, k, m.members.get(k, "")) for k in delta.adds)
            removals.extend(RoleChange(m.scope.label, m.role, k, _was(was, k)) for k in removes)
            managed_by_org[org.name] += _managed_size(m, removes)
            org_memberships.append(m)
        declared_orgs.append(
            OrgPlan(
                org.name,
                org.ownership,
                tuple(org_memberships),
                tuple(SpacePlan(s.name, tuple(ms)) for s, ms in space_memberships),
            )
        )
    declared = replace(plan, orgs=tuple(declared_orgs))
    retiring = tuple(
        sorted(
            f"{d.scope.label}:{d.role}"
            for key, d in deployed.memberships.items()
            if plan.membership(d.scope.org, d.role, d.scope.space) is None
        )
    )
    user_deletions = _user_deletions(plan, current, deployed, removals, is_protected) if delete_users else ()
    return RunChanges(
        declared=declared,
        adds=tuple(sorted(adds)),
        removals=tuple(sorted(removals)),
        kept=tuple(sorted(kept)),
        retiring=retiring,
        managed=sum(managed_by_org.values()),
        managed_by_org=dict(managed_by_org),
        user_deletions=user_deletions,
        retiring_user_sets=tuple(
            sorted(
                o
                for o, u in deployed.user_sets.items()
                if u.users and o not in {p.ref.origin for p in plan.users}
            )
        ),
    )


def _delta(
    m: Membership, current: CurrentAccess, deployed: Deployed, is_protected: IsProtected
) -> MembershipDelta:
    live = current.of(m.scope.label, m.role)
    managed = managed_now(deployed.membership(m.scope, m.role), live)
    return membership_delta(m.members, live, managed, is_protected)


def _managed_size(m: Membership, removes: Iterable[str]) -> int:
    """Managed assignments of a membership: what it grants after the run plus what it removes."""
    return len(set(m.members) | set(removes))


def _was(deployed: DeployedMembership | None, key: str) -> str:
    reason = deployed.members.get(key) if deployed is not None else None
    if not reason or reason == FOUND_IN_CF:
        return FOUND_IN_CF
    return f"no longer granted (was: {reason})"


def _keep_org_users(
    org: str,
    m: Membership,
    removes: list[str],
    current: CurrentAccess,
    space_removals: Mapping[str, set[str]],
) -> tuple[Membership, list[str], list[RoleChange]]:
    """Move organization_user removals of people who keep space roles into the membership."""
    still_held = _space_roles_by_member(org, current)
    members = dict(m.members)
    kept: list[RoleChange] = []
    left: list[str] = []
    for key in removes:
        remaining = still_held.get(key, set()) - space_removals.get(key, set())
        if remaining:
            reason = kept_reason(remaining)
            members[key] = reason
            kept.append(RoleChange(m.scope.label, m.role, key, reason))
        else:
            left.append(key)
    if not kept:
        return m, removes, []
    return replace(m, members=dict(sorted(members.items()))), left, kept


def _space_roles_by_member(org: str, current: CurrentAccess) -> dict[str, set[str]]:
    held: dict[str, set[str]] = defaultdict(set)
    prefix = f"{org}/"
    for (scope, role), keys in current.holders.items():
        if scope.startswith(prefix) and role in SPACE_ROLE_TYPES:
            for key in keys:
                held[key].add(f"{scope[len(prefix) :]}/{role}")
    return held


def _with_retiring(plan: AccessPlan, deployed: Deployed) -> list[OrgPlan]:
    """The plan's orgs plus every deployed membership the plan no longer has, with no members."""
    retiring: dict[str, dict[str | None, list[Membership]]] = defaultdict(lambda: defaultdict(list))
    ownership: dict[str, Ownership] = {}
    for d in deployed.memberships.values():
        if plan.membership(d.scope.org, d.role, d.scope.space) is not None:
            continue
        retiring[d.scope.org][d.scope.space].append(Membership(d.scope, d.role, d.ownership, {}))
        ownership.setdefault(d.scope.org, d.ownership)
    orgs: list[OrgPlan] = []
    seen: set[str] = set()
    for org in plan.orgs:
        seen.add(org.name)
        extra = retiring.get(org.name)
        orgs.append(_merge(org, extra) if extra else org)
    for name in sorted(set(retiring) - seen):
        orgs.append(_merge(OrgPlan(name, ownership[name], (), ()), retiring[name]))
    return orgs


def _merge(org: OrgPlan, extra: Mapping[str | None, list[Membership]]) -> OrgPlan:
    org_memberships = list(org.org_memberships) + sorted(extra.get(None, []), key=lambda m: m.role)
    spaces = {s.name: list(s.memberships) for s in org.spaces}
    for space, memberships in extra.items():
        if space is not None:
            spaces.setdefault(space, []).extend(sorted(memberships, key=lambda m: m.role))
    return OrgPlan(
        org.name,
        org.ownership,
        tuple(org_memberships),
        tuple(SpacePlan(name, tuple(ms)) for name, ms in sorted(spaces.items())),
    )


def _user_deletions(
    plan: AccessPlan,
    current: CurrentAccess,
    deployed: Deployed,
    removals: Iterable[RoleChange],
    is_protected: IsProtected,
) -> tuple[str, ...]:
    """Users a ``delete-user`` run deletes: created by cf-access, granted nothing any more,
    and holding no role anywhere once the run's removals are done."""
    wanted = {u.ref.key for u in plan.users}
    removed: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for r in removals:
        removed[r.member].add((r.scope, r.role))
    held: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for (scope, role), keys in current.holders.items():
        for key in keys:
            held[key].add((scope, role))
    out: list[str] = []
    for user_set in deployed.user_sets.values():
        for key in user_set.users - wanted:
            if key in user_set.created and not is_protected(key) and not (held[key] - removed[key]):
                out.append(key)
    return tuple(sorted(out))


def describe_changes(changes: RunChanges) -> str:
    """One log line: what the run adds, removes and keeps (the preview shows each person)."""
    parts = [
        f"{len(changes.adds)} role assignments to add",
        f"{len(changes.removals)} of {changes.managed} managed role assignments to remove",
    ]
    if changes.retiring:
        parts.append(f"{len(changes.retiring)} memberships left the mappings (emptied this run)")
    if changes.kept:
        who = ", ".join(sorted({f"{c.member} in {c.scope}" for c in changes.kept})[:5])
        parts.append(
            f"organization_user kept for {len(changes.kept)} (roles cf-access does not manage): {who}"
        )
    if changes.user_deletions:
        parts.append(f"{len(changes.user_deletions)} users to delete (delete-user)")
    return "; ".join(parts)
