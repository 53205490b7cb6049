"""Scale benchmark: cf-access on a synthetic foundation against the sandbox (separate process).

    venv/bin/python -m bench.scale --size S|M|L [--parallel N] [--concurrency N]
        [--skip-checkpoints] [--latency-ms 10] [--label TEXT] [--phases initial,refresh,noop,churn]

For one size: generate directory + mappings (bench/scale_data.py), start ``python -m sandbox`` on
127.0.0.1 with the orgs/spaces and ``latency_ms`` injected on every CF/UAA call, create a stack on
a fresh file backend and run, each with a timeout:

    initial   pulumi up --yes --skip-preview
    refresh   pulumi preview --refresh --expect-no-changes     (no-op drift check)
    noop      pulumi up --yes --skip-preview --expect-no-changes
    churn     1 % of people join / leave / move, then pulumi up --yes --skip-preview

Each run records wall time, peak RSS (pulumi CLI, Python program, Python dynamic provider, total;
bench/procmon.py), state file size, sandbox request counters by endpoint and the minimum calls
(bulk reads at per_page=5000 + one write per changed binding and per new user). After each
run the roles in the sandbox are compared with the plan. Prints a table; writes
bench/results/<timestamp>-<size>[-label].json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.peer_model import cf_mgmt_estimate, measure_round_trip
from bench.procmon import run_sampled
from bench.scale_data import ORIGIN, SIZES, Foundation, Size
from sandbox.control import SandboxControl
from tests.pulumi_harness import REPO, PulumiStack, backend_dir, new_stack

SECRET = "sandbox-secret"
PER_PAGE = 5000
# Timeouts per run (seconds), by size.
TIMEOUTS = {"S": 600, "M": 1200, "L": 2400}
PHASES = ("initial", "refresh", "noop", "churn")


# ---------------------------------------------------------------------------------------------
# Expected state (from the plan) and minimum calls
# ---------------------------------------------------------------------------------------------

Binding = tuple[str, str, str]  # (member key, role type, "org" or "org/space")


def expected(directory_file: Path, mappings_dir: Path) -> tuple[set[Binding], set[str]]:
    """Bindings and user keys the plan asks for (the program's own pure code path)."""
    from components.identity.base import read_snapshot
    from components.identity.directory import DirectorySource
    from components.mappings import load_mappings
    from components.plan import PlanSettings, build_plan

    source = DirectorySource(directory_file, name="directory", origin=ORIGIN)
    mappings = load_mappings(mappings_dir, known_sources=["directory"])
    snapshot = read_snapshot({"directory": source}, mappings.group_refs("directory"), "directory")
    plan = build_plan(
        mappings,
        snapshot,
        PlanSettings(default_source="directory", source_origins={"directory": ORIGIN}),
        today=dt.date.today(),
    )
    bindings: set[Binding] = {
        (key, str(m.role), m.scope.label) for m in plan.memberships() for key in m.members
    }
    return bindings, {u.ref.key for u in plan.users}


def live(control: SandboxControl) -> tuple[set[Binding], dict[str, int]]:
    """Bindings in the sandbox now (users with a username) and object counts."""
    state = control.state()
    orgs = {o["guid"]: o["name"] for o in state["organizations"]}
    spaces = {s["guid"]: (orgs[s["organization_guid"]], s["name"]) for s in state["spaces"]}
    users = {u["guid"]: u for u in state["users"]}
    out: set[Binding] = set()
    for r in state["roles"]:
        u = users.get(r["user_guid"]) or {}
        if not u.get("username"):
            continue
        key = f"{u['origin']}/{u['username'].casefold()}"
        if r["space_guid"]:
            org, space = spaces[r["space_guid"]]
            scope = f"{org}/{space}"
        else:
            scope = orgs[r["organization_guid"]]
        out.add((key, r["type"], scope))
    counts = {f"roles:{r['type']}": 0 for r in state["roles"]}
    for r in state["roles"]:
        counts[f"roles:{r['type']}"] += 1
    counts |= {
        "orgs": len(state["organizations"]),
        "spaces": len(state["spaces"]),
        "users": len(state["users"]),
        "uaa_users": len(state["uaa_users"]),
        "roles": len(state["roles"]),
    }
    return out, counts


def pages(n: int) -> int:
    return max(1, math.ceil(n / PER_PAGE))


def minimum_calls(
    counts: dict[str, int], before: set[Binding], after: set[Binding], new_users: int, *, reads: bool
) -> dict[str, int]:
    """The least any tool must send: the four bulk lists (only when it must look at CF at all)
    plus one write per added or removed binding and two per new user (UAA + CC)."""
    adds, removes = len(after - before), len(before - after)
    read = 0
    if reads or adds or removes or new_users:
        read = sum(pages(counts[kind]) for kind in ("orgs", "spaces", "users", "roles"))
    return {
        "reads": read,
        "writes": adds + removes + 2 * new_users,
        "total": read + adds + removes + 2 * new_users,
        "bindings_added": adds,
        "bindings_removed": removes,
        "users_created": new_users,
    }


# ---------------------------------------------------------------------------------------------
# Sandbox process
# ---------------------------------------------------------------------------------------------


def disable_cli_log(pulumi_home: Path) -> None:
    """The CLI (3.260) writes a debug log of every resource's properties to $PULUMI_HOME/logs on
    every run and has no switch for it; when ``logs`` is a file it cannot, and skips it."""
    logs = pulumi_home / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.write_text("cf-access: automatic CLI logging off (docs/performance.md)\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Sandbox:
    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.url}/_sandbox/health", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sandbox did not start (log: {log_path})") from None
                time.sleep(0.1)
        self.control = SandboxControl(self.url)

    def stop(self) -> None:
        self.control.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    phase: str
    command: list[str]
    exit_code: int
    wall_s: float
    rss_mb: dict[str, float]
    cpu_s: dict[str, float]
    state_bytes: int
    calls: dict[str, int]
    calls_total: int
    minimum: dict[str, int]
    counts_before: dict[str, int]
    changed_bindings: int
    bindings: int
    converged: bool
    mismatch: list[str] = field(default_factory=list)
    tail: str = ""

    @property
    def ms_per_binding(self) -> float:
        return 1000 * self.wall_s / max(1, self.bindings)


