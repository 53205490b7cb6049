"""Safety guards: mass-removal brake, empty/shrunken groups, missing scopes."""

from __future__ import annotations

import datetime as dt
import textwrap

from components.changes import Deployed, DeployedMembership, run_changes
from components.current import CurrentAccess
from components.guards import GuardReport, GuardSettings, check_groups, check_removals, missing_scopes
from components.identity.base import IdentitySnapshot, Person
from components.mappings import Mappings, parse_mappings
from components.model import Scope, UserRef
from components.plan import AccessPlan, PlanSettings, build_plan

TODAY = dt.date(2026, 11, 29)
SETTINGS = PlanSettings(
    protected_users=("admin@corp.com",), default_source="directory", source_origins={"directory": "uaa"}
)

PAYMENTS = """\
org: payments
ownership: authoritative
spaces:
  dev:
    space_developer: {groups: [payments-dev]}
"""
PLATFORM = """\
org: platform
spaces:
  tools:
    space_developer: {groups: [platform-eng]}
"""


def people(prefix: str, count: int, active: bool = True) -> tuple[Person, ...]:
    return tuple(
        Person(f"{prefix}{i}@corp.com", "uaa", active, "directory", f"id-{prefix}{i}") for i in range(count)
    )


def keys(prefix: str, count: int) -> set[str]:
    return {f"uaa/{prefix}{i}@corp.com" for i in range(count)}


def mappings(*texts: str) -> Mappings:
    return parse_mappings([(f"mappings/m{i}.yaml", textwrap.dedent(t)) for i, t in enumerate(texts)])


def plan_for(m: Mappings, snapshot: IdentitySnapshot) -> AccessPlan:
    return build_plan(m, snapshot, SETTINGS, TODAY)


def deployed(plan: AccessPlan, now: CurrentAccess, **managed: set[str]) -> Deployed:
    """Every planned membership as deployed before this run: with the given members
    (``scope__role``), else with what CF holds now."""
    out: dict[tuple[Scope, str], DeployedMembership] = {}
    for m in plan.memberships():
        name = f"{m.scope.label.replace('/', '_')}__{m.role}"
        members = managed.get(name, set(now.of(m.scope.label, m.role)))
        out[(m.scope, m.role)] = DeployedMembership(m.scope, m.role, m.ownership, dict.fromkeys(members, "x"))
    return Deployed(memberships=out)


def brake(
    m: Mappings, snapshot: IdentitySnapshot, now: CurrentAccess, guard: GuardSettings, **managed: set[str]
) -> GuardReport:
    plan = plan_for(m, snapshot)
    changes = run_changes(
        plan, now, deployed(plan, now, **managed), lambda k: SETTINGS.is_protected(UserRef.parse(k))
    )
    return check_removals(changes, guard)


def current(**holders: set[str]) -> CurrentAccess:
    parsed: dict[tuple[str, str], frozenset[str]] = {}
    for name, members in holders.items():
        scope, _, role = name.partition("__")
        parsed[(scope.replace("_", "/"), role)] = frozenset(members)
    scopes = frozenset({"payments", "payments/dev", "platform", "platform/tools"})
    return CurrentAccess(holders=parsed, scopes=scopes)


def test_brake_trips_on_60_percent_removal_and_names_the_org() -> None:
    m = mappings(PAYMENTS)
    snapshot = IdentitySnapshot({"directory:payments-dev": people("dev", 8)})
    now = current(payments_dev__space_developer=keys("dev", 20), payments__organization_user=keys("dev", 20))
    report = brake(m, snapshot, now, GuardSettings())
    assert not report.ok
    assert len(report.removals) == 24
    message = report.problems[0]
    assert "would remove 24 of 40 managed role assignments (60%" in message
    assert "orgs over the limit: payments (-24 of 40, 60%)" in message
    assert "payments/dev space_developer: -12" in message
    assert "CF_ACCESS_ALLOW_MASS_REMOVAL=true" in message


def test_override_lets_a_reviewed_change_through_with_a_warning() -> None:
    m = mappings(PAYMENTS)
    snapshot = IdentitySnapshot({"directory:payments-dev": people("dev", 8)})
    now = current(payments_dev__space_developer=keys("dev", 20))
    report = brake(m, snapshot, now, GuardSettings(allow_mass_removal=True))
    assert report.ok
    assert "allowed by the mass-removal override" in report.warnings[0]


