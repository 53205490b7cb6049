"""cf-access and its peer (OpenTofu + the official Terraform provider) in one bench run.

    venv/bin/python -m bench.side_by_side --size S|M [--latency-ms 10] [--parallelism 10] [--build]
        [--ours-args "--parallel 16 ..."]

Runs bench/scale.py (ours: initial, refresh, noop, churn) and bench/peer_tofu.py (initial, plan,
churn) one after the other, each on its own sandbox seeded with the same generated foundation and
the same seeded 1 % churn (bench/scale_data.py is deterministic), then prints the two side by
side: initial / drift check (ours ``pulumi preview --refresh``, theirs ``tofu plan``) / churn,
with wall time, requests and peak RSS. Writes both JSON files plus
bench/results/<timestamp>-<size>-side-by-side.json. Without the peer's binaries the peer column
says "peer not built: run scripts/bootstrap-peer.sh".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from bench import peer_tofu, scale
from bench.scale_data import SIZES
from tests.pulumi_harness import REPO

# (label, our phase, the peer's phase)
ROWS = (("initial", "initial", "initial"), ("drift check", "refresh", "plan"), ("churn", "churn", "churn"))


def by_phase(result: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {r["phase"]: r for r in (result or {}).get("runs", [])}


def cell(run: dict[str, Any] | None) -> tuple[str, str, str, str]:
    if run is None:
        return ("-", "-", "-", "-")
    ok = "yes" if run["exit_code"] == 0 and run["converged"] else f"NO({run['exit_code']})"
    return (f"{run['wall_s']:.1f}", str(run["calls_total"]), f"{run['rss_mb'].get('total', 0):.0f}", ok)


def fmt_side_by_side(size: str, ours: dict[str, Any] | None, peer: dict[str, Any] | None) -> str:
    o, p = by_phase(ours), by_phase(peer)
    head = (
        f"{'size':<4} {'run':<12} {'bind':>6} {'chg':>5} {'min':>6} | "
        f"{'ours s':>8} {'calls':>7} {'RSS MB':>7} {'ok':>4} | "
        f"{'tofu s':>8} {'calls':>7} {'RSS MB':>7} {'ok':>4} | {'tofu/ours s':>11}"
    )
    lines = [f"# {size}: cf-access (pulumi) vs OpenTofu + terraform-provider-cloudfoundry", head]
    for label, ours_phase, peer_phase in ROWS:
        a, b = o.get(ours_phase), p.get(peer_phase)
        ref = a or b
        if ref is None:
            continue
        ca, cb = cell(a), cell(b)
        ratio = "-"
        if a and b and a["wall_s"]:
            ratio = f"{b['wall_s'] / a['wall_s']:.2f}x"
        lines.append(
            f"{size:<4} {label:<12} {ref['bindings']:>6} {ref['changed_bindings']:>5} "
            f"{ref['minimum']['total']:>6} | {ca[0]:>8} {ca[1]:>7} {ca[2]:>7} {ca[3]:>4} | "
            f"{cb[0]:>8} {cb[1]:>7} {cb[2]:>7} {cb[3]:>4} | {ratio:>11}"
        )
    if peer is None:
        lines.append(peer_tofu.NOT_BUILT)
    return "\n".join(lines)


def load(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.side_by_side", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="S")
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--parallelism", type=int, default=10, help="tofu -parallelism (default 10)")
    parser.add_argument("--build", action="store_true", help="build the peer first if it is missing")
    parser.add_argument("--ours-args", default="", help="extra arguments for bench.scale")
    args = parser.parse_args(argv)

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results = REPO / "bench" / "results"
    ours_out = results / f"{stamp}-{args.size}-ours.json"
    peer_out = results / f"{stamp}-{args.size}-tofu.json"
    latency = ["--latency-ms", str(args.latency_ms)]
    code_ours = scale.main(
        ["--size", args.size, *latency, "--out", str(ours_out), *shlex.split(args.ours_args)]
    )
    peer_argv = ["--size", args.size, *latency, "--parallelism", str(args.parallelism)]
    peer_argv += ["--out", str(peer_out), *(["--build"] if args.build else [])]
    code_peer = peer_tofu.main(peer_argv)

    ours, peer = load(ours_out), load(peer_out)
    table = fmt_side_by_side(args.size, ours, peer)
    print()
    print(table)
    out = results / f"{stamp}-{args.size}-side-by-side.json"
    out.write_text(
        json.dumps(
            {"ours": str(ours_out), "peer": str(peer_out) if peer else None, "table": table}, indent=2
        ),
        encoding="utf-8",
    )
    print(f"\n[bench] wrote {out}")
    return code_ours or code_peer


if __name__ == "__main__":
    sys.exit(main())
