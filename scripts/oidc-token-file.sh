#!/usr/bin/env bash
# Keep a CI OIDC token for Entra workload identity federation fresh in a file.
#
#   scripts/oidc-token-file.sh FILE [AUDIENCE]     (GitHub Actions, id-token: write)
#
# GitHub's OIDC tokens expire after minutes, and a large run outlives one. cf-access
# re-reads the federated token from its file at every token exchange (docs/operations.md),
# so this writes a token now and then refreshes the file in the background every 4
# minutes until the job ends. Writes are atomic (temp file + rename): a reader never sees
# half a token. The token is masked in the log and never printed.
set -euo pipefail

file="$1"
audience="${2:-api://AzureADTokenExchange}"
: "${ACTIONS_ID_TOKEN_REQUEST_URL:?needs permissions: id-token: write}"
: "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:?needs permissions: id-token: write}"

fetch() {
  local token
  token="$(curl -sSf -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \
    "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=$audience" | jq -r .value)"
  echo "::add-mask::$token"
  umask 077
  printf '%s' "$token" >"$file.tmp"
  mv "$file.tmp" "$file"
}

fetch
(
  while sleep 240; do fetch || echo "oidc-token-file: refresh failed; keeping the previous token" >&2; done
) >/dev/null 2>&1 &
