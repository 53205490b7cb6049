# ruff: noqa: E501  (expected messages are kept on one line so they read like the real output)
"""``cf-access doctor`` and ``cf-access why`` on a sample foundation with planted problems.

The sample: a YAML directory (CF username = email) and three mapping files against
a sandbox CF. Each planted problem must be found exactly once, with where it comes
from, and nothing else may be reported (no false alarms): alice, bob, carol and the
protected admin are all fine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from components.cli.__main__ import main
from components.cli.doctor import Finding, diagnose, gather_snapshot
from components.cli.inventory import HeldRole, Inventory
from components.cloudfoundry.models import CfUser
from components.identity.directory import DirectorySource
from components.mappings import load_mappings
from components.plan import PlanSettings
from sandbox.server import SandboxServer
from tests.pulumi_harness import REPO

ORIGIN = "corp-sso"

DIRECTORY = """\
users:
  - {username: alice, email: Alice@Corp.com, status: ACTIVE, display_name: Alice Andersen}
  - {username: bob, email: bob@corp.com, status: ACTIVE}
  - {username: nomail, status: ACTIVE, display_name: No Mail}
  - {username: carol, email: carol@corp.com, status: ACTIVE}
  - {username: admin, email: admin@corp.com, status: ACTIVE}
groups:
  dev: [alice, bob, nomail]
  leads: [alice]
  ops: [carol, admin]
"""

PAYMENTS = """\
org: payments
ownership: authoritative
org_roles:
  organization_manager: {groups: [leads]}
spaces:
  dev:
    space_developer: {groups: [dev, devs]}
    space_manager: {users: [alice@corp.com]}
  prod:
    space_developer: {groups: [ops]}
  staging:
    space_developer: {users: [carol@corp.com]}
"""

PLATFORM = """\
org: Platform
spaces:
  tools:
    space_developer: {users: [bob@corp.com]}
"""

GHOST = """\
org: ghost
org_roles:
  organization_auditor: {users: [carol@corp.com]}
"""

SEED = {
    "orgs": [
        {"name": "payments", "spaces": ["dev", "prod"]},
        {"name": "platform", "spaces": ["tools"]},
    ],
    "roles": [
        # alice: correct, nothing to report
        {"type": "organization_user", "username": "alice@corp.com", "origin": ORIGIN, "org": "payments"},
        {"type": "organization_manager", "username": "alice@corp.com", "origin": ORIGIN, "org": "payments"},
        {
            "type": "space_developer",
            "username": "alice@corp.com",
            "origin": ORIGIN,
            "org": "payments",
            "space": "dev",
        },
        # alice again under another origin: two CF users for one person
        {"type": "organization_user", "username": "alice@corp.com", "origin": "uaa", "org": "payments"},
        # mallory: holds a role in the authoritative org, nobody maps her
        {"type": "organization_user", "username": "mallory@corp.com", "origin": ORIGIN, "org": "payments"},
        {
            "type": "space_developer",
            "username": "mallory@corp.com",
            "origin": ORIGIN,
            "org": "payments",
            "space": "dev",
        },
        # admin: protected, never reported
        {"type": "organization_user", "username": "admin@corp.com", "origin": ORIGIN, "org": "payments"},
        {
            "type": "space_manager",
            "username": "admin@corp.com",
            "origin": ORIGIN,
            "org": "payments",
            "space": "prod",
        },
    ],
}

STACK = """\
config:
  cf-access:cfApiUrl: http://127.0.0.1:1
  cf-access:cfClientSecret:
    secure: v1:AAAA:not-decrypted-offline
  cf-access:mappingsDir: {mappings}
  cf-access:directoryFile: {directory}
  cf-access:directoryOrigin: corp-sso
  cf-access:usernameAttribute: email
  cf-access:protectedUsers:
    - "(.*/)?admin(@.*)?"
