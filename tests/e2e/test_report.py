"""``cf-access report`` after a scripted history of ``pulumi up`` runs against the sandbox.

History: the first up (run kind ``merge``); a joiner (kim, new in the IdP and in
payments-dev); a leaver (dave suspended, run kind ``leaver-sync``); an expiry (oscar's
time-bound grant ends in a reviewed commit that also gives erin a grant until
2027-06-30); then hand grants nobody reviewed (mallory in both orgs, the protected
admin) with no up after them. The mappings live in a git repository with two authors,
so each row's commit and author are known. Every row of the report is checked against
the sandbox (what CF holds), the git history, the audit trail and ``pulumi preview
--refresh`` (what the next up removes must be what the program itself would remove).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from components.audit import read_events
from components.report.browser import console_errors, headless_chromium, open_report
from components.summary import parse_preview
from tests.e2e.foundation import ORIGIN, SECRET, Foundation, foundation, grant_by_hand
from tests.pulumi_harness import REPO

pytestmark = pytest.mark.e2e

ANN = ("Ann Approver", "ann@corp.com")
BEA = ("Bea Approver", "bea@corp.com")


def key(name: str) -> str:
    return f"{ORIGIN}/{name}@corp.com"


def git(folder: Path, *args: str, author: tuple[str, str] = ANN) -> str:
    identity = ["-c", f"user.name={author[0]}", "-c", f"user.email={author[1]}"]
    proc = subprocess.run(["git", *identity, *args], cwd=folder, check=True, capture_output=True, text=True)
    return proc.stdout.strip()


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def cli(env: Foundation, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "cf-access"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "components.cli"]
    return subprocess.run(
        [*cmd, *args, "--project-dir", str(REPO), "--stack", env.stack.stack, "--config-file",
         str(env.stack.config_file)],
        cwd=REPO, env=env.stack.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def up(env: Foundation, kind: str) -> None:
    env.stack.env["CF_ACCESS_UPDATE_KIND"] = kind
    env.stack.up()


def scripted_history(env: Foundation, log: Path) -> dict[str, str]:
    """Run the history; returns the two mapping commits."""
    mappings = env.mappings_dir
    git(mappings, "init", "-q")
    git(mappings, "add", ".")
    git(mappings, "commit", "-q", "-m", "access as reviewed in Q3")
    first = git(mappings, "rev-parse", "HEAD")
    env.stack.config_set("auditLog", str(log))
    up(env, "merge")

    # A joiner: new in the IdP and in payments-dev.
    def join(data: dict[str, Any]) -> None:
        data["users"].append({"username": "kim@corp.com", "status": "ACTIVE", "id": "00u-kim"})
        data["groups"]["payments-dev"].append("kim@corp.com")

    env.edit_directory(join)
    up(env, "merge")

    # A leaver.
    env.set_status("dave@corp.com", "SUSPENDED")
    up(env, "leaver-sync")

    # An expiry, reviewed: oscar's contract ended yesterday; erin covers analytics until mid-2027.
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    platform = mappings / "platform.yaml"
    platform.write_text(platform.read_text().replace("until: 2027-03-31", f"until: {yesterday}"))
    data = mappings / "data.yaml"
    data.write_text(
        data.read_text() + "    space_manager: {users: [{user: erin@corp.com, until: 2027-06-30}]}\n"
    )
    git(mappings, "commit", "-q", "-am", "oscar's contract ended; erin manages analytics", author=BEA)
    second = git(mappings, "rev-parse", "HEAD")
    up(env, "merge")

    # Hand grants nobody reviewed, no up after them.
    grant_by_hand(env, "mallory@corp.com", "space_developer", "platform", "tools")
    grant_by_hand(env, "mallory@corp.com", "organization_auditor", "payments")
    grant_by_hand(env, "admin@corp.com", "organization_manager", "platform")
    return {"first": first, "second": second}


def rows_of(doc: dict[str, Any], section: str) -> list[dict[str, Any]]:
    return [r for r in doc["rows"] if r["section"] == section]


def where(r: dict[str, Any]) -> tuple[str, str, str]:
    scope = f"{r['org']}/{r['space']}" if r["space"] else r["org"]
    return (r["person"], r["role"], scope)


def test_report_after_a_scripted_history(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    out = tmp_path / "report"
    with foundation(tmp_path) as env:
        commits = scripted_history(env, log)
        since = dt.date.today().isoformat()
        result = cli(env, "report", "--since", since, "--out", str(out))
        assert result.returncode == 0, result.stdout + result.stderr
        assert SECRET not in result.stdout + result.stderr
        held = env.roles()
        preview = env.stack.run("preview", "--refresh", "--json")
        next_up = parse_preview(json.loads(preview.output[preview.output.index("{") :]))
        events = [e for e in read_events(log) if e["stack"] == env.stack.stack]

    (doc_path,) = out.glob("*.json")
    doc = json.loads(doc_path.read_text())
    (csv_path,) = out.glob("*.csv")
    with csv_path.open() as fh:
        assert len(list(csv.DictReader(fh))) == len(doc["rows"])
    (html,) = out.glob("*.html")
    with headless_chromium() as browser:  # the real page: it draws every row, with no console error
        open_report(browser, html)
        assert console_errors(browser) == []
        shown = browser.find_element(By.ID, "n-access").text
    assert shown.endswith(f" of {len(rows_of(doc, 'access'))}"), shown
    access, drift = rows_of(doc, "access"), rows_of(doc, "not granted")

    # Access now: exactly what CF holds (the last up left nothing to add), one row per grant.
    assert sorted(set(map(where, access))) == sorted(set(held))
    assert {r["next_up"] for r in access if r["granted_by"] != "not granted by any mapping"} <= {
        "unchanged",
        "protected",
    }
    payments = env.mappings_dir / "payments.yaml"
    (kim_dev,) = [r for r in access if where(r) == (key("kim"), "space_developer", "payments/dev")]
    assert kim_dev["granted_by"] == "group directory:payments-dev"
    assert kim_dev["mapping"] == f"mappings/payments.yaml:{line_of(payments, 'payments-dev')}"
    assert (kim_dev["commit"], kim_dev["author"]) == (commits["first"][:12], ANN[0])
    assert kim_dev["committed"][:10] == dt.datetime.now(dt.UTC).date().isoformat()
    (erin,) = [r for r in access if where(r) == (key("erin"), "space_manager", "data/analytics")]
    assert (erin["granted_by"], erin["until"]) == ("named user", "2027-06-30")
    assert (erin["commit"], erin["author"]) == (commits["second"][:12], BEA[0])
    assert not [r for r in access if r["person"] in (key("dave"), key("oscar"))]
    (admin,) = [r for r in access if r["person"] == key("admin")]
    assert admin["protected"] is True and admin["next_up"] == "protected"

    # Not granted by any mapping: the hand grants, with the program's own verdict.
    assert {where(r): (r["ownership"], r["next_up"]) for r in drift} == {
        (key("mallory"), "space_developer", "platform/tools"): ("additive", "left alone"),
        (key("mallory"), "organization_user", "platform"): ("additive", "left alone"),
        (key("mallory"), "organization_auditor", "payments"): ("authoritative", "removed"),
        (key("admin"), "organization_manager", "platform"): ("additive", "protected"),
    }
    removed_by_preview = {(c.user, c.role, c.scope) for c in next_up.role_changes if c.action == "remove"}
    assert removed_by_preview == {where(r) for r in drift if r["next_up"] == "removed"}

    # Changes in the period: every audit line of this stack, in time order (concurrent writes
    # append out of order), labelled.
    changes = rows_of(doc, "changes")
    assert [(r["time"], r["action"], r["person"], r["role"]) for r in changes] == [
        (e["time"], e["action"], e["user"], e["role"] or "") for e in sorted(events, key=lambda e: e["time"])
    ]
    kinds = {r["person"]: r["change"] for r in changes if r["action"] in ("add", "remove")}
    assert kinds[key("kim")] == "joiner"
    assert kinds[key("dave")] == "leaver" and kinds[key("oscar")] == "leaver"
    assert {r["update"] for r in changes if r["person"] == key("dave") and r["action"] == "remove"} == {
        "leaver-sync"
    }
    oscar = [r for r in changes if r["person"] == key("oscar") and r["action"] == "remove"]
    assert any("named user until 2027-03-31" in r["reason"] for r in oscar)

    # Leavers: bob (never granted) and dave, with when his last role went.
    leavers = {r["person"]: r for r in rows_of(doc, "leavers")}
    assert set(leavers) == {key("bob"), key("dave")}
    dave_removed = max(e["time"] for e in events if e["user"] == key("dave") and e["action"] == "remove")
    assert leavers[key("dave")]["time"] == dave_removed
    assert leavers[key("dave")]["next_up"] == "holds no role in CF"
    assert leavers[key("bob")]["time"] == ""
    assert doc["counts"]["roles_held"] == len(held)
