"""Safety guards, checked before any resource is registered. Pure.

The failure cf-access users fear most is the one cf-mgmt users lived
through: one IdP attribute goes missing and every user is removed. So:

* every org and space in the mappings must exist in CF;
* a mapped group that comes back empty, or far smaller than what CF shows it
  granted, is treated like a failed read (unless allowed in config);
* the **mass-removal brake** refuses a plan that would remove more than a
  configured number or share of managed role assignments, overall or per
  org, unless explicitly overridden for one run.

The brake counts exactly the removals of ``components/changes.run_changes``:
what CF holds now x what cf-access manages (the deployed state) x the plan,
including scopes that left the mappings (retired) and authoritative sweeps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from components.changes import RunChanges
from components.current import CurrentAccess
from components.identity.base import IdentitySnapshot
from components.mappings import Mappings
from components.model import UserRef
from components.plan import AccessPlan, PlanSettings


@dataclass(frozen=True)
class GuardSettings:
    max_removals: int = 100
    max_removal_percent: int = 25
    org_min_removals: int = 10
    allow_mass_removal: bool = False
    group_shrink_percent: int = 50
    group_shrink_minimum: int = 5
    allow_empty_groups: frozenset[str] = frozenset()
    allow_shrunk_groups: frozenset[str] = frozenset()


@dataclass(frozen=True, order=True)
class Removal:
    scope: str
    role: str
    member: str


@dataclass(frozen=True)
class GuardReport:
    removals: tuple[Removal, ...]
    managed: int
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    removals_by_org: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def _org_of(scope: str) -> str:
    return scope.partition("/")[0]


def missing_scopes(plan: AccessPlan, current: CurrentAccess, mappings: Mappings) -> list[str]:
    problems: list[str] = []
    for org in plan.orgs:
        mapping = mappings.org(org.name)
        where = f"{mapping.location}: " if mapping is not None else ""
        if org.name not in current.scopes:
            problems.append(
                f"{where}organization {org.name!r} does not exist in Cloud Foundry; "
                "create it (cf create-org) or remove the mapping"
            )
            continue
        for space in org.spaces:
            label = f"{org.name}/{space.name}"
            if label not in current.scopes:
                space_mapping = mapping.space(space.name) if mapping is not None else None
                at = f"{space_mapping.location}: " if space_mapping is not None else where
                problems.append(
                    f"{at}space {space.name!r} does not exist in organization {org.name!r}; "
                    "create it (cf create-space) or remove it from the mapping"
                )
    return problems


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _contributors(removals: Iterable[Removal], limit: int = 5) -> str:
    by_scope: dict[tuple[str, str], list[str]] = defaultdict(list)
    for removal in removals:
        by_scope[(removal.scope, removal.role)].append(removal.member)
    ranked = sorted(by_scope.items(), key=lambda item: (-len(item[1]), item[0]))[:limit]
    lines = []
    for (scope, role), members in ranked:
        sample = ", ".join(sorted(members)[:3]) + (f", … (+{len(members) - 3})" if len(members) > 3 else "")
        lines.append(f"  {scope} {role}: -{len(members)} ({sample})")
    return "\n".join(lines)


def check_removals(changes: RunChanges, guard: GuardSettings) -> GuardReport:
    """The brake, on exactly the removals the run makes (components/changes.py)."""
    removals = [Removal(c.scope, c.role, c.member) for c in changes.removals]
    managed = changes.managed
    removed_by_org = changes.removals_by_org()
    by_org = {org: (removed_by_org.get(org, 0), size) for org, size in changes.managed_by_org.items()}
    problems: list[str] = []
    warnings: list[str] = []
    total = len(removals)
    share = _percent(total, managed)
    tripped_orgs = sorted(
        (
            (org, count, size)
            for org, (count, size) in by_org.items()
            if count >= guard.org_min_removals and _percent(count, size) > guard.max_removal_percent
        ),
        key=lambda item: (-item[1], item[0]),
    )
    overall = total > guard.max_removals or (
        total >= guard.org_min_removals and share > guard.max_removal_percent
    )
    if overall or tripped_orgs:
        orgs = ", ".join(
            f"{org} (-{count} of {size}, {_percent(count, size):.0f}%)" for org, count, size in tripped_orgs
        )
        reason = (
            f"mass-removal brake: this run would remove {total} of {managed} managed role assignments "
            f"({share:.0f}%; limits: {guard.max_removals} overall, {guard.max_removal_percent}% overall "
            f"and per org with at least {guard.org_min_removals} removals)"
        )
        if orgs:
            reason += f"; orgs over the limit: {orgs}"
        reason += f"\nbiggest contributors:\n{_contributors(removals)}"
        if guard.allow_mass_removal:
            warnings.append(f"{reason}\nallowed by the mass-removal override (allowMassRemoval)")
        else:
            problems.append(
                f"{reason}\nIf this change is intended (reviewed), run once with the override: "
                "CF_ACCESS_ALLOW_MASS_REMOVAL=true pulumi up, or set cf-access:allowMassRemoval=true "
                "for one run. Otherwise check the identity provider: a group or attribute may have "
                "gone missing."
            )
    elif total and (
        total >= 0.75 * guard.max_removals
        or (share >= 0.75 * guard.max_removal_percent and total >= guard.org_min_removals)
    ):
        warnings.append(
            f"mass-removal brake near its limit: {total} of {managed} managed role assignments "
            f"({share:.0f}%) would be removed"
        )
    return GuardReport(tuple(removals), managed, tuple(problems), tuple(warnings), by_org)


def check_groups(
    mappings: Mappings,
    snapshot: IdentitySnapshot,
    current: CurrentAccess,
    plan_settings: PlanSettings,
    guard: GuardSettings,
) -> list[str]:
    """Empty or shrunken groups: treated as failed reads unless allowed."""
    default = plan_settings.default_source
    # What CF shows a group granted: holders (of the group's origin) of the
    # roles that this group alone grants (no other group, no named user).
    granted: dict[str, int] = defaultdict(int)
    for org in mappings.orgs:
        for space, grants in org.all_role_grants():
            if len(grants.groups) != 1 or grants.users:
                continue
            ref = grants.groups[0].ref(default)
            origin = plan_settings.source_origins.get(ref.partition(":")[0])
            scope = org.name if space is None else f"{org.name}/{space}"
            holders = [k for k in current.of(scope, grants.role) if UserRef.parse(k).origin == origin]
            granted[ref] = max(granted[ref], len(holders))
    problems: list[str] = []
    for ref, members in sorted(snapshot.groups.items()):
        active = sum(1 for person in members if person.active)
        if active == 0 and ref not in guard.allow_empty_groups:
            problems.append(
                f"group {ref} returned no active members; treated as a failed read. If the group is "
                f"meant to be empty, add it to cf-access:allowEmptyGroups"
            )
            continue
        before = granted.get(ref, 0)
        threshold = before * (100 - guard.group_shrink_percent) / 100
        if (
            before >= guard.group_shrink_minimum
            and active < threshold
            and ref not in guard.allow_shrunk_groups
        ):
            problems.append(
                f"group {ref} has {active} active members but Cloud Foundry shows {before} people holding "
                f"roles it alone grants (shrunk by more than {guard.group_shrink_percent}%); treated as a "
                "failed read. If this is intended, add it to cf-access:allowShrunkGroups for this run"
            )
    return problems
