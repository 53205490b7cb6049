"""The one answer to "what will this run change" (components/changes.py)."""

from __future__ import annotations

import datetime as dt
import textwrap

from components.changes import (
    FOUND_IN_CF,
    Deployed,
    DeployedMembership,
    DeployedUserSet,
    describe_changes,
    membership_delta,
    run_changes,
)
from components.current import CurrentAccess
from components.identity.base import IdentitySnapshot, Person
from components.mappings import parse_mappings
from components.model import Scope, UserRef
from components.plan import AccessPlan, PlanSettings, build_plan

SETTINGS = PlanSettings(
    protected_users=("^admin@",), default_source="directory", source_origins={"directory": "uaa"}
)
PLATFORM = """\
org: platform
spaces:
  tools:
    space_developer: {groups: [eng]}
"""
PAYMENTS = """\
org: payments
ownership: authoritative
org_roles:
  organization_manager: {groups: [leads]}
"""


def protected(key: str) -> bool:
    return SETTINGS.is_protected(UserRef.parse(key))


def person(name: str) -> Person:
    return Person(f"{name}@corp.com", "uaa", True, "directory", f"id-{name}")


def plan(*texts: str, **groups: list[str]) -> AccessPlan:
    m = parse_mappings([(f"mappings/m{i}.yaml", textwrap.dedent(t)) for i, t in enumerate(texts)])
    snapshot = IdentitySnapshot(
        {f"directory:{g}": tuple(person(n) for n in names) for g, names in groups.items()}
    )
    return build_plan(m, snapshot, SETTINGS, dt.date(2026, 12, 1))


def key(name: str) -> str:
    return f"uaa/{name}@corp.com"


def current(**holders: list[str]) -> CurrentAccess:
    parsed = {}
    for name, names in holders.items():
        scope, _, role = name.partition("__")
        parsed[(scope.replace("_", "/"), role)] = frozenset(key(n) for n in names)
    scopes = frozenset({"platform", "platform/tools", "platform/sandbox", "payments"})
    return CurrentAccess(holders=parsed, scopes=scopes)


def deployed(*items: tuple[str, str | None, str, str, list[str]]) -> Deployed:
    out = {}
    for org, space, role, ownership, names in items:
        scope = Scope(org, space)
        out[(scope, role)] = DeployedMembership(
            scope,
            role,  # type: ignore[arg-type]
            ownership,  # type: ignore[arg-type]
            {key(n): "granted" for n in names},
        )
    return Deployed(memberships=out)


def test_delta_removes_only_managed_holders_and_never_protected_ones() -> None:
    live = {"uaa/a", "uaa/b", "uaa/hand", "uaa/admin@corp.com"}
    delta = membership_delta({"uaa/a", "uaa/new"}, live, {"uaa/a", "uaa/b", "uaa/admin@corp.com"}, protected)
    assert delta.adds == ("uaa/new",)
    assert delta.removes == ("uaa/b",), "hand grants and protected users stay"
    first = membership_delta({"uaa/a"}, live, None, protected)
    assert first.removes == (), "a membership's first run only adds: its preview shows no removal"


def test_additive_hand_grants_are_not_counted_and_a_no_op_removes_nothing() -> None:
    p = plan(PLATFORM, eng=["frank"])
    now = current(
        platform_tools__space_developer=["frank", "hand"], platform__organization_user=["frank", "hand"]
    )
    dep = deployed(
        ("platform", "tools", "space_developer", "additive", ["frank"]),
        ("platform", None, "organization_user", "additive", ["frank"]),
    )
    changes = run_changes(p, now, dep, protected)
    assert changes.removals == () and changes.adds == ()
    assert "0 of 2 managed role assignments to remove" in describe_changes(changes)


