"""How long the access report takes at scale, how big it is, how fast it opens.

    venv/bin/python -m bench.report [--size L]                  build, measure, print figures
    venv/bin/python -m bench.report --screenshot REPORT.html OUT.png

No pulumi up is needed: the foundation of ``bench/scale_data.py`` is planned with the
program's own code, and what CF holds and what cf-access manages are made from that
plan - as after an ``up`` of the foundation, then a 1 % churn applied (its changes in
the audit trail), then a second 1 % churn not applied yet (pending in the report: the
next up's adds and removals, leavers still holding roles), plus one hand grant per 10
orgs. The mapping files are committed to a throwaway git repository so blame runs for
real, once per file. The timed part is what ``cf-access report`` does after its CF and
state reads: mappings, identity snapshot, plan, grants, blame, rows, three files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.scale_data import ORIGIN, SIZES, Foundation, org_name
from components.changes import Deployed, DeployedMembership
from components.cli.explain import resolve_grants
from components.current import CurrentAccess
from components.identity.base import read_snapshot
from components.identity.directory import DirectorySource
from components.mappings import load_mappings
from components.model import UserRef
from components.plan import AccessPlan, PlanSettings, build_plan
from components.report.blame import Blame
from components.report.model import ReportInputs, build_report
from components.report.render import write_report

SETTINGS = PlanSettings(default_source="directory", source_origins={"directory": ORIGIN})
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def plan_of(directory: Path, mappings_dir: Path) -> AccessPlan:
    source = DirectorySource(directory, name="directory", origin=ORIGIN)
    mappings = load_mappings(mappings_dir, known_sources=["directory"])
    snapshot = read_snapshot({"directory": source}, mappings.group_refs("directory"), "directory")
    return build_plan(mappings, snapshot, SETTINGS, NOW.date())


def bindings(plan: AccessPlan) -> set[tuple[str, str, str]]:
    return {(m.scope.label, m.role, k) for m in plan.memberships() for k in m.members}


def deployed_from(plan: AccessPlan) -> Deployed:
    return Deployed(
        memberships={
            (m.scope, m.role): DeployedMembership(m.scope, m.role, m.ownership, dict(m.members))
            for m in plan.memberships()
        }
    )


def current_from(held: set[tuple[str, str, str]], scopes: set[str]) -> CurrentAccess:
    holders: dict[tuple[str, str], set[str]] = {}
    for scope, role, key in held:
        holders.setdefault((scope, role), set()).add(key)
    return CurrentAccess({k: frozenset(v) for k, v in holders.items()}, frozenset(scopes))


def events(changes: Iterator[tuple[str, str, tuple[str, str, str]]]) -> list[dict[str, Any]]:
    return [
        {"time": when, "stack": "bench", "update": kind, "operation": "update", "action": action,
         "user": key, "scope": scope, "role": role, "reason": "bench"}
        for when, action, (scope, role, key) in changes
        for kind in ("up",)
    ]  # fmt: skip


def trail(first: set[tuple[str, str, str]], second: set[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """The initial up 80 days ago, then the first churn's up 30 days ago."""
    start = (NOW - dt.timedelta(days=80)).isoformat().replace("+00:00", "Z")
    churn = (NOW - dt.timedelta(days=30)).isoformat().replace("+00:00", "Z")
    out = events((start, "add", b) for b in sorted(first))
    out += events((churn, "remove", b) for b in sorted(first - second))
    out += events((churn, "add", b) for b in sorted(second - first))
    return out


