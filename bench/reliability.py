"""Reliability run: a synthetic foundation under CF faults, plus one kill -9 of
`pulumi up`, must converge within 3 runs to exactly the plan.

    venv/bin/python -m bench.reliability --size M

The sandbox (a separate process on 127.0.0.1) answers 10 % of CF/UAA calls
with 500/502/503, 5 % with 429 (+ Retry-After), drops 1 % of connections and
loses 1 % of responses after processing the request (so writes whose answer
never arrived must be adopted, not repeated). The first `pulumi up` is killed
with SIGKILL once about a third of the role creates were sent; recovery follows the
README (cancel, refresh --clear-pending-creates, up), then plain `up`s until
CF equals the plan. Reports, per run: wall time, exit code, faults injected,
and missing / extra / duplicate role assignments read from the sandbox.
Not a test: it prints figures (and writes bench/results/*-reliability.json).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.scale import Sandbox, configure, expected
from bench.scale_data import SIZES, Foundation
from sandbox.control import SandboxControl
from tests.pulumi_harness import REPO, PulumiStack, kill_session, new_stack

FAULTS = {
    "error_rate": 0.10,
    "rate_429": 0.05,
    "drop_rate": 0.01,
    "drop_after_rate": 0.01,
    "retry_after_s": 1,
}


def assignments(control: SandboxControl) -> collections.Counter[tuple[str, str, str]]:
    """Every role with a username, counted (a count above 1 is a duplicate)."""
    state = control.state()
    orgs = {o["guid"]: o["name"] for o in state["organizations"]}
    spaces = {s["guid"]: f"{orgs[s['organization_guid']]}/{s['name']}" for s in state["spaces"]}
    users = {u["guid"]: u for u in state["users"]}
    counter: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for role in state["roles"]:
        user = users.get(role["user_guid"]) or {}
        if not user.get("username"):
            continue
        scope = spaces[role["space_guid"]] if role["space_guid"] else orgs[role["organization_guid"]]
        counter[(f"{user['origin']}/{user['username'].casefold()}", role["type"], scope)] += 1
    return counter


def compare(control: SandboxControl, want: set[tuple[str, str, str]]) -> dict[str, int]:
    have = assignments(control)
    return {
        "assignments": sum(have.values()),
        "missing": len(want - set(have)),
        "extra": len(set(have) - want),
        "duplicates": sum(n - 1 for n in have.values() if n > 1),
    }


def pulumi(stack: PulumiStack, *args: str, timeout: float) -> tuple[int, float, str]:
    started = time.monotonic()
    result = stack.run(*args, check=False, timeout=timeout)
    return result.returncode, time.monotonic() - started, result.output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability")
    parser.add_argument("--size", choices=sorted(SIZES), default="M")
    parser.add_argument("--kill-at", type=float, default=0.33, help="share of role creates before kill -9")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--skip-checkpoints",
        action="store_true",
        help="PULUMI_SKIP_CHECKPOINTS=true (then a killed run leaves no state: recovery adopts everything)",
    )
    args = parser.parse_args(argv)

    size = SIZES[args.size]
    work = Path(tempfile.mkdtemp(prefix=f"cf-reliability-{size.name}-"))
    files = (work / "directory.yaml", work / "mappings")
    foundation = Foundation.generate(size)
    foundation.write(*files)
    want, users = expected(*files)
    print(
        f"[reliability] {size.name}: {len(want)} assignments, {len(users)} users; work dir {work}", flush=True
    )

    sandbox = Sandbox(work / "sandbox.log")
    rows: list[dict[str, Any]] = []
    try:
        sandbox.control.seed(foundation.seed())
        stack = new_stack(REPO, work, prefix=f"rel{size.name.lower()}")
        configure(stack, sandbox.url, files, None)
        if args.skip_checkpoints:
            stack.env["PULUMI_SKIP_CHECKPOINTS"] = "true"
        sandbox.control.set_faults(**FAULTS, seed=11)

        # Run 1: killed with SIGKILL part-way.
        target = int(args.kill_at * len(want))
        cmd = ["pulumi", "up", "--yes", "--skip-preview", "--stack", stack.stack, "--non-interactive"]
        cmd += ["--config-file", str(stack.config_file)]
        started = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=stack.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def role_creates() -> int:
            return int(sandbox.control.counters()["requests"].get("POST /v3/roles", 0))

        while role_creates() < target and proc.poll() is None:
            time.sleep(0.2)
        kill_session(proc.pid)  # the CLI and every plugin it started
        proc.wait()
        row = {"run": "1: up, kill -9", "seconds": round(time.monotonic() - started, 1), "exit": "SIGKILL"}
        row |= compare(sandbox.control, want) | {"faults": sandbox.control.counters().get("faults", {})}
        rows.append(row)
        print(f"[reliability] {row}", flush=True)

        # Recovery as documented, still under faults.
        for run, steps in (
            (
                "2: cancel + refresh --clear-pending-creates + up",
                [
                    ["cancel", "--yes"],
                    ["refresh", "--yes", "--skip-preview", "--clear-pending-creates"],
                    ["up", "--yes", "--skip-preview"],
                ],
            ),
            ("3: up", [["up", "--yes", "--skip-preview"]]),
            ("4: up", [["up", "--yes", "--skip-preview"]]),
        ):
            sandbox.control.reset_counters()
            total = 0.0
            codes = []
            tail = ""
            for step in steps:
                code, seconds, output = pulumi(stack, *step, timeout=args.timeout)
                total += seconds
                codes.append(code)
                tail = output[-1500:]
            result = compare(sandbox.control, want)
            row = {"run": run, "seconds": round(total, 1), "exit": codes} | result
            row["faults"] = sandbox.control.counters().get("faults", {})
            rows.append(row)
            print(f"[reliability] {row}", flush=True)
            converged = all(c == 0 for c in codes) and not (
                result["missing"] or result["extra"] or result["duplicates"]
            )
            if converged:
                break
            print(tail, flush=True)

        sandbox.control.clear_faults()
        code, seconds, output = pulumi(
            stack, "preview", "--refresh", "--expect-no-changes", timeout=args.timeout
        )
        rows.append(
            {
                "run": "check: preview --refresh --expect-no-changes (no faults)",
                "seconds": round(seconds, 1),
                "exit": code,
            }
        )
        print(f"[reliability] {rows[-1]}", flush=True)
    finally:
        sandbox.stop()

    print()
    title = f"run ({size.name}: {len(want)} assignments, {len(users)} users)"
    print(f"| {title} | s | exit | missing | extra | duplicates |")
    print("|---|---:|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['run']} | {row['seconds']} | {row['exit']} | {row.get('missing', '')} | "
            f"{row.get('extra', '')} | {row.get('duplicates', '')} |"
        )
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (out / f"{stamp}-{size.name}-reliability.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