def test_scope_that_left_the_mappings_is_retired_with_every_person_shown() -> None:
    p = plan(PLATFORM, eng=["frank"])  # payments.yaml is gone
    now = current(
        platform_tools__space_developer=["frank"],
        platform__organization_user=["frank"],
        payments__organization_manager=["alice", "bob"],
    )
    dep = deployed(
        ("platform", "tools", "space_developer", "additive", ["frank"]),
        ("platform", None, "organization_user", "additive", ["frank"]),
        ("payments", None, "organization_manager", "authoritative", ["alice", "bob"]),
    )
    changes = run_changes(p, now, dep, protected)
    assert [(c.scope, c.role, c.member) for c in changes.removals] == [
        ("payments", "organization_manager", key("alice")),
        ("payments", "organization_manager", key("bob")),
    ]
    assert changes.retiring == ("payments:organization_manager",)
    # The org stays declared for one run, with nothing granted: its resource's update
    # removes (and its preview shows) every managed holder.
    (retired,) = [o for o in changes.declared.orgs if o.name == "payments"]
    assert list(retired.memberships()) == []
    assert changes.managed_by_org["payments"] == 2


def test_an_emptied_org_that_left_the_mappings_stays_declared_and_changes_nothing() -> None:
    p = plan(PLATFORM, eng=["frank"])
    dep = deployed(("platform", "tools", "space_developer", "additive", ["frank"]))
    dep = Deployed(memberships=dep.memberships, orgs={"platform": "additive", "payments": "authoritative"})
    now = current(platform_tools__space_developer=["frank"], platform__organization_user=["frank"])
    changes = run_changes(p, now, dep, protected)
    assert [(o.name, o.ownership, o.roles()) for o in changes.declared.orgs][1:] == [
        ("payments", "authoritative", {})
    ], "declared as it is, so the next run has nothing to delete"
    assert changes.removals == ()


def test_a_space_that_left_a_mapped_org_is_counted_but_not_declared() -> None:
    p = plan(PLATFORM, eng=["frank"])
    now = current(
        platform_tools__space_developer=["frank"],
        platform_sandbox__space_auditor=["frank", "gina"],
        platform__organization_user=["frank", "gina"],
    )
    dep = deployed(
        ("platform", "tools", "space_developer", "additive", ["frank"]),
        ("platform", "sandbox", "space_auditor", "additive", ["frank", "gina"]),
        ("platform", None, "organization_user", "additive", ["frank", "gina"]),
    )
    changes = run_changes(p, now, dep, protected)
    # sandbox left the mappings: both lose space_auditor; gina holds nothing else, so her
    # organization_user goes too; frank keeps his for tools.
    assert [(c.scope, c.role, c.member) for c in changes.removals] == [
        ("platform", "organization_user", key("gina")),
        ("platform/sandbox", "space_auditor", key("frank")),
        ("platform/sandbox", "space_auditor", key("gina")),
    ]
    assert changes.retiring == ("platform/sandbox:space_auditor",)
    (org,) = changes.declared.orgs
    assert org.membership_keys() == ["organization_user", "tools/space_developer"]


def test_an_org_upgraded_from_the_per_scope_model_adds_only_and_adopts_pending_removals() -> None:
    p = plan(PLATFORM, eng=["frank"])
    now = current(
        platform_tools__space_developer=["frank", "leaver"], platform__organization_user=["frank", "leaver"]
    )
    legacy = deployed(
        ("platform", "tools", "space_developer", "additive", ["frank", "leaver"]),
        ("platform", None, "organization_user", "additive", ["frank", "leaver"]),
    )
    dep = Deployed(memberships=legacy.memberships, legacy_orgs=frozenset({"platform"}))
    changes = run_changes(p, now, dep, protected)
    assert changes.removals == () and changes.adds == ()
    assert changes.upgraded == ("platform",)
    assert changes.adopted == {
        "platform": {
            "organization_user": {key("leaver"): "granted"},
            "tools/space_developer": {key("leaver"): "granted"},
        }
    }
    assert "upgraded" in describe_changes(changes)