def test_small_changes_pass_and_near_limit_warns() -> None:
    m = mappings(PAYMENTS)
    snapshot = IdentitySnapshot({"directory:payments-dev": people("dev", 18)})
    now = current(payments_dev__space_developer=keys("dev", 20), payments__organization_user=keys("dev", 20))
    report = brake(m, snapshot, now, GuardSettings())
    assert report.ok and report.warnings == ()
    assert len(report.removals) == 4
    strict = GuardSettings(max_removals=5)
    near = brake(m, snapshot, now, strict)
    assert near.ok
    assert "near its limit: 4 of 40" in near.warnings[0]


def test_count_limit_applies_even_when_share_is_small() -> None:
    m = mappings(PAYMENTS)
    snapshot = IdentitySnapshot({"directory:payments-dev": people("dev", 300)})
    now = current(payments_dev__space_developer=keys("dev", 420))
    report = brake(m, snapshot, now, GuardSettings(max_removals=100))
    assert not report.ok
    assert "would remove 120 of" in report.problems[0]


def test_protected_users_and_other_origins_are_not_counted() -> None:
    m = mappings(PAYMENTS, PLATFORM)
    snapshot = IdentitySnapshot(
        {"directory:payments-dev": people("dev", 2), "directory:platform-eng": people("eng", 2)}
    )
    now = current(
        payments_dev__space_developer=keys("dev", 2) | {"uaa/admin@corp.com"},
        platform_tools__space_developer=keys("eng", 2) | {"other-idp/hand@corp.com", "uaa/left@corp.com"},
    )
    # additive platform: cf-access granted eng0, eng1 and left; the other-idp hand grant is not ours
    managed = keys("eng", 2) | {"uaa/left@corp.com"}
    report = brake(m, snapshot, now, GuardSettings(), platform_tools__space_developer=managed)
    removed = {(r.scope, r.member) for r in report.removals}
    # authoritative payments: admin is protected. additive platform: only what cf-access manages.
    assert removed == {("platform/tools", "uaa/left@corp.com")}


def test_empty_group_is_a_failed_read_unless_allowed() -> None:
    m = mappings(PAYMENTS)
    snapshot = IdentitySnapshot({"directory:payments-dev": people("gone", 3, active=False)})
    problems = check_groups(m, snapshot, current(), SETTINGS, GuardSettings())
    assert problems == [
        "group directory:payments-dev returned no active members; treated as a failed read. "
        "If the group is meant to be empty, add it to cf-access:allowEmptyGroups"
    ]
    allowed = GuardSettings(allow_empty_groups=frozenset({"directory:payments-dev"}))
    assert check_groups(m, snapshot, current(), SETTINGS, allowed) == []


def test_group_shrunk_by_90_percent_is_a_failed_read() -> None:
    m = mappings(PAYMENTS)
    snapshot = IdentitySnapshot({"directory:payments-dev": people("dev", 2)})
    now = current(payments_dev__space_developer=keys("dev", 20))
    problems = check_groups(m, snapshot, now, SETTINGS, GuardSettings())
    assert len(problems) == 1
    assert (
        "group directory:payments-dev has 2 active members but Cloud Foundry shows 20 people" in problems[0]
    )
    assert "allowShrunkGroups" in problems[0]
    ok = GuardSettings(allow_shrunk_groups=frozenset({"directory:payments-dev"}))
    assert check_groups(m, snapshot, now, SETTINGS, ok) == []
    # A moderate shrink passes.
    assert (
        check_groups(
            m, IdentitySnapshot({"directory:payments-dev": people("dev", 15)}), now, SETTINGS, GuardSettings()
        )
        == []
    )


def test_missing_org_and_space_name_the_mapping_file() -> None:
    m = mappings(PAYMENTS, PLATFORM)
    snapshot = IdentitySnapshot(
        {"directory:payments-dev": people("dev", 1), "directory:platform-eng": people("eng", 1)}
    )
    now = CurrentAccess(scopes=frozenset({"payments"}))
    problems = missing_scopes(plan_for(m, snapshot), now, m)
    assert problems == [
        "mappings/m0.yaml:4: space 'dev' does not exist in organization 'payments'; "
        "create it (cf create-space) or remove it from the mapping",
        "mappings/m1.yaml:1: organization 'platform' does not exist in Cloud Foundry; "
        "create it (cf create-org) or remove the mapping",
    ]