def state_file(stack: PulumiStack) -> Path:
    backend = backend_dir(stack.env)
    return backend / ".pulumi" / "stacks" / "cf-access" / f"{stack.stack}.json"


def pulumi_args(stack: PulumiStack, phase: str, extra: list[str]) -> list[str]:
    base = ["--stack", stack.stack, "--non-interactive", "--color", "never"]
    base += ["--config-file", str(stack.config_file)]
    if phase == "refresh":
        return ["pulumi", "preview", "--refresh", "--expect-no-changes", *base, *extra]
    if phase == "noop":
        return ["pulumi", "up", "--yes", "--skip-preview", "--expect-no-changes", *base, *extra]
    return ["pulumi", "up", "--yes", "--skip-preview", *base, *extra]


def run_phase(
    phase: str,
    stack: PulumiStack,
    sandbox: Sandbox,
    files: tuple[Path, Path],
    extra: list[str],
    env: dict[str, str],
    timeout: float,
) -> Run:
    before, counts = live(sandbox.control)
    after, want_users = expected(*files)
    existing_users = {b[0] for b in before}
    state = sandbox.control.state()
    known = {f"{u['origin']}/{u['userName'].casefold()}" for u in state["uaa_users"]}
    new_users = len(want_users - known - existing_users)
    # A no-op up must look at CF as well (the guards compare the plan with what CF holds):
    # its floor is the bulk read, like the drift check's (issue #13's definition).
    minimum = minimum_calls(counts, before, after, new_users, reads=phase in ("refresh", "noop"))
    sandbox.control.reset_counters()
    cmd = pulumi_args(stack, phase, extra)
    code, wall, peaks, cpu, output = run_sampled(
        {"args": cmd, "cwd": REPO, "env": env, "stdin": subprocess.DEVNULL}, timeout
    )
    counters = sandbox.control.counters()
    calls: dict[str, int] = dict(sorted(counters.get("requests", {}).items()))
    now, _ = live(sandbox.control)
    mismatch = [f"missing {b}" for b in sorted(after - now)[:5]]
    mismatch += [f"extra {b}" for b in sorted(now - after)[:5]]
    sf = state_file(stack)
    return Run(
        phase=phase,
        command=cmd,
        exit_code=code,
        wall_s=round(wall, 2),
        rss_mb={k: round(v / 2**20, 1) for k, v in peaks.items()},
        cpu_s=cpu,
        state_bytes=sf.stat().st_size if sf.exists() else 0,
        calls=calls,
        calls_total=sum(calls.values()),
        minimum=minimum,
        counts_before=counts,
        changed_bindings=minimum["bindings_added"] + minimum["bindings_removed"],
        bindings=len(after),
        converged=(now == after),
        mismatch=mismatch,
        tail="\n".join(output.splitlines()[-25:]) if code != 0 else "\n".join(output.splitlines()[-6:]),
    )


