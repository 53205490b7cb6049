"""cf-access and its peer (OpenTofu + the official Terraform provider) in one bench run.

    make bench SIZE=S|M|L [BENCH_ARGS="--configs readme,defaults --latency-ms 10 ..."]
    venv/bin/python -m bench.side_by_side --size S|M|L [--configs readme,defaults] [--no-peer]
        [--latency-ms 10] [--parallelism 10] [--build] [--ours-args "--parallel 16 ..."]

Runs bench/scale.py (ours: initial, drift check, no-op up, 1 % churn) once per configuration -
``readme``: the settings the README recommends for large foundations (``PULUMI_SKIP_CHECKPOINTS=true``
on ``up``, the CLI's automatic debug log off, ``cfUaaUrl`` set); ``defaults``: Pulumi as it comes
and no ``cfUaaUrl`` - then
bench/peer_tofu.py (initial, ``tofu plan`` as the drift check, churn), each on its own sandbox
seeded with the same generated foundation and the same seeded 1 % churn (bench/scale_data.py is
deterministic). Prints one table with wall time, requests against the minimum, and peak RSS of
all processes, then the issue's targets for L. Writes every JSON file plus
bench/results/<timestamp>-<size>-side-by-side.json. Without the peer's binaries the peer
columns say "peer not built: run scripts/bootstrap-peer.sh" and the run still succeeds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import peer_tofu, scale
from bench.scale_data import SIZES
from tests.pulumi_harness import REPO

# (label, our phase, the peer's phase)
ROWS = (
    ("initial", "initial", "initial"),
    ("drift check", "refresh", "plan"),
    ("no-op up", "noop", None),
    ("1% churn", "churn", "churn"),
)
CONFIGS = {
    "readme": ["--skip-checkpoints", "--no-cli-log", "--uaa-url"],
    "defaults": [],
}
# Issue #13's targets at L (10 ms latency, 2 cores): seconds, and requests / minimum.
TARGET_S = {"refresh": 15.0, "noop": 10.0, "churn": 30.0, "initial": 120.0}
TARGET_CALLS = {"refresh": 1.1, "noop": 1.1, "churn": 1.5}
TARGET_RSS_MB = 1024.0
TARGET_VS_PEER = 3.0


def by_phase(result: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {r["phase"]: r for r in (result or {}).get("runs", [])}


def ok(run: dict[str, Any]) -> str:
    return "yes" if run["exit_code"] == 0 and run["converged"] else f"NO({run['exit_code']})"


def ratio(run: dict[str, Any]) -> str:
    minimum = run["minimum"]["total"]
    return f"{run['calls_total'] / minimum:.2f}" if minimum else "-"


def rss(run: dict[str, Any]) -> float:
    return float(run["rss_mb"].get("total", 0))


def fmt_side_by_side(
    size: str, ours: dict[str, dict[str, Any] | None], peer: dict[str, Any] | None, peer_note: str = ""
) -> str:
    """One row per run: each configuration of ours, then the peer, then tofu / ours(first)."""
    names = list(ours)
    head = f"{'size':<4} {'run':<12} {'bind':>6} {'chg':>5} {'min':>6} |"
    for name in names:
        head += f" {name + ' s':>11} {'calls':>6} {'x min':>5} {'RSS MB':>6} {'ok':>3} |"
    head += f" {'tofu s':>8} {'calls':>7} {'RSS MB':>7} {'ok':>3} | {'tofu/ours':>9}"
    lines = [f"# {size}: cf-access (pulumi) vs OpenTofu + terraform-provider-cloudfoundry", head]
    phases = {name: by_phase(result) for name, result in ours.items()}
    theirs = by_phase(peer)
    for label, our_phase, peer_phase in ROWS:
        runs = [phases[name].get(our_phase) for name in names]
        other = theirs.get(peer_phase) if peer_phase else None
        ref = next((r for r in [*runs, other] if r is not None), None)
        if ref is None:
            continue
        line = f"{size:<4} {label:<12} {ref['bindings']:>6} {ref['changed_bindings']:>5} "
        line += f"{ref['minimum']['total']:>6} |"
        for run in runs:
            if run is None:
                line += f" {'-':>11} {'-':>6} {'-':>5} {'-':>6} {'-':>3} |"
            else:
                cells = f" {run['wall_s']:>11.1f} {run['calls_total']:>6} {ratio(run):>5}"
                line += cells + f" {rss(run):>6.0f} {ok(run):>3} |"
        if other is None:
            line += f" {'-':>8} {'-':>7} {'-':>7} {'-':>3} | {'-':>9}"
        else:
            first = runs[0]
            times = f"{other['wall_s'] / first['wall_s']:.1f}x" if first and first["wall_s"] else "-"
            line += f" {other['wall_s']:>8.1f} {other['calls_total']:>7} {rss(other):>7.0f}"
            line += f" {ok(other):>3} | {times:>9}"
        lines.append(line)
    if peer is None:
        lines.append(peer_note or peer_tofu.NOT_BUILT)
    return "\n".join(lines)


def fmt_targets(ours: dict[str, dict[str, Any] | None], peer: dict[str, Any] | None) -> str:
    """Each configuration of ours against issue #13's targets (they are set for L)."""
    theirs = by_phase(peer)
    lines = ["# targets (issue #13, set for L)"]
    for name, result in ours.items():
        runs = by_phase(result)
        checks: list[str] = []
        for phase, limit in TARGET_S.items():
            run = runs.get(phase)
            if run is not None:
                checks.append(
                    f"{phase} {run['wall_s']:.1f}s<={limit:.0f}s {'OK' if run['wall_s'] <= limit else 'MISS'}"
                )
        for phase, limit in TARGET_CALLS.items():
            run = runs.get(phase)
            if run is not None and run["minimum"]["total"]:
                x = run["calls_total"] / run["minimum"]["total"]
                checks.append(f"{phase} calls {x:.2f}x<={limit}x {'OK' if x <= limit else 'MISS'}")
        peak = max((rss(r) for r in runs.values()), default=0.0)
        checks.append(
            f"peak RSS {peak:.0f}MB<={TARGET_RSS_MB:.0f}MB {'OK' if peak <= TARGET_RSS_MB else 'MISS'}"
        )
        for our_phase, peer_phase in (("initial", "initial"), ("refresh", "plan"), ("churn", "churn")):
            a, b = runs.get(our_phase), theirs.get(peer_phase)
            if a is not None and b is not None and a["wall_s"]:
                x = b["wall_s"] / a["wall_s"]
                verdict = "OK" if x >= TARGET_VS_PEER else "MISS"
                checks.append(f"{our_phase} vs tofu {x:.1f}x>={TARGET_VS_PEER:.0f}x {verdict}")
        lines.append(f"{name}: " + "; ".join(checks))
    return "\n".join(lines)


