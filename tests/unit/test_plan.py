# ruff: noqa: E501  (expected provenance strings are kept on one line so they read like a preview diff)
"""The pure plan: mappings x identity snapshot -> desired memberships with provenance."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from components.identity.base import IdentitySnapshot, Person, read_snapshot
from components.identity.directory import DirectorySource
from components.mappings import Mappings, load_mappings, parse_mappings
from components.model import ORG_ROLE_TYPES, SPACE_ROLE_TYPES, Scope, UserRef
from components.plan import AccessPlan, PlanError, PlanSettings, build_plan, locate_provenance

REPO = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 29)
F = "mappings/payments.yaml"
SETTINGS = PlanSettings(default_source="directory", source_origins={"directory": "uaa", "okta": "okta-saml"})


def m(text: str, name: str = F) -> Mappings:
    return parse_mappings([(name, textwrap.dedent(text))])


def p(name: str, origin: str = "uaa", active: bool = True, source: str = "directory") -> Person:
    return Person(name, origin, active, source, f"id-{name}")


def snap(**groups: tuple[Person, ...]) -> IdentitySnapshot:
    return IdentitySnapshot({k.replace("__", ":").replace("_", "-"): v for k, v in groups.items()})


def plan(
    text: str, snapshot: IdentitySnapshot, settings: PlanSettings = SETTINGS, today: dt.date = TODAY
) -> AccessPlan:
    return build_plan(m(text), snapshot, settings, today)


def members(ap: AccessPlan, org: str, role: str, space: str | None = None) -> dict[str, str]:
    mem = ap.membership(org, role, space)  # type: ignore[arg-type]
    assert mem is not None, f"no membership {org}/{space}/{role}"
    return mem.members


PAYMENTS = """\
org: payments
ownership: authoritative
org_roles:
  organization_manager:
    groups: [payments-leads]
spaces:
  dev:
    space_developer: {groups: [payments-dev]}
  prod:
    space_developer: {groups: [payments-oncall]}
