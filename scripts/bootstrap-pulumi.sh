#!/usr/bin/env bash
# Make the pinned Pulumi CLI (and the Python language host + helper scripts it
# needs) available, and write the directory that holds them to
# .tools/pulumi-bin-dir so every other script and test puts it on PATH.
#
# Order of preference:
#   1. a `pulumi` already on PATH at >= the pinned version, with a Python
#      language host beside it or on PATH (a normal Pulumi install);
#   2. .tools/pulumi/<key>/bin in this checkout;
#   3. the per-user cache ($XDG_CACHE_HOME/cf-access/pulumi/<key>/bin), so a
#      fresh clone on the same machine (CI clones afresh) does not rebuild;
#   4. build from the Go module proxy via toolchain/pulumi (a few minutes).
# <key> = version + a hash of the wrapper module, so editing the wrapper rebuilds.
#
# Nothing here reaches beyond the Go module proxy: Pulumi's update check and
# plugin downloads are disabled by scripts/env.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"

PULUMI_VERSION="$(sed -n 's/^pulumi==//p' "$ROOT/requirements.txt")"
WRAPPER="$ROOT/toolchain/pulumi"
MARKER="$ROOT/.tools/pulumi-bin-dir"
mkdir -p "$ROOT/.tools"

log() { printf '[bootstrap-pulumi] %s\n' "$*" >&2; }
start=$(date +%s)
done_in() { log "$1 ($(($(date +%s) - start)) s)"; }

version_ge() { # version_ge A B: A >= B (dotted numeric)
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

# 1. A pulumi already on PATH (not one of ours).
if [ "${CF_ACCESS_IGNORE_PATH_PULUMI:-}" != "1" ] && command -v pulumi >/dev/null 2>&1; then
  existing="$(command -v pulumi)"
  case "$existing" in
    "$ROOT/.tools/"*|"${XDG_CACHE_HOME:-$HOME/.cache}/cf-access/"*) ;;
    *)
      have="$(pulumi version 2>/dev/null | sed 's/^v//')"
      dir="$(dirname "$existing")"
      if version_ge "$have" "$PULUMI_VERSION" &&
         { [ -x "$dir/pulumi-language-python" ] || command -v pulumi-language-python >/dev/null 2>&1; }; then
        printf '%s\n' "$dir" >"$MARKER"
        done_in "using pulumi v$have already on PATH at $existing"
        exit 0
      fi
      log "ignoring pulumi on PATH at $existing (version '$have', need >= $PULUMI_VERSION with its Python language host)"
      ;;
  esac
fi

key="v$PULUMI_VERSION-$(cat "$WRAPPER/go.mod" "$WRAPPER/go.sum" "$WRAPPER"/cmd/*/*.go "$0" | sha256sum | cut -c1-12)"
local_bin="$ROOT/.tools/pulumi/$key/bin"
cache_bin="${XDG_CACHE_HOME:-$HOME/.cache}/cf-access/pulumi/$key/bin"

complete() { # complete DIR: all four files present and the CLI runs
  [ -x "$1/pulumi" ] && [ -x "$1/pulumi-language-python" ] &&
    [ -x "$1/pulumi-language-python-exec" ] && [ -x "$1/pulumi-resource-pulumi-python" ] &&
    [ "$("$1/pulumi" version 2>/dev/null)" = "v$PULUMI_VERSION" ]
}

# 2. This checkout's cache.
if complete "$local_bin"; then
  printf '%s\n' "$local_bin" >"$MARKER"
  done_in "pulumi v$PULUMI_VERSION cached in .tools ($local_bin)"
  exit 0
fi

# 3. The per-user cache.
if ! complete "$cache_bin"; then
  # 4. Build.
  command -v go >/dev/null 2>&1 || { log "ERROR: Go is needed to build the Pulumi CLI and was not found on PATH"; exit 1; }
  log "building pulumi v$PULUMI_VERSION from Go modules (first time on this machine: a few minutes)"
  tmp="$(mktemp -d "${cache_bin%/bin}.tmp.XXXXXX" 2>/dev/null || { mkdir -p "$(dirname "$cache_bin")"; mktemp -d "${cache_bin%/bin}.tmp.XXXXXX"; })"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/bin"
  (
    cd "$WRAPPER"
    export GOFLAGS="-mod=readonly -buildvcs=false"
    log "go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
    go build -trimpath \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
      -o "$tmp/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    log "go build ./cmd/pulumi-language-python (cf-access's language host, see its package comment)"
    go build -trimpath -ldflags "-s -w -X main.Version=$PULUMI_VERSION" \
      -o "$tmp/bin/pulumi-language-python" ./cmd/pulumi-language-python
    sdk_dir="$(go mod download -json "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [ -n "$sdk_dir" ] || { log "ERROR: could not locate sdk/v3@v$PULUMI_VERSION in the Go module cache"; exit 1; }
    install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$tmp/bin/"
    install -m 0755 "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$tmp/bin/"
  )
  complete "$tmp/bin" || { log "ERROR: the build finished but $tmp/bin is incomplete"; exit 1; }
  rm -rf "${cache_bin%/bin}"
  mv "$tmp" "${cache_bin%/bin}"
  trap - EXIT
  done_in "built pulumi v$PULUMI_VERSION into $cache_bin"
fi

# Copy the cached build into the checkout (git-ignored .tools/), replacing
# builds of other keys there (the per-user cache keeps them).
rm -rf "$ROOT/.tools/pulumi"
mkdir -p "${local_bin%/bin}"
cp -a "$cache_bin" "$local_bin"
printf '%s\n' "$local_bin" >"$MARKER"
done_in "pulumi $("$local_bin/pulumi" version) ready in $local_bin"