def load(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def tree() -> str:
    proc = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True
    )
    return proc.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.side_by_side", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="S")
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument(
        "--configs", default="readme,defaults", help="ours: readme, defaults (comma-separated)"
    )
    parser.add_argument("--parallelism", type=int, default=10, help="tofu -parallelism (default 10)")
    parser.add_argument("--no-peer", action="store_true", help="ours only")
    parser.add_argument("--build", action="store_true", help="build the peer first if it is missing")
    parser.add_argument("--ours-args", default="", help="extra arguments for bench.scale")
    args = parser.parse_args(argv)
    configs = [c for c in args.configs.split(",") if c]
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown --configs {', '.join(unknown)} (known: {', '.join(CONFIGS)})")

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results = REPO / "bench" / "results"
    latency = ["--latency-ms", str(args.latency_ms)]
    codes: list[int] = []
    ours_out: dict[str, Path] = {}
    for name in configs:
        ours_out[name] = results / f"{stamp}-{args.size}-ours-{name}.json"
        extra = [*CONFIGS[name], "--label", name, *shlex.split(args.ours_args)]
        codes.append(scale.main(["--size", args.size, *latency, "--out", str(ours_out[name]), *extra]))
    peer_out = results / f"{stamp}-{args.size}-tofu.json"
    if not args.no_peer:
        peer_argv = ["--size", args.size, *latency, "--parallelism", str(args.parallelism)]
        peer_argv += ["--out", str(peer_out), *(["--build"] if args.build else [])]
        codes.append(peer_tofu.main(peer_argv))

    ours = {name: load(path) for name, path in ours_out.items()}
    peer = load(peer_out)
    table = fmt_side_by_side(args.size, ours, peer, "peer not run (--no-peer)" if args.no_peer else "")
    targets = fmt_targets(ours, peer)
    print()
    print(f"# tree {tree()}, {args.latency_ms:g} ms latency, tofu -parallelism {args.parallelism}")
    print(table)
    print(targets)
    out = results / f"{stamp}-{args.size}-side-by-side.json"
    out.write_text(
        json.dumps(
            {
                "tree": tree(),
                "ours": {name: str(path) for name, path in ours_out.items()},
                "peer": str(peer_out) if peer else None,
                "table": table,
                "targets": targets,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"\n[bench] wrote {out}")
    return max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main())