def test_organization_user_is_kept_while_unmanaged_space_roles_remain() -> None:
    p = plan(PLATFORM, eng=[])
    now = current(
        platform_tools__space_developer=["frank"],
        platform_sandbox__space_auditor=["frank"],  # granted by hand, not managed
        platform__organization_user=["frank"],
    )
    dep = deployed(
        ("platform", "tools", "space_developer", "additive", ["frank"]),
        ("platform", None, "organization_user", "additive", ["frank"]),
    )
    changes = run_changes(p, now, dep, protected)
    assert [(c.scope, c.role) for c in changes.removals] == [("platform/tools", "space_developer")]
    assert [(c.scope, c.role, c.member) for c in changes.kept] == [
        ("platform", "organization_user", key("frank"))
    ]
    org_user = changes.declared.membership("platform", "organization_user")
    assert org_user is not None
    assert org_user.members[key("frank")].startswith("kept: holds roles cf-access does not manage here")
    assert "sandbox/space_auditor" in org_user.members[key("frank")]


def test_organization_user_goes_with_the_last_managed_space_role() -> None:
    p = plan(PLATFORM, eng=[])
    now = current(platform_tools__space_developer=["frank"], platform__organization_user=["frank"])
    dep = deployed(
        ("platform", "tools", "space_developer", "additive", ["frank"]),
        ("platform", None, "organization_user", "additive", ["frank"]),
    )
    changes = run_changes(p, now, dep, protected)
    assert {(c.scope, c.role) for c in changes.removals} == {
        ("platform/tools", "space_developer"),
        ("platform", "organization_user"),
    }
    assert changes.kept == ()


def test_authoritative_sweep_counts_holders_found_in_cf_once_deployed() -> None:
    p = plan(PAYMENTS, leads=["alice"])
    now = current(payments__organization_manager=["alice", "mallory", "admin"])
    new = run_changes(p, now, Deployed(), protected)
    assert new.removals == (), "first run: create only adds"
    dep = deployed(("payments", None, "organization_manager", "authoritative", ["alice"]))
    swept = run_changes(p, now, dep, protected)
    assert [c.member for c in swept.removals] == [key("mallory")], "admin is protected"
    assert swept.removals[0].reason == FOUND_IN_CF


def test_delete_user_only_for_created_users_without_roles() -> None:
    p = plan(PLATFORM, eng=["frank"])
    now = current(
        platform_tools__space_developer=["frank", "ivan", "dave"],
        platform__organization_user=["frank", "ivan", "dave", "hand"],
        platform__organization_auditor=["dave"],  # not managed: dave keeps it
    )
    dep = deployed(
        ("platform", "tools", "space_developer", "additive", ["frank", "ivan", "dave"]),
        ("platform", None, "organization_user", "additive", ["frank", "ivan", "dave"]),
    )
    users = frozenset({key("frank"), key("ivan"), key("dave"), key("heidi")})
    created = frozenset({key("frank"), key("ivan"), key("dave")})
    dep = Deployed(memberships=dep.memberships, user_sets={"uaa": DeployedUserSet("uaa", users, created)})
    changes = run_changes(p, now, dep, protected, delete_users=True)
    assert changes.user_deletions == (key("ivan"),)


def test_refresh_records_managed_holders_cf_still_shows_and_sweeps_authoritative_scopes() -> None:
    from components.changes import refreshed_members

    managed = {"uaa/a": "granted", "uaa/gone": "granted", "uaa/admin@corp.com": "granted"}
    live = {"uaa/a", "uaa/hand", "uaa/admin@corp.com"}
    assert refreshed_members(managed, live, False, protected) == {
        "uaa/a": "granted",
        "uaa/admin@corp.com": "granted",
    }
    assert refreshed_members(managed, live, True, protected) == {
        "uaa/a": "granted",
        "uaa/admin@corp.com": "granted",
        "uaa/hand": FOUND_IN_CF,
    }
