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
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from components.current import CurrentAccess
from components.model import ORG_USER, SPACE_ROLE_TYPES, Membership, Ownership, RoleType, Scope, role_key
from components.plan import AccessPlan, OrgPlan

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


def refreshed_members(
    managed: Mapping[str, str], live: Collection[str], authoritative: bool, is_protected: IsProtected
) -> dict[str, str]:
    """What a refresh records for one (scope, role type): the managed holders CF still shows
    (protected ones as given), and in an authoritative scope every other holder as
    ``found in CF`` - so the next preview shows the sweep before any run makes it."""
    held = {k: v for k, v in managed.items() if k in live or is_protected(k)}
    if authoritative:
        for key in live:
            if key not in held and not is_protected(key):
                held[key] = FOUND_IN_CF
    return held


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
    """What cf-access manages: the memberships and user sets of the last deployment.

    ``memberships`` flattens each org's ``cf:OrgAccess`` into (scope, role) entries.
    ``legacy_orgs`` are orgs still recorded by the per-scope model of earlier versions
    (``cf:RoleMembership``) and not yet by a ``cf:OrgAccess``: this run upgrades them."""

    memberships: Mapping[tuple[Scope, str], DeployedMembership] = field(default_factory=dict)
    user_sets: Mapping[str, DeployedUserSet] = field(default_factory=dict)
    legacy_orgs: frozenset[str] = frozenset()
    # every org with a cf:OrgAccess (also one that manages nobody any more) -> its ownership
    orgs: Mapping[str, Ownership] = field(default_factory=dict)

    def membership(self, scope: Scope, role: str) -> DeployedMembership | None:
        return self.memberships.get((scope, role))

    def by_org(self) -> dict[str, list[DeployedMembership]]:
        out: dict[str, list[DeployedMembership]] = defaultdict(list)
        for d in self.memberships.values():
            out[d.scope.org].append(d)
        return dict(out)


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


# {org: {role key: {member: provenance}}} (role keys as in model.role_key)
Adopted = Mapping[str, Mapping[str, Mapping[str, str]]]


@dataclass(frozen=True)
class RunChanges:
    """Everything the run will change, and the plan as it will be declared."""

    declared: AccessPlan  # the plan + orgs that left the mappings (emptied) + kept organization_users
    adds: tuple[RoleChange, ...]
    removals: tuple[RoleChange, ...]
    kept: tuple[RoleChange, ...]  # organization_user kept for roles cf-access does not manage
    retiring: tuple[str, ...]  # "scope:role" of memberships that left the mappings
    managed: int  # managed role assignments the brake measures against
    managed_by_org: Mapping[str, int]
    user_deletions: tuple[str, ...] = ()
    retiring_user_sets: tuple[str, ...] = ()  # origins nobody is granted any more
    # Orgs upgraded from the per-scope model this run: managed holders the plan no longer
    # grants, recorded by the new resource without a write (removed, and shown, next run).
    adopted: Adopted = field(default_factory=dict)
    upgraded: tuple[str, ...] = ()

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
    acc = _Accumulator()
    deployed_by_org = deployed.by_org()
    plan_orgs = {org.name: org for org in plan.orgs}
    names = [org.name for org in plan.orgs]
    names += sorted((set(deployed_by_org) | set(deployed.orgs)) - set(plan_orgs))
    for name in names:
        leaving = [
            Membership(d.scope, d.role, d.ownership, {})
            for d in sorted(deployed_by_org.get(name, ()), key=lambda d: (d.scope.space or "", d.role))
            if plan.membership(d.scope.org, d.role, d.scope.space) is None
        ]
        ownership = deployed.orgs.get(name) or (leaving[0].ownership if leaving else "additive")
        org = plan_orgs.get(name) or OrgPlan(name, ownership, (), ())
        # An org that left the mappings stays declared, emptied: its update removes (and its
        # preview shows) every managed holder; afterwards it manages nobody and changes
        # nothing (a tombstone: `pulumi state delete` drops it, docs/operations.md).
        acc.declared_orgs.append(_org_changes(org, leaving, current, deployed, is_protected, acc))
    retiring = tuple(
        sorted(
            f"{d.scope.label}:{d.role}"
            for d in deployed.memberships.values()
            if plan.membership(d.scope.org, d.role, d.scope.space) is None
        )
    )
    user_deletions = (
        _user_deletions(plan, current, deployed, acc.removals, is_protected) if delete_users else ()
    )
    return RunChanges(
        declared=replace(plan, orgs=tuple(acc.declared_orgs)),
        adds=tuple(sorted(acc.adds)),
        removals=tuple(sorted(acc.removals)),
        kept=tuple(sorted(acc.kept)),
        retiring=retiring,
        managed=sum(acc.managed_by_org.values()),
        managed_by_org=dict(acc.managed_by_org),
        user_deletions=user_deletions,
        retiring_user_sets=tuple(
            sorted(
                o
                for o, u in deployed.user_sets.items()
                if u.users and o not in {p.ref.origin for p in plan.users}
            )
        ),
        adopted={org: dict(keys) for org, keys in acc.adopted.items()},
        upgraded=tuple(sorted(n for n in names if n in deployed.legacy_orgs)),
    )


