#!/usr/bin/env bash
# Lint the GitHub Actions workflows with actionlint, built from its Go module
# (github.com/rhysd/actionlint/cmd/actionlint) and cached like the Pulumi CLI:
#   1. .tools/actionlint/<version>/actionlint in this checkout;
#   2. the per-user cache ($XDG_CACHE_HOME/cf-access/actionlint/<version>);
#   3. otherwise `go install` from the Go module proxy (a few seconds).
# Arguments are passed to actionlint (default: every workflow in .github/workflows).
# `scripts/actionlint.sh --print-path` builds if needed and prints the binary's path.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="v1.7.12"
local_bin="$ROOT/.tools/actionlint/$VERSION/actionlint"
cache_bin="${XDG_CACHE_HOME:-$HOME/.cache}/cf-access/actionlint/$VERSION/actionlint"

log() { printf '[actionlint.sh] %s\n' "$*" >&2; }

works() { [ -x "$1" ] && [ "$("$1" --version 2>/dev/null | head -n1)" = "$VERSION" ]; }

if ! works "$local_bin"; then
  if ! works "$cache_bin"; then
    command -v go >/dev/null 2>&1 || { log "ERROR: Go is needed to build actionlint and was not found on PATH"; exit 1; }
    log "building actionlint $VERSION from the Go module proxy"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    GOBIN="$tmp" GOFLAGS="-buildvcs=false" go install -trimpath \
      -ldflags "-s -w -X github.com/rhysd/actionlint.version=$VERSION" \
      "github.com/rhysd/actionlint/cmd/actionlint@$VERSION" >&2
    mkdir -p "$(dirname "$cache_bin")"
    install -m 0755 "$tmp/actionlint" "$cache_bin.tmp.$$"
    mv "$cache_bin.tmp.$$" "$cache_bin"
  fi
  mkdir -p "$(dirname "$local_bin")"
  cp "$cache_bin" "$local_bin"
fi

if [ "${1:-}" = "--print-path" ]; then
  printf '%s\n' "$local_bin"
  exit 0
fi
cd "$ROOT"
exec "$local_bin" "$@"