def configure(
    stack: PulumiStack, url: str, files: tuple[Path, Path], concurrency: int | None, *, uaa_url: bool = False
) -> None:
    directory_file, mappings_dir = files
    stack.config_set("cfApiUrl", url)
    if uaa_url:  # README, Large foundations: saves the discovery GET / on every run
        stack.config_set("cfUaaUrl", f"{url}/uaa")
    stack.config_set("cfClientSecret", SECRET, secret=True)
    stack.config_set("mappingsDir", str(mappings_dir))
    stack.config_set("directoryFile", str(directory_file))
    stack.config_set("directoryOrigin", ORIGIN)
    # The mass-removal brake's default (100 removals per run) refuses a routine 1 % churn at L
    # (~390 role removals); the benchmark raises it like an operator of a 10k-person foundation would.
    stack.config_set("brakeMaxRemovals", "5000")
    if concurrency is not None:
        stack.config_set("concurrency", str(concurrency))


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def fmt_table(size: str, label: str, runs: list[Run]) -> str:
    head = (
        f"{'size':<4} {'run':<8} {'wall s':>8} {'ms/bind':>8} {'bind':>6} {'chg':>6} "
        f"{'calls':>7} {'min':>6} {'x min':>6} {'calls/chg':>9} {'RSS MB cli/prog/prov/tot':>26} "
        f"{'CPU s cli/prog/prov':>20} {'state MB':>8} {'ok':>3}"
    )
    lines = [f"# {size} {label}".rstrip(), head]
    for r in runs:
        if r.minimum["total"]:
            ratio = f"{r.calls_total / r.minimum['total']:.2f}"
        else:
            ratio = "inf" if r.calls_total else "0"

        per_chg = f"{r.calls_total / r.changed_bindings:.2f}" if r.changed_bindings else "-"
        rss = "/".join(f"{r.rss_mb.get(k, 0):.0f}" for k in ("pulumi", "program", "provider", "total"))
        cpu = "/".join(f"{r.cpu_s.get(k, 0):.0f}" for k in ("pulumi", "program", "provider"))
        ok = "yes" if r.exit_code == 0 and r.converged else f"NO({r.exit_code})"
        lines.append(
            f"{size:<4} {r.phase:<8} {r.wall_s:>8.1f} {r.ms_per_binding:>8.2f} {r.bindings:>6} "
            f"{r.changed_bindings:>6} {r.calls_total:>7} {r.minimum['total']:>6} {ratio:>6} {per_chg:>9} "
            f"{rss:>26} {cpu:>20} {r.state_bytes / 2**20:>8.1f} {ok:>3}"
        )
    return "\n".join(lines)


def fmt_peer(size: str, runs: list[Run], peer: dict[str, dict[str, Any]], rtt: dict[str, float]) -> str:
    lines = [
        f"# cf-mgmt (modelled: its call shape, sequential, at the measured round trip "
        f"GET {rtt['get_s'] * 1000:.1f} ms / POST {rtt['post_s'] * 1000:.1f} ms; see bench/peer_model.py)",
        f"{'size':<4} {'run':<8} {'calls':>7} {'low s':>8} {'high s':>8} {'ours s':>8} "
        f"{'speedup (low..high)':>20}",
    ]
    for r in runs:
        p = peer[r.phase]
        lo = p["low_s"] / r.wall_s if r.wall_s else 0
        hi = p["high_s"] / r.wall_s if r.wall_s else 0
        lines.append(
            f"{size:<4} {r.phase:<8} {p['calls']:>7} {p['low_s']:>8.1f} {p['high_s']:>8.1f} "
            f"{r.wall_s:>8.1f} {f'{lo:.2f}x..{hi:.2f}x':>20}"
        )
    return "\n".join(lines)


def finish(out: Path, record: dict[str, Any], runs: list[Run], work: Path, *, keep: bool) -> int:
    """Write a run's JSON (with the machine, the tree and every run), drop the work folder
    unless kept, and give the exit code: 0 when every run passed and converged."""
    import shutil

    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        **record,
        "cpus": os.cpu_count(),
        "git": git_info(),
        "runs": [{**asdict(r), "ms_per_binding": round(r.ms_per_binding, 3)} for r in runs],
    }
    out.write_text(json.dumps(record, indent=2), encoding="utf-8")
    print(f"\n[bench] wrote {out}")
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r.exit_code == 0 and r.converged for r in runs) else 1


