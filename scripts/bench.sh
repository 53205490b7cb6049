#!/usr/bin/env bash
# Benchmark (not part of the test suite): make bench SIZE=S|M|L [BENCH_ARGS="--configs readme --no-peer ..."]
# Ours (bench/scale.py: initial up, drift check, no-op up, 1 % churn) with the README's engine
# settings and with Pulumi's defaults, then the OpenTofu peer (bench/peer_tofu.py) when it is
# built (make bench-peer-setup), each on its own sandbox on 127.0.0.1; prints one table and the
# targets, writes bench/results/*.json. See docs/performance.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
size="${1:-${SIZE:-S}}"
# shellcheck disable=SC2086
exec venv/bin/python -m bench.side_by_side --size "$size" ${BENCH_ARGS:-}