"""


def payments_snapshot() -> IdentitySnapshot:
    return snap(
        directory__payments_leads=(p("alice@corp.com"),),
        directory__payments_dev=(p("alice@corp.com"), p("bob@corp.com", active=False), p("carol@corp.com")),
        directory__payments_oncall=(p("carol@corp.com"),),
    )


# ------------------------------------------------------------------ provenance & implied org user


def test_group_grant_provenance_and_implied_org_user() -> None:
    ap = plan(PAYMENTS, payments_snapshot())
    assert members(ap, "payments", "organization_manager") == {
        "uaa/alice@corp.com": "group directory:payments-leads (mappings/payments.yaml)"
    }
    assert members(ap, "payments", "space_developer", "dev") == {
        "uaa/alice@corp.com": "group directory:payments-dev (mappings/payments.yaml)",
        "uaa/carol@corp.com": "group directory:payments-dev (mappings/payments.yaml)",
    }
    assert members(ap, "payments", "organization_user") == {
        "uaa/alice@corp.com": "implied by space role dev/space_developer",
        "uaa/carol@corp.com": "implied by space roles dev/space_developer, prod/space_developer",
    }


def test_state_provenance_has_no_line_numbers_the_located_reasons_do() -> None:
    """A line inserted at the top of a file must not change any resource input."""
    before = plan(PAYMENTS, payments_snapshot())
    after = plan("# a new comment line\n" + textwrap.dedent(PAYMENTS), payments_snapshot())
    assert [m.members for m in after.memberships()] == [m.members for m in before.memberships()]
    assert after.located_reason("payments/dev", "space_developer", "uaa/carol@corp.com") == (
        "group directory:payments-dev (mappings/payments.yaml:9)"
    )
    assert before.located_reason("payments/dev", "space_developer", "uaa/carol@corp.com") == (
        "group directory:payments-dev (mappings/payments.yaml:8)"
    )
    assert before.located_reason("payments", "organization_user", "uaa/carol@corp.com") == (
        "implied by space roles dev/space_developer, prod/space_developer"
    )
    assert before.located_reason("payments", "organization_manager", "uaa/nobody") is None
    # every granted member has a located reason, and nothing else does
    assert set(before.located) == {
        (m.scope.label, m.role, key) for m in before.memberships() for key in m.members
    }


def test_implied_org_user_added_to_explicit_org_user_grant() -> None:
    ap = plan(
        """\
        org: o
        org_roles:
          organization_user: {users: [zed@corp.com]}
        spaces:
          s: {space_auditor: {users: [zed@corp.com, amy@corp.com]}}
        """,
        snap(),
    )
    assert members(ap, "o", "organization_user") == {
        "uaa/amy@corp.com": "implied by space role s/space_auditor",
        "uaa/zed@corp.com": "named user (mappings/payments.yaml); implied by space role s/space_auditor",
    }


def test_every_space_member_is_org_user() -> None:
    ap = plan(PAYMENTS, payments_snapshot())
    for org in ap.orgs:
        org_users = set(members(ap, org.name, "organization_user"))
        for space in org.spaces:
            for mem in space.memberships:
                assert set(mem.members) <= org_users


def test_several_reasons_joined_in_stable_order() -> None:
    text = """\
        org: o
        spaces:
          s:
            space_developer:
              groups: [zeta, alpha, okta:beta]
              users: [x@corp.com]
        """
    x = p("x@corp.com")
    xo = p("x@corp.com", origin="uaa", source="okta")
    ap = plan(text, snap(directory__zeta=(x,), directory__alpha=(x,), okta__beta=(xo,)))
    assert members(ap, "o", "space_developer", "s") == {
        "uaa/x@corp.com": "group directory:alpha (mappings/payments.yaml); group directory:zeta (mappings/payments.yaml); group okta:beta (mappings/payments.yaml); +1 more"
    }
    assert ap.located_reason("o/s", "space_developer", "uaa/x@corp.com") == (
        "group directory:alpha (mappings/payments.yaml:5); group directory:zeta (mappings/payments.yaml:5); "
        "group okta:beta (mappings/payments.yaml:5); +1 more"
    )


def test_provenance_is_capped_for_many_implied_roles() -> None:
    spaces = "\n".join(f"  s{i}: {{space_developer: {{groups: [g]}}}}" for i in range(6))
    ap = plan(f"org: o\nspaces:\n{spaces}\n", snap(directory__g=(p("x"),)))
    assert members(ap, "o", "organization_user") == {
        "uaa/x": "implied by space roles s0/space_developer, s1/space_developer, s2/space_developer +3 more"
    }


def test_named_user_provenance_and_until() -> None:
    ap = plan(
        """\
        org: o
        org_roles:
          organization_auditor:
            users:
              - auditor@corp.com
              - {user: temp@corp.com, until: 2027-01-31}
              - {user: ext@partner.com, origin: partner-idp}
        """,
        snap(),
    )
    assert members(ap, "o", "organization_auditor") == {
        "partner-idp/ext@partner.com": "named user (mappings/payments.yaml)",
        "uaa/auditor@corp.com": "named user (mappings/payments.yaml)",
        "uaa/temp@corp.com": "named user until 2027-01-31 (mappings/payments.yaml)",
    }


# ------------------------------------------------------------------ ownership shapes


def test_authoritative_has_all_role_types_including_empty() -> None:
    ap = plan(PAYMENTS, payments_snapshot())
    [org] = ap.orgs
    assert [mem.role for mem in org.org_memberships] == list(ORG_ROLE_TYPES)
    assert [s.name for s in org.spaces] == ["dev", "prod"]
    for space in org.spaces:
        assert [mem.role for mem in space.memberships] == list(SPACE_ROLE_TYPES)
    assert members(ap, "payments", "organization_billing_manager") == {}
    assert members(ap, "payments", "space_supporter", "prod") == {}
    assert all(mem.ownership == "authoritative" for mem in ap.memberships())


def test_additive_has_only_mentioned_roles_plus_org_user() -> None:
    ap = plan(
        """\
        org: platform
        org_roles:
          organization_manager: {groups: [leads]}
        spaces:
          tools:
            space_developer: {groups: [eng]}
          sandbox: {}
        """,
        snap(directory__leads=(), directory__eng=()),
    )
    [org] = ap.orgs
    assert [mem.role for mem in org.org_memberships] == ["organization_manager", "organization_user"]
    assert {s.name: [mem.role for mem in s.memberships] for s in org.spaces} == {
        "sandbox": [],
        "tools": ["space_developer"],
    }
    assert all(mem.ownership == "additive" for mem in ap.memberships())


def test_additive_without_space_roles_has_no_org_user() -> None:
    ap = plan("org: o\norg_roles:\n  organization_auditor: {groups: [a]}\n", snap(directory__a=(p("x"),)))
    assert [mem.role for mem in ap.orgs[0].org_memberships] == ["organization_auditor"]


def test_resource_set_stable_when_groups_empty() -> None:
    full = plan(PAYMENTS, payments_snapshot())
    empty = plan(
        PAYMENTS,
        snap(directory__payments_leads=(), directory__payments_dev=(), directory__payments_oncall=()),
    )

    def shape(ap: AccessPlan) -> list[tuple[Scope, str]]:
        return [(mem.scope, mem.role) for mem in ap.memberships()]

    assert shape(full) == shape(empty)
    assert all(mem.members == {} for mem in empty.memberships())
    assert empty.users == ()


# ------------------------------------------------------------------ inactive & protected


def test_inactive_people_are_absent_and_reported() -> None:
    ap = plan(PAYMENTS, payments_snapshot())
    assert all("uaa/bob@corp.com" not in mem.members for mem in ap.memberships())
    assert UserRef("uaa", "bob@corp.com") not in [u.ref for u in ap.users]
    assert ap.skipped_inactive == ("uaa/bob@corp.com",)


def test_named_user_known_only_as_inactive_is_not_granted() -> None:
    ap = plan(
        "org: o\norg_roles:\n  organization_manager: {users: [bob@corp.com], groups: [g]}\n",
        snap(directory__g=(p("bob@corp.com", active=False),)),
    )
    assert members(ap, "o", "organization_manager") == {}
    assert ap.warnings == (
        "mappings/payments.yaml:3: user uaa/bob@corp.com is inactive in the identity provider; not granted o/organization_manager",
    )


def test_named_user_not_in_idp_is_granted_with_default_origin() -> None:
    settings = PlanSettings(default_source="okta", source_origins={"okta": "okta-saml"})
    ap = plan("org: o\norg_roles:\n  organization_manager: {users: [Boss@Corp.com]}\n", snap(), settings)
    assert members(ap, "o", "organization_manager") == {
        "okta-saml/boss@corp.com": "named user (mappings/payments.yaml)"
    }


def test_named_user_without_default_origin_is_an_error() -> None:
    settings = PlanSettings(default_source="okta", source_origins={})
    with pytest.raises(PlanError, match="no origin configured for the default source 'okta'"):
        plan("org: o\norg_roles:\n  organization_manager: {users: [a]}\n", snap(), settings)


@pytest.mark.parametrize(
    "pattern",
    ["admin", "ADMIN", "uaa/admin", "(.*/)?admin(@.*)?", "uaa/.*min", "^admin", "^uaa/admin$"],
)
def test_protected_users_excluded_everywhere(pattern: str) -> None:
    settings = PlanSettings(
        protected_users=(pattern,), default_source="directory", source_origins={"directory": "uaa"}
    )
    ap = plan(
        """\
        org: o
        ownership: authoritative
        org_roles:
          organization_manager: {users: [admin]}
        spaces:
          s: {space_developer: {groups: [eng]}}
        """,
        snap(directory__eng=(p("admin"), p("dev1"))),
        settings,
    )
    for mem in ap.memberships():
        assert "uaa/admin" not in mem.members
    assert [u.ref.key for u in ap.users] == ["uaa/dev1"]
    assert ap.excluded_protected == ("uaa/admin",)


def test_protected_pattern_is_search_anchors_make_it_exact() -> None:
    def planned(pattern: str) -> AccessPlan:
        settings = PlanSettings(
            protected_users=(pattern,), default_source="directory", source_origins={"directory": "uaa"}
        )
        return plan(
            "org: o\norg_roles:\n  organization_manager: {groups: [g]}\n",
            snap(directory__g=(p("sysadmin@corp.com"), p("admin@acme.com"), p("admin"))),
            settings,
        )

    prefix = planned("^admin")  # fullmatch left admin@acme.com unprotected
    assert list(members(prefix, "o", "organization_manager")) == ["uaa/sysadmin@corp.com"]
    assert prefix.excluded_protected == ("uaa/admin", "uaa/admin@acme.com")
    exact = planned("^admin$")
    assert list(members(exact, "o", "organization_manager")) == [
        "uaa/admin@acme.com",
        "uaa/sysadmin@corp.com",
    ]
    assert exact.excluded_protected == ("uaa/admin",)


def test_invalid_protected_regex_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"protectedUsers\[0\] is not a valid regular expression .*'\(\['"):
        PlanSettings(protected_users=("([",))


# ------------------------------------------------------------------ several sources


def test_several_sources_with_different_origins() -> None:
    text = """\
        org: o
        spaces:
          s:
            space_developer: {groups: [devs, okta:devs, entra:devs]}
        """
    settings = PlanSettings(
        default_source="directory", source_origins={"directory": "uaa", "okta": "okta-saml", "entra": "aad"}
    )
    ap = plan(
        text,
        snap(
            directory__devs=(p("ann@corp.com"),),
            okta__devs=(p("ann@corp.com", origin="okta-saml", source="okta"),),
            entra__devs=(p("ann@corp.com", origin="aad", source="entra"),),
        ),
        settings,
    )
    assert members(ap, "o", "space_developer", "s") == {
        "aad/ann@corp.com": "group entra:devs (mappings/payments.yaml)",
        "okta-saml/ann@corp.com": "group okta:devs (mappings/payments.yaml)",
        "uaa/ann@corp.com": "group directory:devs (mappings/payments.yaml)",
    }
    assert [u.ref for u in ap.users] == [
        UserRef("aad", "ann@corp.com"),
        UserRef("okta-saml", "ann@corp.com"),
        UserRef("uaa", "ann@corp.com"),
    ]


def test_group_missing_from_snapshot_fails_closed() -> None:
    with pytest.raises(
        PlanError,
        match=r"mappings/payments.yaml:5: group directory:payments-leads is not in the identity snapshot",
    ):
        plan(PAYMENTS, snap(directory__payments_dev=(), directory__payments_oncall=()))


# ------------------------------------------------------------------ time-bound grants


TIMED = """\
org: o
spaces:
  s:
    space_developer:
      groups: [{group: contractors, until: 2026-12-03}]
      users:
        - {user: old@corp.com, until: 2026-11-28}
        - {user: today@corp.com, until: 2026-11-29}
        - {user: later@corp.com, until: 2027-06-01}