def git_info() -> dict[str, str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return {
        "head": git("rev-parse", "--short", "HEAD"),
        "dirty": git("status", "--short", "--", "components", "__main__.py", "sandbox"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="S")
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--parallel", type=int, help="pulumi --parallel (default: the CLI's, 8 here)")
    parser.add_argument("--concurrency", type=int, help="stack config `concurrency` (default 8)")
    parser.add_argument("--skip-checkpoints", action="store_true", help="PULUMI_SKIP_CHECKPOINTS=true")
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--timeout", type=float, help="seconds per run (default by size)")
    parser.add_argument("--label", default="")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--uaa-url", action="store_true", help="set cfUaaUrl (no UAA discovery call)")
    parser.add_argument("--out", type=Path, help="JSON result file (default bench/results/...)")
    parser.add_argument(
        "--no-cli-log",
        action="store_true",
        help="turn off the CLI's automatic debug log ($PULUMI_HOME/logs; docs/performance.md)",
    )
    parser.add_argument(
        "--cli-profile",
        action="store_true",
        help="pulumi --profiling: Go CPU/memory profiles per run in <work dir>/profile.<pid>.* (keeps it)",
    )
    args = parser.parse_args(argv)

    size: Size = SIZES[args.size]
    phases = [p for p in args.phases.split(",") if p]
    timeout = args.timeout or TIMEOUTS[size.name]
    extra = ["--parallel", str(args.parallel)] if args.parallel else []
    args.keep = args.keep or args.cli_profile
    label = args.label or "-".join(
        x
        for x in (
            f"p{args.parallel}" if args.parallel else "",
            f"c{args.concurrency}" if args.concurrency else "",
            "skipckpt" if args.skip_checkpoints else "",
            "uaaurl" if args.uaa_url else "",
        )
        if x
    )

    work = Path(tempfile.mkdtemp(prefix=f"cf-bench-{size.name}-"))
    files = (work / "directory.yaml", work / "mappings")
    foundation = Foundation.generate(size)
    foundation.write(*files)
    print(f"[bench] {size.name}: work dir {work}", flush=True)
    if args.cli_profile:
        extra += ["--profiling", str(work / "profile")]

    sandbox = Sandbox(work / "sandbox.log")
    runs: list[Run] = []
    try:
        sandbox.control.seed(foundation.seed())
        sandbox.control.set_faults(latency_ms=args.latency_ms)
        stack = new_stack(REPO, work, prefix=f"bench{size.name.lower()}")
        configure(stack, sandbox.url, files, args.concurrency, uaa_url=args.uaa_url)
        env = dict(stack.env)
        if args.no_cli_log:
            disable_cli_log(Path(env["PULUMI_HOME"]))
        if args.skip_checkpoints:
            env["PULUMI_SKIP_CHECKPOINTS"] = "true"
        churned: dict[str, list[str]] | None = None
        for phase in phases:
            if phase == "churn":
                churned = foundation.churn()
                foundation.write(*files)
            print(f"[bench] {size.name} {phase} ...", flush=True)
            run = run_phase(phase, stack, sandbox, files, extra, env, timeout)
            runs.append(run)
            print(
                f"[bench] {size.name} {phase}: {run.wall_s:.1f} s, exit {run.exit_code}, "
                f"{run.calls_total} calls (min {run.minimum['total']}), converged {run.converged}",
                flush=True,
            )
            if run.exit_code != 0 or not run.converged:
                print(run.tail, flush=True)
                if phase == "initial":
                    break
        rtt = measure_round_trip(sandbox.url, sandbox.control.token())
    finally:
        sandbox.stop()

    peer = {}
    for r in runs:
        roles_by_type = {k[6:]: v for k, v in r.counts_before.items() if k.startswith("roles:")}
        peer[r.phase] = cf_mgmt_estimate(r.counts_before, roles_by_type, r.minimum, rtt)
    table = fmt_table(size.name, label, runs) + "\n" + fmt_peer(size.name, runs, peer, rtt)
    print()
    print(table)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = (
        args.out or REPO / "bench" / "results" / f"{stamp}-{size.name}{'-' + label if label else ''}.json"
    )
    record = {
        "size": asdict(size),
        "label": label,
        "latency_ms": args.latency_ms,
        "parallel": args.parallel,
        "concurrency": args.concurrency,
        "skip_checkpoints": args.skip_checkpoints,
        "churn": {k: len(v) for k, v in (churned or {}).items()},
        "cf_mgmt_model": {"round_trip_s": rtt, "runs": peer},
        "table": table,
    }
    return finish(out, record, runs, work, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