def git_commit(folder: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=Bench", "-c", "user.email=bench@corp.com", "commit", "-q", "-m", "mappings")


def build(size: str, out: Path, work: Path) -> tuple[Path, dict[str, float]]:
    foundation = Foundation.generate(SIZES[size])
    directory, mappings_dir = work / "directory.yaml", work / "mappings"
    foundation.write(directory, mappings_dir)
    git_commit(work)
    plan0 = plan_of(directory, mappings_dir)
    foundation.churn(seed=7)
    foundation.write(directory, mappings_dir)
    plan1 = plan_of(directory, mappings_dir)
    foundation.churn(seed=11)  # not applied yet: the report's "next up" shows it
    foundation.write(directory, mappings_dir)
    held1 = bindings(plan1)
    hand = {
        (org_name(o), "organization_auditor", f"{ORIGIN}/hand{o}@corp.com")
        for o in range(0, SIZES[size].orgs, 10)
    }
    scopes = {m.scope.label for m in plan1.memberships()}
    current, deployed, trail_events = (
        current_from(held1 | hand, scopes),
        deployed_from(plan1),
        trail(bindings(plan0), held1),
    )

    figures: dict[str, float] = {}
    t0 = time.perf_counter()
    source = DirectorySource(directory, name="directory", origin=ORIGIN)
    mappings = load_mappings(mappings_dir, known_sources=["directory"])
    snapshot = read_snapshot({"directory": source}, mappings.group_refs("directory"), "directory")
    plan = build_plan(mappings, snapshot, SETTINGS, NOW.date())
    grants = resolve_grants(mappings, snapshot, SETTINGS, NOW.date())
    figures["plan_s"] = time.perf_counter() - t0
    blame = Blame({o.location.file: work / o.location.file for o in mappings.orgs})
    for o in mappings.orgs:  # blame every file up front, to time it apart from the rows
        blame.at(o.location.file, 1)
    figures["blame_s"] = time.perf_counter() - t0 - figures["plan_s"]
    t1 = time.perf_counter()
    report = build_report(
        ReportInputs(
            stack="bench",
            plan=plan,
            grants=grants,
            current=current,
            deployed=deployed,
            is_protected=lambda key: SETTINGS.is_protected(UserRef.parse(key)),
            ownership={o.name: o.ownership for o in mappings.orgs},
            people=[p for group in snapshot.groups.values() for p in group],
            events=trail_events,
            blame=blame.at,
            since=NOW - dt.timedelta(days=91),
            now=NOW,
        )
    )
    figures["rows_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    html, table, doc = write_report(report, out)
    figures["write_s"] = time.perf_counter() - t2
    figures["build_s"] = time.perf_counter() - t0
    figures["rows"] = len(report.rows)
    figures["roles_held"] = report.counts["roles_held"]
    figures["changes"] = report.counts["changes"]
    for name, path in (("html", html), ("csv", table), ("json", doc)):
        figures[f"{name}_mb"] = path.stat().st_size / 1e6
    return html, figures


def measure_browser(html: Path) -> dict[str, float]:
    from components.report.browser import console_errors, headless_chromium, open_report, rendered_ms

    with headless_chromium() as driver:
        wall = open_report(driver, html, timeout=120)
        filter_ms = driver.execute_script(
            "const t = performance.now(); const s = document.getElementById('f-org');"
            "s.value = s.options[1].value; s.dispatchEvent(new Event('change'));"
            "return performance.now() - t;"
        )
        search_ms = driver.execute_script(  # the first search also builds the page's search text
            "const t = performance.now(); document.getElementById('q').value = 'u00012';"
            "const s = document.getElementById('f-org'); s.value = '';"
            "s.dispatchEvent(new Event('change')); return performance.now() - t;"
        )
        errors = console_errors(driver)
        if errors:
            raise SystemExit(f"console errors: {errors}")
        return {
            "first_render_ms": rendered_ms(driver),
            "open_wall_ms": wall,
            "org_filter_ms": float(filter_ms),
            "first_search_ms": float(search_ms),
        }


def screenshot(html: Path, png: Path) -> None:
    from components.report.browser import headless_chromium, open_report

    with headless_chromium() as driver:
        driver.set_window_size(1600, 1500)
        open_report(driver, html)
        driver.save_screenshot(str(png))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="L")
    parser.add_argument("--out", type=Path, default=None, help="keep the files here (default: a temp folder)")
    parser.add_argument("--screenshot", nargs=2, type=Path, metavar=("REPORT_HTML", "OUT_PNG"))
    args = parser.parse_args(argv)
    if args.screenshot:
        screenshot(*args.screenshot)
        return 0
    with tempfile.TemporaryDirectory(prefix="cf-access-report-bench-") as tmp:
        out = args.out or Path(tmp) / "out"
        html, figures = build(args.size, out, Path(tmp) / "work")
        figures.update(measure_browser(html))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    print(f"report bench {args.size} at {commit.stdout.strip()}:")
    for name, value in figures.items():
        print(f"  {name:18} {value:12.2f}" if isinstance(value, float) else f"  {name:18} {value:12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
