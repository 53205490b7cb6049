#!/usr/bin/env bash
# The README's test command (via `make test`) and CI's: lint, types, all tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/env.sh
start=$(date +%s)
echo "== ruff"; venv/bin/ruff check .
echo "== mypy"; venv/bin/mypy components sandbox __main__.py tests bench
echo "== actionlint"; scripts/actionlint.sh
echo "== pytest (pulumi $(pulumi version))"
venv/bin/pytest -q "$@"
echo "== all checks passed in $(($(date +%s) - start)) s"
