#!/usr/bin/env bash
# Scale benchmark (not part of the test suite): make bench SIZE=S|M|L [BENCH_ARGS="--parallel 16 ..."]
# Starts the sandbox in a separate process on 127.0.0.1, runs initial up, no-op preview --refresh,
# no-op up and a 1 % churn up on a fresh stack; prints a table and writes bench/results/*.json.
# See docs/performance.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
size="${1:-${SIZE:-S}}"
# shellcheck disable=SC2086
exec venv/bin/python -m bench.scale --size "$size" ${BENCH_ARGS:-}
