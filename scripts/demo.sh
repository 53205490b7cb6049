#!/usr/bin/env bash
# The README's main command (via `make demo`): run the dev stack end to end.
#   1. start the local sandbox (Cloud Controller V3 + UAA) on 127.0.0.1:9022,
#      seeded with the example orgs/spaces; its state persists in .sandbox/
#   2. pulumi preview --diff, then pulumi up, on the dev stack (file backend)
#   3. print who now holds which role, read back from the sandbox's CF API
# Extra arguments go to `pulumi up` (e.g. --refresh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/env.sh

PORT="${CF_ACCESS_SANDBOX_PORT:-9022}"
URL="http://127.0.0.1:$PORT"
mkdir -p .sandbox

if venv/bin/python - "$URL" <<'PY' 2>/dev/null; then
import sys, httpx
httpx.get(sys.argv[1] + "/", timeout=1).raise_for_status()
PY
  echo "== sandbox already running at $URL"
else
  echo "== starting sandbox at $URL (log: .sandbox/sandbox.log)"
  venv/bin/python -m sandbox --host 127.0.0.1 --port "$PORT" \
    --seed sandbox/seed.example.yaml --state-file .sandbox/state.json >.sandbox/sandbox.log 2>&1 &
  SANDBOX_PID=$!
  trap 'kill $SANDBOX_PID 2>/dev/null || true; wait $SANDBOX_PID 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    if venv/bin/python -c "import httpx,sys; httpx.get('$URL/', timeout=1).raise_for_status()" 2>/dev/null; then break; fi
    kill -0 $SANDBOX_PID 2>/dev/null || { cat .sandbox/sandbox.log; echo "sandbox failed to start"; exit 1; }
    sleep 0.2
  done
fi

pulumi stack select dev 2>/dev/null || pulumi stack init dev --non-interactive
echo "== pulumi preview --diff (stack dev)"
pulumi preview --diff --stack dev --non-interactive
echo "== pulumi up (stack dev)"
pulumi up --yes --skip-preview --stack dev --non-interactive "$@"
echo "== roles now in Cloud Foundry ($URL)"
venv/bin/python scripts/show_roles.py "$URL" cf-access "$(pulumi config get cfClientSecret --stack dev)"
