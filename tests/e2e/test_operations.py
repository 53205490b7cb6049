"""Operations through the real CLIs: ``cf-access export`` → ``pulumi preview`` / ``up`` on a
sandbox foundation that already has roles, plus ``doctor`` and ``why`` on the adopted
stack and the PR summary of the real first preview.

"No changes" after an export means (docs/operations.md, components/cli/export.py):
the first preview only *creates* resources (the stack has no state), the first up
makes **zero CF writes** (sandbox counters), and afterwards
``pulumi preview [--refresh] --expect-no-changes`` passes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.summary import parse_preview, render_markdown
from sandbox.control import SandboxControl
from sandbox.server import SandboxServer
from tests.pulumi_harness import REPO, PulumiStack, new_stack

pytestmark = pytest.mark.e2e

ORIGIN = "corp-sso"
SECRET = "sandbox-secret"


def role(type_: str, user: str, org: str, space: str | None = None, origin: str = ORIGIN) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_, "username": user, "origin": origin, "org": org}
    if space:
        out["space"] = space
    return out


SEED: dict[str, Any] = {
    "orgs": [
        {"name": "payments", "spaces": ["dev", "prod"]},
        {"name": "platform", "spaces": ["tools"]},
        {"name": "empty", "spaces": ["nothing"]},
    ],
    "roles": [
        role("organization_user", "alice@corp.com", "payments"),
        role("organization_manager", "alice@corp.com", "payments"),
        role("space_developer", "alice@corp.com", "payments", "dev"),
        role("organization_user", "carol@corp.com", "payments"),
        role("space_developer", "carol@corp.com", "payments", "prod"),
        role("space_auditor", "carol@corp.com", "payments", "prod"),
        role("organization_user", "ext@partner.com", "payments", origin="partner-idp"),
        role("organization_auditor", "ext@partner.com", "payments", origin="partner-idp"),
        role("organization_user", "dave@corp.com", "platform"),
        role("organization_user", "frank@corp.com", "platform"),
        role("space_manager", "frank@corp.com", "platform", "tools"),
        # protected: never exported, never touched
        role("organization_user", "admin@corp.com", "platform"),
        role("organization_manager", "admin@corp.com", "platform"),
    ],
}


def cf_writes(control: SandboxControl) -> dict[str, int]:
    """Requests that change the foundation (a token request does not)."""
    requests: dict[str, int] = control.counters()["requests"]
    return {
        key: n
        for key, n in requests.items()
        if key.split(" ")[0] not in ("GET", "HEAD", "OPTIONS") and not key.endswith("/oauth/token")
    }


@dataclass
class Adopted:
    url: str
    control: SandboxControl
    stack: PulumiStack
    mappings: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).parent / "cf-access"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "components.cli"]
        return subprocess.run(
            [
                *cmd,
                *args,
                "--project-dir",
                str(REPO),
                "--stack",
                self.stack.stack,
                "--config-file",
                str(self.stack.config_file),
            ],
            cwd=REPO,
            env=self.stack.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


@pytest.fixture
def adopted(tmp_path: Path) -> Iterator[Adopted]:
    mappings = tmp_path / "mappings"
    directory = tmp_path / "directory.yaml"
    shutil.copy(REPO / "directory" / "example.yaml", directory)
    with SandboxServer.start(seed=SEED) as server:
        stack = new_stack(REPO, tmp_path, prefix="ops")
        stack.config_set("cfApiUrl", server.url)
        stack.config_set("cfClientSecret", SECRET, secret=True)
        stack.config_set("mappingsDir", str(mappings))
        stack.config_set("directoryFile", str(directory))
        stack.config_set("directoryOrigin", ORIGIN)
        stack.config_set_list("protectedUsers", ["(.*/)?admin(@.*)?"])
        yield Adopted(server.url, SandboxControl(server.url), stack, mappings)


def test_export_then_adopt_without_cf_writes(adopted: Adopted) -> None:
    before = adopted.control.roles()

    # 1. export: one additive file per org with roles, credentials from the stack config
    exported = adopted.cli("export", "--out", str(adopted.mappings))
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert sorted(p.name for p in adopted.mappings.iterdir()) == ["payments.yaml", "platform.yaml"]
    assert SECRET not in exported.stdout + exported.stderr
    payments = (adopted.mappings / "payments.yaml").read_text()
    assert "ownership: additive" in payments and "{user: ext@partner.com" not in payments
    assert "origin: partner-idp" in payments
    assert "admin" not in (adopted.mappings / "platform.yaml").read_text()
    assert adopted.control.roles() == before

    # 2. the exported files validate offline
    valid = adopted.cli("validate")
    assert valid.returncode == 0, valid.stdout + valid.stderr

    # 3. first preview: creates only (no state yet) - no update, delete or replace
    preview = adopted.stack.run("preview", "--json")
    data = json.loads(preview.output[preview.output.index("{") :])
    ops = {step["op"] for step in data["steps"]}
    assert ops == {"create"}, ops
    summary = parse_preview(data)
    assert summary.first_run
    assert "First run on this stack" in render_markdown(summary)

    # 4. first up: zero writes to CF (users and roles adopted)
    adopted.control.reset_counters()
    adopted.stack.up()
    assert cf_writes(adopted.control) == {}
    assert adopted.control.roles() == before

    # 5. and then nothing to do, with or without refresh
    assert adopted.stack.preview("--expect-no-changes").ok
    assert adopted.stack.preview("--refresh", "--expect-no-changes").ok
    assert cf_writes(adopted.control) == {}


def test_doctor_and_why_on_an_adopted_stack(adopted: Adopted) -> None:
    assert adopted.cli("export", "--out", str(adopted.mappings)).returncode == 0
    doctor = adopted.cli("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert doctor.stdout.splitlines()[-1] == "doctor: 0 error(s), 0 warning(s)"

    why = adopted.cli("why", "carol@corp.com")
    assert why.returncode == 0, why.stdout + why.stderr
    assert "= payments/prod space_developer  named user (mappings/payments.yaml:" in why.stdout
    assert "= payments organization_user" in why.stdout
    assert SECRET not in why.stdout + why.stderr


def test_audit_trail_records_every_applied_change(tmp_path: Path) -> None:
    from components.audit import read_events
    from tests.e2e.foundation import foundation

    log = tmp_path / "audit" / "audit.jsonl"
    with foundation(tmp_path) as env:
        env.stack.config_set("auditLog", str(log))
        env.stack.env["CF_ACCESS_UPDATE_KIND"] = "merge"
        env.stack.preview()
        assert not log.exists() or list(read_events(log)) == [], "a preview never writes, never audits"

        env.stack.up()
        events = list(read_events(log))
        adds = [e for e in events if e["action"] == "add"]
        assert sorted((e["user"], e["role"], e["scope"]) for e in adds) == env.expected()
        for e in adds:
            assert (e["stack"], e["update"], e["operation"]) == (env.stack.stack, "merge", "create")
        dev = next(e for e in adds if e["scope"] == "payments/dev" and e["user"].endswith("/carol@corp.com"))
        assert dev["reason"] == "group directory:payments-dev (mappings/payments.yaml)"
        created = {e["user"] for e in events if e["action"] == "create-user"}
        assert created == {user for user, _, _ in env.expected()}

        # A leaver: every removal, space roles first (CC's rule), with why.
        env.set_status("dave@corp.com", "SUSPENDED")
        env.stack.up()
        new = list(read_events(log))[len(events) :]
        assert sorted((e["action"], e["scope"], e["role"]) for e in new) == [
            ("remove", "payments", "organization_user"),
            ("remove", "payments/dev", "space_developer"),
            ("remove", "payments/prod", "space_auditor"),
        ]
        assert all(
            e["user"].endswith("/dave@corp.com") and e["reason"].startswith("no longer granted") for e in new
        )
        assert [e["scope"] for e in new][-1] == "payments", "organization_user goes last"

        # Nothing applied, nothing logged.
        total = len(list(read_events(log)))
        env.stack.up()
        assert len(list(read_events(log))) == total


def test_scoped_up_changes_one_org_only(tmp_path: Path) -> None:
    """docs/operations.md "Scoped runs": --target <cf:OrgAccess urn> --target-dependents."""
    from tests.e2e.foundation import foundation

    with foundation(tmp_path) as env:
        env.stack.up()
        env.add_to_group("payments-dev", "judy@corp.com")  # payments: +3 for judy
        env.add_to_group("data-analysts", "erin@corp.com")  # data: +2 for erin (waits)
        urn = f"urn:pulumi:{env.stack.stack}::cf-access::pulumi-python:dynamic/cf:OrgAccess::payments"
        env.stack.up("--target", urn, "--target-dependents")
        roles = env.roles()
        judy = [r for r in roles if r[0] == "corp-sso/judy@corp.com" and r[2].startswith("payments")]
        assert len(judy) == 3
        assert not [r for r in roles if r[0] == "corp-sso/erin@corp.com" and r[2].startswith("data")]
        # the rest follows with the next full up
        env.stack.up()
        assert env.roles() == env.expected()
