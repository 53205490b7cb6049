#!/usr/bin/env bash
# Make SeaweedFS's `weed` binary (an S3-compatible object store) available to
# the S3-backend tests, and write the directory that holds it to
# .tools/weed-bin-dir (tests/s3_store.py reads it).
#
# Same shape as scripts/bootstrap-pulumi.sh, minus "already on PATH":
#   1. .tools/seaweedfs/<key>/bin in this checkout;
#   2. the per-user cache ($XDG_CACHE_HOME/cf-access/seaweedfs/<key>/bin), so a
#      fresh clone on the same machine (CI clones afresh) does not rebuild;
#   3. build from the Go module proxy via toolchain/seaweedfs (several minutes
#      of CPU: SeaweedFS links hundreds of modules).
# <key> = a hash of the wrapper module (go.mod pins the SeaweedFS version via
# its `tool` directive) and this script, so a version bump rebuilds.
# Nothing from SeaweedFS is committed: only the wrapper's go.mod/go.sum.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WRAPPER="$ROOT/toolchain/seaweedfs"
MARKER="$ROOT/.tools/weed-bin-dir"
mkdir -p "$ROOT/.tools"

log() { printf '[bootstrap-seaweedfs] %s\n' "$*" >&2; }
start=$(date +%s)
done_in() { log "$1 ($(($(date +%s) - start)) s)"; }

version="$(sed -n 's|^[[:space:]]*github.com/seaweedfs/seaweedfs \(v[^ ]*\).*|\1|p' "$WRAPPER/go.mod")"
[ -n "$version" ] || { log "ERROR: no github.com/seaweedfs/seaweedfs requirement in $WRAPPER/go.mod"; exit 1; }
key="$version-$(cat "$WRAPPER/go.mod" "$WRAPPER/go.sum" "$0" | sha256sum | cut -c1-12)"
local_bin="$ROOT/.tools/seaweedfs/$key/bin"
cache_bin="${XDG_CACHE_HOME:-$HOME/.cache}/cf-access/seaweedfs/$key/bin"

complete() { # complete DIR: the binary is there and runs
  [ -x "$1/weed" ] && "$1/weed" version >/dev/null 2>&1
}

# 1. This checkout's cache.
if complete "$local_bin"; then
  printf '%s\n' "$local_bin" >"$MARKER"
  done_in "weed $version cached in .tools ($local_bin)"
  exit 0
fi

# 2. The per-user cache; 3. build.
if ! complete "$cache_bin"; then
  command -v go >/dev/null 2>&1 || { log "ERROR: Go is needed to build SeaweedFS and was not found on PATH"; exit 1; }
  log "building weed $version from Go modules (first time on this machine: several minutes)"
  mkdir -p "$(dirname "$cache_bin")"
  tmp="$(mktemp -d "${cache_bin%/bin}.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/bin"
  (
    cd "$WRAPPER"
    export GOFLAGS="-mod=readonly -buildvcs=false"
    go build -trimpath -ldflags "-s -w" -o "$tmp/bin/weed" github.com/seaweedfs/seaweedfs/weed
  )
  complete "$tmp/bin" || { log "ERROR: the build finished but $tmp/bin/weed does not run"; exit 1; }
  rm -rf "${cache_bin%/bin}"
  mv "$tmp" "${cache_bin%/bin}"
  trap - EXIT
  done_in "built weed $version into $cache_bin"
fi

rm -rf "$ROOT/.tools/seaweedfs"
mkdir -p "${local_bin%/bin}"
cp -a "$cache_bin" "$local_bin"
printf '%s\n' "$local_bin" >"$MARKER"
done_in "weed $version ready in $local_bin"