"""


@dataclass
class Sample:
    root: Path
    config_file: Path
    url: str


def write_sample(root: Path) -> Path:
    (root / "mappings").mkdir()
    (root / "mappings" / "payments.yaml").write_text(PAYMENTS)
    (root / "mappings" / "Platform.yaml").write_text(PLATFORM)
    (root / "mappings" / "ghost.yaml").write_text(GHOST)
    (root / "directory.yaml").write_text(DIRECTORY)
    config_file = root / "Pulumi.sample.yaml"
    config_file.write_text(STACK.format(mappings=root / "mappings", directory=root / "directory.yaml"))
    return config_file


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sample]:
    config_file = write_sample(tmp_path)
    monkeypatch.chdir(tmp_path)
    with SandboxServer.start(seed=SEED) as server:
        monkeypatch.setenv("CF_API_URL", server.url)
        monkeypatch.setenv("CF_CLIENT_ID", "cf-access")
        monkeypatch.setenv("CF_CLIENT_SECRET", "sandbox-secret")
        yield Sample(tmp_path, config_file, server.url)


def run(sample: Sample, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        [*args, "--project-dir", str(REPO), "--config-file", str(sample.config_file)],
        catch_exceptions=False,
    )
    return result.exit_code, result.output


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_doctor_finds_every_planted_problem_and_nothing_else(sample: Sample) -> None:
    code, out = run(sample, "doctor")
    print(out)
    lines = out.splitlines()
    payments = sample.root / "mappings" / "payments.yaml"
    expected = [
        f"directory.yaml:{line_of(sample.root / 'directory.yaml', 'nomail, status')}: error [no-username-attribute] "
        "users[2]: missing 'email' (this source uses email as the CF username)",
        "mappings/Platform.yaml:1: error [case-collision] org 'Platform' does not exist in CF, but 'platform' does "
        "(names differ only in case)",
        f"mappings/ghost.yaml:1: error [missing-org] org 'ghost' does not exist in {sample.url}",
        f"mappings/payments.yaml:{line_of(payments, 'devs')}: error [missing-group] group directory:devs does not "
        "exist in the identity source (did you mean 'dev'?)",
        f"mappings/payments.yaml:{line_of(payments, 'staging')}: error [missing-space] space 'payments/staging' "
        f"does not exist in {sample.url}",
    ]
    errors = [ln for ln in lines if ": error [" in ln]
    assert errors == expected
    warnings = [ln for ln in lines if ": warning [" in ln]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("CF user corp-sso/mallory@corp.com: warning [unmapped-cf-user] holds ")
    assert "payments organization_user" in warnings[0] and "payments/dev space_developer" in warnings[0]
    assert "removed on the next up (authoritative)" in warnings[0]
    assert (
        f"mappings/payments.yaml:{line_of(payments, 'leads')}: warning [two-origins] alice@corp.com"
        in warnings[1]
    )
    assert "corp-sso/alice@corp.com (mapped" in warnings[1] and "uaa/alice@corp.com (CF user" in warnings[1]
    assert lines[-1] == "doctor: 5 error(s), 2 warning(s)"
    assert "admin" not in out and "bob" not in out and "carol" not in out
    assert code == 1


def test_doctor_clean_sample_exits_zero(sample: Sample) -> None:
    # Fix every planted error; the warnings remain and do not fail the run.
    (sample.root / "mappings" / "ghost.yaml").unlink()
    (sample.root / "mappings" / "Platform.yaml").write_text(PLATFORM.replace("Platform", "platform"))
    payments = sample.root / "mappings" / "payments.yaml"
    payments.write_text(
        PAYMENTS.replace(", devs]", "]").replace(
            "  staging:\n    space_developer: {users: [carol@corp.com]}\n", ""
        )
    )
    directory = sample.root / "directory.yaml"
    directory.write_text(
        DIRECTORY.replace("{username: nomail,", "{username: nomail, email: nomail@corp.com,")
    )
    code, out = run(sample, "doctor")
    assert ": error [" not in out, out
    assert out.splitlines()[-1] == "doctor: 0 error(s), 2 warning(s)"
    assert code == 0


def test_why_shows_grants_next_to_cf(sample: Sample) -> None:
    # why needs a readable directory and existing groups: fix those two.
    (sample.root / "directory.yaml").write_text(
        DIRECTORY.replace("{username: nomail,", "{username: nomail, email: nomail@corp.com,")
    )
    payments = sample.root / "mappings" / "payments.yaml"
    payments.write_text(PAYMENTS.replace(", devs]", "]"))
    code, out = run(sample, "why", "alice@corp.com")
    print(out)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "corp-sso/alice@corp.com (Alice Andersen, active in directory)"
    body = "\n".join(lines)
    leads, dev = line_of(payments, "leads"), line_of(payments, "{groups: [dev]}")
    named = line_of(payments, "space_manager")
    assert f"= payments organization_manager  group directory:leads (mappings/payments.yaml:{leads})" in body
    assert f"= payments/dev space_developer   group directory:dev (mappings/payments.yaml:{dev})" in body
    assert (
        "= payments organization_user" in body
        and "implied by space roles dev/space_developer, dev/space_manager" in body
    )
    assert (
        f"+ payments/dev space_manager     named user (mappings/payments.yaml:{named})  "
        "[not in CF: the next up adds it]" in body
    )
    # the same person under origin uaa: held in CF, granted by nothing
    assert "uaa/alice@corp.com" in body
    assert "- payments organization_user  [org is authoritative" not in body
    # without --stack, what cf-access manages is unknown: why does not guess
    assert (
        "- payments organization_user  [granted by no mapping: what the next up does depends on the "
        "stack's state (give --stack)]" in body
    )


def test_why_unknown_user(sample: Sample) -> None:
    (sample.root / "directory.yaml").write_text(
        DIRECTORY.replace("{username: nomail,", "{username: nomail, email: nomail@corp.com,")
    )
    (sample.root / "mappings" / "payments.yaml").write_text(PAYMENTS.replace(", devs]", "]"))
    code, out = run(sample, "why", "nobody@corp.com")
    assert code == 0
    assert "nobody@corp.com: no mapping grants this user anything, and CF shows no roles for them" in out


# --------------------------------------------------------------------------- pure checks


def test_cf_case_collision_and_no_false_alarms(tmp_path: Path) -> None:
    """CF users of one origin differing only in case (the sandbox, like UAA, refuses to
    create them, so this is checked on an inventory)."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "data.yaml").write_text(
        "org: data\nspaces:\n  analytics:\n    space_developer: {groups: [eng]}\n"
    )
    (tmp_path / "d.yaml").write_text(
        "users:\n  - {username: dave@corp.com, status: ACTIVE}\ngroups:\n  eng: [dave@corp.com]\n"
    )
    mappings = load_mappings(tmp_path / "m", known_sources=["directory"])
    sources = {"directory": DirectorySource(tmp_path / "d.yaml", origin=ORIGIN)}
    today = dt.date(2026, 11, 29)
    snapshot, findings = gather_snapshot(mappings, sources, "directory", today)
    assert findings == []
    settings = PlanSettings(default_source="directory", source_origins={"directory": ORIGIN})
    inventory = Inventory(
        orgs={"data"},
        spaces={("data", "analytics")},
        users={
            "g1": CfUser("g1", "Dave@corp.com", ORIGIN),
            "g2": CfUser("g2", "dave@corp.com", ORIGIN),
            "c1": CfUser("c1", None, None),  # a UAA client: never reported
        },
        roles=[
            HeldRole("data", "analytics", "space_developer", "g2"),
            HeldRole("data", None, "organization_user", "g2"),
            HeldRole("data", None, "organization_manager", "c1"),
        ],
    )
    found = diagnose(mappings, snapshot, settings, inventory, today)
    assert found == [
        Finding(
            "CF users corp-sso/dave@corp.com",
            "error",
            "case-collision",
            "2 CF users in origin corp-sso differ only in case: 'Dave@corp.com' (g1), 'dave@corp.com' (g2); "
            "cf-access cannot tell them apart",
        )
    ]


def test_group_case_hint(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "data.yaml").write_text(
        "org: data\norg_roles:\n  organization_auditor: {groups: [Eng]}\n"
    )
    (tmp_path / "d.yaml").write_text("users:\n  - {username: dave, status: ACTIVE}\ngroups:\n  eng: [dave]\n")
    mappings = load_mappings(tmp_path / "m", known_sources=["directory"])
    sources = {"directory": DirectorySource(tmp_path / "d.yaml", origin=ORIGIN)}
    _, findings = gather_snapshot(mappings, sources, "directory", dt.date(2026, 11, 29))
    assert [f.message for f in findings] == [
        "group directory:Eng does not exist in the identity source ('eng' exists: group names are case-sensitive)"
    ]
    assert findings[0].where.endswith("data.yaml:3")
