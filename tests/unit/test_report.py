"""The access review's rows (components/report/model.py), git blame and the written files."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from components.changes import Deployed, DeployedMembership
from components.cli.explain import resolve_grants
from components.current import CurrentAccess
from components.identity.base import IdentitySnapshot, Person
from components.mappings import parse_mappings
from components.model import Scope, UserRef
from components.plan import PlanSettings, build_plan
from components.report.blame import BlameLine, blame_file, parse_line_porcelain
from components.report.model import AccessReport, ReportInputs, Row, build_report, classify_people
from components.report.render import render_html, write_report

SETTINGS = PlanSettings(
    protected_users=("^admin@",), default_source="directory", source_origins={"directory": "uaa"}
)
TODAY = dt.date(2026, 12, 1)
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
SINCE = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
PAYMENTS = """\
org: payments
ownership: authoritative
org_roles:
  organization_manager:
    groups: [leads]
    users:
      - {user: erin@corp.com, until: 2027-01-31}
"""
PLATFORM = """\
org: platform
spaces:
  tools:
    space_developer: {groups: [eng]}
"""


def key(name: str) -> str:
    return f"uaa/{name}@corp.com"


def person(name: str, active: bool = True) -> Person:
    return Person(f"{name}@corp.com", "uaa", active, "directory", f"id-{name}")


def fake_blame(file: str, line: int) -> BlameLine:
    return BlameLine(f"{line:02d}" + "c" * 38, "Rita Reviewer", "2026-10-01T09:00:00Z", f"grant at {file}")


def held(**by_scope_role: list[str]) -> CurrentAccess:
    holders = {}
    for name, names in by_scope_role.items():
        scope, _, role = name.partition("__")
        holders[(scope.replace("_", "/"), role)] = frozenset(key(n) for n in names)
    return CurrentAccess(holders=holders, scopes=frozenset({"payments", "platform", "platform/tools"}))


def event(time: str, action: str, name: str, scope: str, role: str, update: str = "up") -> dict[str, str]:
    return {
        "time": time,
        "stack": "dev",
        "update": update,
        "operation": "update",
        "action": action,
        "user": key(name),
        "scope": scope,
        "role": role,
        "reason": f"{action} {name}",
    }


EVENTS = [
    event("2026-08-01T10:00:00Z", "add", "alice", "payments", "organization_manager"),  # before the period
    event("2026-08-01T10:00:00Z", "add", "carol", "platform/tools", "space_developer"),
    event("2026-08-01T10:00:00Z", "add", "frank", "platform/tools", "space_developer"),
    event("2026-10-05T10:00:00Z", "add", "bob", "payments", "organization_manager", "merge"),  # joiner
    event("2026-10-12T10:00:00Z", "remove", "carol", "platform/tools", "space_developer"),  # leaver
    event("2026-10-13T10:00:00Z", "remove", "frank", "platform/tools", "space_developer"),  # move
    event("2026-10-13T10:00:00Z", "add", "frank", "payments", "organization_manager"),
    {**event("2026-10-14T10:00:00Z", "add", "zed", "other", "organization_user"), "stack": "prod"},
]


def build(events: list[dict[str, str]] = EVENTS) -> AccessReport:
    mappings = parse_mappings(
        [("mappings/payments.yaml", PAYMENTS), ("mappings/platform.yaml", textwrap.dedent(PLATFORM))]
    )
    snapshot = IdentitySnapshot(
        {
            "directory:leads": (person("alice"), person("bob"), person("frank")),
            "directory:eng": (person("dave"), person("carol", active=False)),
        }
    )
    plan = build_plan(mappings, snapshot, SETTINGS, TODAY)
    current = held(
        payments__organization_manager=["alice", "mallory", "admin", "frank"],
        payments__organization_user=[],
        platform__organization_user=["dave", "gina"],
        platform_tools__space_developer=["dave", "carol", "hank"],
        platform_sandbox__space_developer=["gina"],
    )
    deployed = Deployed(
        memberships={
            (Scope("payments"), "organization_manager"): DeployedMembership(
                Scope("payments"), "organization_manager", "authoritative", {key("alice"): "group"}
            ),
            (Scope("platform", "tools"), "space_developer"): DeployedMembership(
                Scope("platform", "tools"),
                "space_developer",
                "additive",
                {key("dave"): "group", key("carol"): "group"},
            ),
            (Scope("platform"), "organization_user"): DeployedMembership(
                Scope("platform"), "organization_user", "additive", {key("dave"): "x", key("gina"): "x"}
            ),
        }
    )
    return build_report(
        ReportInputs(
            stack="dev",
            plan=plan,
            grants=resolve_grants(mappings, snapshot, SETTINGS, TODAY),
            current=current,
            deployed=deployed,
            is_protected=lambda k: SETTINGS.is_protected(UserRef.parse(k)),
            ownership={o.name: o.ownership for o in mappings.orgs},
            people=[p for group in snapshot.groups.values() for p in group],
            events=events,
            blame=fake_blame,
            since=SINCE,
            now=NOW,
        )
    )


def rows(report: AccessReport, section: str, **match: object) -> list[Row]:
    return [r for r in report.section(section) if all(getattr(r, k) == v for k, v in match.items())]


def test_access_now_names_group_file_line_commit_and_until() -> None:
    report = build()
    (alice,) = rows(report, "access", person=key("alice"))
    assert (alice.org, alice.space, alice.role) == ("payments", "", "organization_manager")
    assert alice.granted_by == "group directory:leads"
    assert alice.mapping == "mappings/payments.yaml:5"
    assert (alice.commit, alice.author, alice.committed) == (
        "05" + "c" * 10,
        "Rita Reviewer",
        "2026-10-01T09:00:00Z",
    )
    assert alice.next_up == "unchanged" and alice.until == ""
    (erin,) = rows(report, "access", person=key("erin"))
    assert (erin.granted_by, erin.until, erin.mapping) == (
        "named user",
        "2027-01-31",
        "mappings/payments.yaml:7",
    )
    assert erin.next_up == "added"  # granted, CF does not hold it yet
    (bob,) = rows(report, "access", person=key("bob"), role="organization_manager")
    assert bob.next_up == "added"


def test_not_granted_says_what_the_next_up_does_from_run_changes() -> None:
    report = build()
    fates = {
        (r.person, f"{r.org}/{r.space}".rstrip("/"), r.role): r.next_up for r in report.section("not granted")
    }
    assert fates == {
        (key("mallory"), "payments", "organization_manager"): "removed",  # authoritative sweep
        (key("admin"), "payments", "organization_manager"): "protected",
        (key("carol"), "platform/tools", "space_developer"): "removed",  # managed, inactive now
        (key("hank"), "platform/tools", "space_developer"): "left alone",  # hand grant, additive
        (key("gina"), "platform", "organization_user"): "kept",  # holds an unmanaged space role
        (key("gina"), "platform/sandbox", "space_developer"): "left alone",
    }
    (admin,) = rows(report, "access", person=key("admin"))
    assert admin.protected and admin.granted_by.startswith("protected user")
    (hank,) = rows(report, "not granted", person=key("hank"))
    assert hank.ownership == "additive"
    assert report.next_up.startswith("2 role assignments to add; 2 of 9 managed")  # bob, erin; mallory, carol
    assert len(rows(report, "access", next_up="added")) == 2


def test_changes_in_the_period_are_labelled_per_person() -> None:
    report = build()
    got = [(r.time[:10], r.action, r.person, r.change, r.update) for r in report.section("changes")]
    assert got == [
        ("2026-10-05", "add", key("bob"), "joiner", "merge"),
        ("2026-10-12", "remove", key("carol"), "leaver", "up"),
        ("2026-10-13", "remove", key("frank"), "move", "up"),  # trail order kept within a second
        ("2026-10-13", "add", key("frank"), "move", "up"),
    ]  # the prod stack's event and the events before the period are not in it
    assert [(w.start.isoformat(), w.adds, w.removes) for w in report.weeks if w.adds or w.removes] == [
        ("2026-10-05", 1, 0),
        ("2026-10-12", 1, 2),
    ]


def test_leavers_show_when_their_last_role_went() -> None:
    (carol,) = build().section("leavers")
    assert carol.person == key("carol")
    assert carol.time == "2026-10-12T10:00:00Z"
    assert carol.next_up == "holds 1 role(s) in CF; the next up removes 1"


def test_classify_revoked_and_granted() -> None:
    events = [
        event("2026-08-01T00:00:00Z", "add", "a", "o", "organization_manager"),
        event("2026-08-01T00:00:00Z", "add", "a", "o", "organization_auditor"),
        event("2026-10-01T00:00:00Z", "remove", "a", "o", "organization_auditor"),
        event("2026-08-01T00:00:00Z", "add", "b", "o", "organization_manager"),
        event("2026-10-01T00:00:00Z", "add", "b", "o", "organization_auditor"),
    ]
    assert classify_people(events, SINCE) == {key("a"): "revoked", key("b"): "granted"}


def test_heatmap_counts_distinct_holders_per_org_and_role_type() -> None:
    hm = build().heatmap
    assert hm.orgs == ("payments", "platform")
    assert hm.counts[("payments", "organization_manager")] == 4
    assert hm.counts[("platform", "space_developer")] == 4  # dave, carol, hank (tools) + gina (sandbox)


def test_files_hold_the_same_rows_and_the_html_is_self_contained(tmp_path: Path) -> None:
    report = build()
    html, table, doc = write_report(report, tmp_path)
    with table.open(encoding="utf-8") as fh:
        csv_rows = list(csv.DictReader(fh))
    json_rows = json.loads(doc.read_text(encoding="utf-8"))["rows"]
    assert len(csv_rows) == len(json_rows) == len(report.rows)
    assert [(r["section"], r["person"], r["role"]) for r in csv_rows] == [
        (r["section"], r["person"], r["role"]) for r in json_rows
    ]
    text = html.read_text(encoding="utf-8")
    assert "default-src 'none'" in text
    for needle in ("src=", "href=", "@import", "url("):
        assert needle not in text


def test_csv_cells_never_run_as_formulas(tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://127.0.0.1/x","click")'
    report = build(
        [{**event("2026-10-20T00:00:00Z", "add", "x", "payments", "organization_user"), "reason": formula}]
    )
    _, table, doc = write_report(report, tmp_path)
    with table.open(encoding="utf-8") as fh:
        (row,) = [r for r in csv.DictReader(fh) if r["section"] == "changes"]
    assert row["reason"] == "'" + formula
    (same,) = [r for r in json.loads(doc.read_text(encoding="utf-8"))["rows"] if r["section"] == "changes"]
    assert same["reason"] == formula  # JSON is data, not a spreadsheet


def test_html_escapes_what_it_shows() -> None:
    hostile = '<img src=x onerror="alert(1)">'
    report = build(
        [{**event("2026-10-20T00:00:00Z", "add", "x", "payments", "organization_user"), "reason": hostile}]
    )
    text = render_html(report)
    assert hostile not in text
    assert "\\u003cimg src=x" in text  # inside the page's JSON, as data


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "m.yaml").write_text("org: a\nspaces: {}\n", encoding="utf-8")
    git("add", "m.yaml")
    env = ["-c", "user.name=Ann Author", "-c", "user.email=ann@corp.com"]
    git(*env, "commit", "-q", "-m", "first: org a", "--date", "2026-09-02T10:00:00Z")
    (tmp_path / "m.yaml").write_text("org: a\nspaces: {}\n# third\n", encoding="utf-8")
    return tmp_path


def test_blame_names_commit_author_date_per_line(repo: Path) -> None:
    lines = blame_file(repo / "m.yaml")
    assert set(lines) == {1, 2, 3}
    first = lines[1]
    assert (first.author, first.date, first.summary) == ("Ann Author", "2026-09-02T10:00:00Z", "first: org a")
    assert len(first.commit) == 40
    assert lines[3].commit == "" and lines[3].author == "not committed yet"


def test_blame_outside_git_is_empty(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("org: a\n", encoding="utf-8")
    assert blame_file(tmp_path / "m.yaml") == {}
    assert parse_line_porcelain("") == {}


def test_report_command_needs_a_stack_and_a_readable_since() -> None:
    from click.testing import CliRunner

    from components.cli.__main__ import main
    from components.cli.report import ReportError, parse_since

    result = CliRunner().invoke(main, ["report"])
    assert result.exit_code == 2 and "give --stack" in result.output
    assert parse_since("2026-10-01", NOW) == dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    assert parse_since(None, NOW) == NOW - dt.timedelta(days=91)
    with pytest.raises(ReportError, match="not a date"):
        parse_since("last quarter", NOW)


def test_blame_finds_mapping_files_as_provenance_names_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from components.cli.report import mapping_files
    from components.mappings import load_mappings

    elsewhere = tmp_path / "checkout" / "mappings"
    (elsewhere / "teams").mkdir(parents=True)
    (elsewhere / "teams" / "platform.yaml").write_text(textwrap.dedent(PLATFORM), encoding="utf-8")
    decoy = tmp_path / "cwd" / "mappings" / "teams"  # the same name under the working folder
    decoy.mkdir(parents=True)
    (decoy / "platform.yaml").write_text("org: decoy\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "cwd")
    mappings = load_mappings(elsewhere)
    assert mapping_files(mappings, elsewhere) == {
        "mappings/teams/platform.yaml": (elsewhere / "teams" / "platform.yaml").resolve()
    }


def test_audit_events_come_from_the_stacks_audit_log(tmp_path: Path) -> None:
    from components.cli.report import ReportError, audit_events
    from components.cli.stackconfig import StackConfig

    config = StackConfig(values={"auditLog": "audit/trail.jsonl"})
    assert audit_events(StackConfig(), tmp_path) == []  # no auditLog
    assert audit_events(config, tmp_path) == []  # configured, nothing applied yet
    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "trail.jsonl").write_text(json.dumps(EVENTS[0]) + "\n", encoding="utf-8")
    assert audit_events(config, tmp_path) == [EVENTS[0]]
    (tmp_path / "audit" / "trail.jsonl").write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ReportError, match="cannot read the audit trail"):
        audit_events(config, tmp_path)