"""


def test_expired_grants_dropped_and_expiring_warned() -> None:
    ap = plan(TIMED, snap(directory__contractors=(p("c1"),)))
    assert members(ap, "o", "space_developer", "s") == {
        "uaa/c1": "group directory:contractors until 2026-12-03 (mappings/payments.yaml)",
        "uaa/later@corp.com": "named user until 2027-06-01 (mappings/payments.yaml)",
        "uaa/today@corp.com": "named user until 2026-11-29 (mappings/payments.yaml)",
    }
    assert "uaa/old@corp.com" not in members(ap, "o", "organization_user")
    assert ap.warnings == (
        "mappings/payments.yaml:5: grant of o/s/space_developer to group directory:contractors expires in 4 days (2026-12-03)",
        "mappings/payments.yaml:7: grant of o/s/space_developer to user uaa/old@corp.com expired on 2026-11-28; it is not applied - remove it from the mappings",
        "mappings/payments.yaml:8: grant of o/s/space_developer to user uaa/today@corp.com expires today (2026-11-29)",
    )


def test_expired_group_grant_is_not_read_from_snapshot() -> None:
    ap = plan(TIMED, snap(), today=dt.date(2026, 12, 4))  # contractors not even in the snapshot
    assert list(members(ap, "o", "space_developer", "s")) == ["uaa/later@corp.com"]
    assert len(ap.warnings) == 3


def test_expiry_window_is_configurable() -> None:
    settings = PlanSettings(
        default_source="directory", source_origins={"directory": "uaa"}, expiry_warning_days=1
    )
    ap = plan(TIMED, snap(directory__contractors=()), settings)
    assert not any("contractors" in w for w in ap.warnings)


# ------------------------------------------------------------------ users, summary, determinism


def test_desired_users_and_grants() -> None:
    ap = plan(PAYMENTS, payments_snapshot())
    assert [(u.ref.key, u.grants) for u in ap.users] == [
        (
            "uaa/alice@corp.com",
            ("payments/dev/space_developer", "payments/organization_manager", "payments/organization_user"),
        ),
        (
            "uaa/carol@corp.com",
            ("payments/dev/space_developer", "payments/organization_user", "payments/prod/space_developer"),
        ),
    ]


def test_summary_counts() -> None:
    ap = plan(PAYMENTS, payments_snapshot())
    assert ap.summary() == {
        "orgs": 1,
        "spaces": 2,
        "memberships": 12,
        "assignments": 6,
        "users": 2,
        "excluded_protected": 0,
        "skipped_inactive": 1,
        "warnings": 0,
    }
    assert ap.summary_line().startswith("1 orgs, 2 spaces, 12 memberships, 6 assignments, 2 users")


def test_deterministic_regardless_of_input_order() -> None:
    a = parse_mappings(
        [
            (
                "b.yaml",
                "org: b\nspaces: {y: {space_developer: {groups: [g]}}, x: {space_auditor: {groups: [g]}}}\n",
            ),
            ("a.yaml", "org: a\n"),
        ]
    )
    b = parse_mappings(
        [
            ("a.yaml", "org: a\n"),
            (
                "b.yaml",
                "org: b\nspaces: {x: {space_auditor: {groups: [g]}}, y: {space_developer: {groups: [g]}}}\n",
            ),
        ]
    )
    s1 = snap(directory__g=(p("zz"), p("aa"), p("mm")))
    s2 = snap(directory__g=(p("mm"), p("zz"), p("aa")))
    p1 = build_plan(a, s1, SETTINGS, TODAY)
    p2 = build_plan(b, s2, SETTINGS, TODAY)
    assert p1.orgs[1].spaces[0].memberships[0].members == p2.orgs[1].spaces[0].memberships[0].members
    assert repr(p1.users) == repr(p2.users)
    assert [o.name for o in p1.orgs] == ["a", "b"]
    assert [s.name for s in p1.orgs[1].spaces] == ["x", "y"]
    assert list(p1.membership("b", "space_developer", "y").members) == ["uaa/aa", "uaa/mm", "uaa/zz"]  # type: ignore[union-attr]
    # whole plans compare equal, member maps included, and keys are in sorted order
    assert p1 == p2
    assert [list(mem.members) for mem in p1.memberships()] == [list(mem.members) for mem in p2.memberships()]


# ------------------------------------------------------------------ the repository example end to end


def test_repository_example_plan() -> None:
    mappings = load_mappings(REPO / "mappings", known_sources=["directory"])
    source = DirectorySource(REPO / "directory" / "example.yaml", origin="corp-sso")
    snapshot = read_snapshot({"directory": source}, mappings.group_refs("directory"), "directory")
    settings = PlanSettings(
        protected_users=("(.*/)?admin(@.*)?",),
        default_source="directory",
        source_origins={"directory": "corp-sso"},
    )
    ap = build_plan(mappings, snapshot, settings, TODAY)
    assert [o.name for o in ap.orgs] == ["data", "payments", "platform"]
    assert ap.excluded_protected == ("corp-sso/admin@corp.com",)
    assert ap.skipped_inactive == ("corp-sso/bob@corp.com",)
    assert members(ap, "platform", "space_developer", "sandbox")["corp-sso/grace@corp.com"] == (
        "group directory:data-engineers (mappings/platform.yaml); group directory:platform-engineers (mappings/platform.yaml)"
    )
    assert members(ap, "payments", "organization_auditor") == {
        "corp-sso/erin@corp.com": "group directory:security-auditors (mappings/payments.yaml)",
        "corp-sso/peggy@corp.com": "group directory:security-auditors (mappings/payments.yaml)",
    }
    assert ap.warnings == ()
    assert ap.summary()["users"] == 11


def test_inconsistent_status_counts_as_inactive_everywhere() -> None:
    ap = plan(
        "org: o\norg_roles:\n  organization_manager: {groups: [a]}\n  organization_auditor: {groups: [b]}\n",
        snap(directory__a=(p("x"),), directory__b=(p("x", active=False),)),
    )
    assert members(ap, "o", "organization_manager") == {}
    assert members(ap, "o", "organization_auditor") == {}
    assert ap.skipped_inactive == ("uaa/x",)


# ------------------------------------------------------------------ provenance with lines for reports


def test_locate_provenance_puts_lines_back_for_reports() -> None:
    text = """\
        org: o
        org_roles:
          organization_manager:
            users: [boss@corp.com, {user: ext@partner.com, origin: partner-idp, until: 2027-01-31}]
        spaces:
          s:
            space_developer:
              groups: [alpha, {group: "App: (x)", source: okta, until: 2027-01-31}]
        """
    x = p("x@corp.com")
    ap = plan(text, snap(directory__alpha=(x,), **{"okta:App: (x)": (p("x@corp.com", source="okta"),)}))
    mappings = m(text)
    for mem in ap.memberships():
        for key, provenance in mem.members.items():
            located = locate_provenance(provenance, mappings, mem.scope, mem.role, key, SETTINGS)
            assert located == ap.located_reason(mem.scope.label, mem.role, key)
    dev = ap.located_reason("o/s", "space_developer", "uaa/x@corp.com")
    assert dev == (
        "group directory:alpha (mappings/payments.yaml:8); "
        "group okta:App: (x) until 2027-01-31 (mappings/payments.yaml:8)"
    )
    boss = ap.located_reason("o", "organization_manager", "uaa/boss@corp.com")
    assert boss == "named user (mappings/payments.yaml:4)"


def test_locate_provenance_leaves_reasons_the_mappings_no_longer_hold() -> None:
    mappings = m("org: o\norg_roles:\n  organization_user: {groups: [g]}\n")
    gone = "no longer granted (was: group directory:old (mappings/payments.yaml))"
    assert locate_provenance(gone, mappings, Scope("o"), "organization_user", "uaa/a", SETTINGS) == gone
    other = "group directory:h (mappings/payments.yaml)"
    assert locate_provenance(other, mappings, Scope("o"), "organization_user", "uaa/a", SETTINGS) == other
    assert locate_provenance(other, mappings, Scope("nope"), "organization_user", "uaa/a", SETTINGS) == other
