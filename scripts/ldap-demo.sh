#!/usr/bin/env bash
# `make ldap-demo` (ARGS=up to apply): the ldap-demo stack against local stand-ins.
#   1. the CF sandbox on 127.0.0.1:9022 (as in scripts/demo.sh)
#   2. a fresh slapd on 127.0.0.1:9389 with sandbox/slapd/example.yaml loaded over LDAP
#      (StartTLS with its own CA in .state/slapd/tls/ca.pem)
#   3. pulumi preview --diff on the ldap-demo stack; with `up`, also pulumi up and the roles
# The bind password reaches the program through CF_ACCESS_LDAP_BIND_PASSWORD (it wins over the
# encrypted bindPassword in Pulumi.ldap-demo.yaml; both hold the demo's throwaway value).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/env.sh

CF_PORT="${CF_ACCESS_SANDBOX_PORT:-9022}"
CF_URL="http://127.0.0.1:$CF_PORT"
LDAP_PORT="${CF_ACCESS_SLAPD_PORT:-9389}"
mkdir -p .sandbox .state
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

if ! venv/bin/python -c "import httpx; httpx.get('$CF_URL/', timeout=1).raise_for_status()" 2>/dev/null; then
  echo "== starting the CF sandbox at $CF_URL (log: .sandbox/sandbox.log)"
  venv/bin/python -m sandbox --host 127.0.0.1 --port "$CF_PORT" \
    --seed sandbox/seed.example.yaml --state-file .sandbox/state.json >.sandbox/sandbox.log 2>&1 &
  PIDS+=($!)
fi
echo "== starting slapd at ldap://127.0.0.1:$LDAP_PORT (log: .state/slapd.log)"
venv/bin/python -m sandbox.slapd --port "$LDAP_PORT" --state .state/slapd >.state/slapd.log 2>&1 &
PIDS+=($!)
for _ in $(seq 1 150); do
  grep -q "^slapd on" .state/slapd.log 2>/dev/null \
    && venv/bin/python -c "import httpx; httpx.get('$CF_URL/', timeout=1).raise_for_status()" 2>/dev/null && break
  for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || { cat .state/slapd.log .sandbox/sandbox.log 2>/dev/null; echo "a stand-in failed to start"; exit 1; }; done
  sleep 0.2
done

export CF_ACCESS_LDAP_BIND_PASSWORD="${CF_ACCESS_LDAP_BIND_PASSWORD:-ldap-demo-bind-password}"
pulumi stack select ldap-demo 2>/dev/null || pulumi stack init ldap-demo --non-interactive
echo "== pulumi preview --diff (stack ldap-demo)"
pulumi preview --diff --stack ldap-demo --non-interactive
if [ "${1:-}" = "up" ]; then
  shift
  echo "== pulumi up (stack ldap-demo)"
  pulumi up --yes --skip-preview --stack ldap-demo --non-interactive "$@"
  echo "== roles now in Cloud Foundry ($CF_URL)"
  venv/bin/python scripts/show_roles.py "$CF_URL" cf-access "$(pulumi config get cfClientSecret --stack ldap-demo)"
fi