@dataclass
class _Accumulator:
    adds: list[RoleChange] = field(default_factory=list)
    removals: list[RoleChange] = field(default_factory=list)
    kept: list[RoleChange] = field(default_factory=list)
    managed_by_org: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    declared_orgs: list[OrgPlan] = field(default_factory=list)
    adopted: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)


def _org_changes(
    org: OrgPlan,
    leaving: Sequence[Membership],
    current: CurrentAccess,
    deployed: Deployed,
    is_protected: IsProtected,
    acc: _Accumulator,
) -> OrgPlan:
    """One org's changes into ``acc``; returns the org as it will be declared.

    ``leaving``: memberships the deployed state has and the plan no longer has (a space or
    role type removed from the mappings, or the whole org). They are evaluated with no
    desired members, so their managed holders count as removals, but they are not
    declared: their keys leave the org's resource, which the preview shows as each holder
    losing the role. A kept organization_user is declared (with its ``kept:`` reason)."""
    legacy = org.name in deployed.legacy_orgs
    space_removals: dict[str, set[str]] = defaultdict(set)  # member -> "space/role" removed
    mapped_spaces = [m for space in org.spaces for m in space.memberships]
    for m in [*mapped_spaces, *(m for m in leaving if m.scope.space is not None)]:
        delta = _delta(m, current, deployed, is_protected, legacy)
        _record(m, delta.adds, delta.removes, deployed, acc)
        for k in delta.removes:
            space_removals[k].add(f"{m.scope.space}/{m.role}")
        _adopt(m, current, deployed, is_protected, legacy, acc)
    org_memberships: list[Membership] = []
    for m in [*org.org_memberships, *(m for m in leaving if m.scope.space is None)]:
        declared_here = m in org.org_memberships
        delta = _delta(m, current, deployed, is_protected, legacy)
        removes = list(delta.removes)
        if m.role == ORG_USER:
            m, removes, kept_here = _keep_org_users(org.name, m, removes, current, space_removals)
            acc.kept.extend(kept_here)
            declared_here = declared_here or bool(kept_here)
        _record(m, delta.adds, removes, deployed, acc)
        _adopt(m, current, deployed, is_protected, legacy, acc)
        if declared_here:
            org_memberships.append(m)
    return OrgPlan(org.name, org.ownership, tuple(org_memberships), org.spaces)


def _record(
    m: Membership, adds: Iterable[str], removes: Iterable[str], deployed: Deployed, acc: _Accumulator
) -> None:
    was = deployed.membership(m.scope, m.role)
    removes = list(removes)
    acc.adds.extend(RoleChange(m.scope.label, m.role, k, m.members.get(k, "")) for k in adds)
    acc.removals.extend(RoleChange(m.scope.label, m.role, k, _was(was, k)) for k in removes)
    acc.managed_by_org[m.scope.org] += _managed_size(m, removes)


def _adopt(
    m: Membership,
    current: CurrentAccess,
    deployed: Deployed,
    is_protected: IsProtected,
    legacy: bool,
    acc: _Accumulator,
) -> None:
    """An org upgraded from the per-scope model is created, and a create removes nothing
    (its preview could not show removals). What the old resources managed and the plan no
    longer grants is handed to the new resource as ``adopt``: recorded as managed without
    a write, so the next run shows and makes the removal instead of forgetting it."""
    if not legacy:
        return
    d = deployed.membership(m.scope, m.role)
    live = current.of(m.scope.label, m.role)
    pending = membership_delta(m.members, live, managed_now(d, live), is_protected).removes
    if pending:
        keys = acc.adopted.setdefault(m.scope.org, {})
        keys[role_key(m.scope, m.role)] = {
            k: (d.members.get(k) if d else None) or FOUND_IN_CF for k in pending
        }


def _delta(
    m: Membership, current: CurrentAccess, deployed: Deployed, is_protected: IsProtected, legacy: bool = False
) -> MembershipDelta:
    """``legacy``: the org's new resource is created this run, so it adds only (create)."""
    live = current.of(m.scope.label, m.role)
    managed = None if legacy else managed_now(deployed.membership(m.scope, m.role), live)
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
        parts.append(f"{len(changes.retiring)} memberships left the mappings (their holders are removed)")
    if changes.upgraded:
        deferred = sum(len(m) for keys in changes.adopted.values() for m in keys.values())
        parts.append(
            f"{len(changes.upgraded)} orgs upgraded from the per-scope model (0 role changes"
            + (f"; {deferred} removals adopted for the next run, which shows them)" if deferred else ")")
        )
    if changes.kept:
        who = ", ".join(sorted({f"{c.member} in {c.scope}" for c in changes.kept})[:5])
        parts.append(
            f"organization_user kept for {len(changes.kept)} (roles cf-access does not manage): {who}"
        )
    if changes.user_deletions:
        parts.append(f"{len(changes.user_deletions)} users to delete (delete-user)")
    return "; ".join(parts)
