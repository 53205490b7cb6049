#!/usr/bin/env bash
# Build and cache the benchmark's peer (bench/peer_tofu.py): OpenTofu and the official
# Terraform provider for Cloud Foundry, under $XDG_CACHE_HOME/cf-access/peer/ (~/.cache/...):
#
#   tofu/v<TOFU_VERSION>/bin/tofu
#   provider/<commit12>/bin/terraform-provider-cloudfoundry
#   provider/<commit12>/src/            the provider's source (a work tree of the pinned commit)
#   peer.env                            where bench/peer_tofu.py finds the two binaries
#
# Not part of `make setup` / `make test`: run it by hand or with `make bench-peer-setup`.
# Nothing it fetches or builds belongs in this repository.
#
# OpenTofu comes from the Go module proxy: `go install` refuses the module (it has replace
# directives), so it is downloaded with `go mod download`, copied out of the read-only module
# cache into a writable folder and built there with `go build ./cmd/tofu`.
#
# The provider is built from a git snapshot of cloudfoundry/terraform-provider-cloudfoundry
# at PEER_PROVIDER_COMMIT: set PEER_PROVIDER_GIT to a git directory (bare or not) that holds
# that commit; the work tree is exported into the cache once, and later runs reuse it. Its
# Go dependencies (go-cfclient/v3 v3.0.0-beta.1, go-uaa v0.4.1, ...) are pinned by its
# go.mod / go.sum and come from the Go module proxy.
#
# Builds run with `nice -n 10` (CPU-heavy: a few minutes each on 2 cores).
set -euo pipefail

TOFU_VERSION="${PEER_TOFU_VERSION:-1.12.6}"
# main of 2026-07-24 ("chore: remove go report card as retired (#557)")
PROVIDER_COMMIT="${PEER_PROVIDER_COMMIT:-7367d63e39ba0113bceee2fcda8409177cc16d1d}"

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cf-access/peer"
TOFU_DIR="$CACHE/tofu/v$TOFU_VERSION"
PROV_DIR="$CACHE/provider/${PROVIDER_COMMIT:0:12}"
TOFU_BIN="$TOFU_DIR/bin/tofu"
PROV_BIN="$PROV_DIR/bin/terraform-provider-cloudfoundry"
mkdir -p "$CACHE"

log() { printf '[bootstrap-peer] %s\n' "$*" >&2; }
start=$(date +%s)
since() { echo "$(($(date +%s) - $1)) s"; }

command -v go >/dev/null 2>&1 || { log "ERROR: Go is needed to build the peer and was not found on PATH"; exit 1; }
export GOFLAGS="-mod=mod -buildvcs=false"

# --- OpenTofu --------------------------------------------------------------------------------
tofu_ok() { # the release build reports exactly "OpenTofu v<version>" (a dev build adds "-dev")
  [ -x "$1" ] && TF_CLI_CONFIG_FILE=/dev/null "$1" version 2>/dev/null | grep -qx "OpenTofu v$TOFU_VERSION"
}
if tofu_ok "$TOFU_BIN"; then
  log "tofu v$TOFU_VERSION cached ($TOFU_BIN)"
else
  t0=$(date +%s)
  log "go mod download github.com/opentofu/opentofu@v$TOFU_VERSION"
  mod_dir="$(cd "$CACHE" && go mod download -json "github.com/opentofu/opentofu@v$TOFU_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$mod_dir" ] && [ -d "$mod_dir" ] || { log "ERROR: could not download opentofu v$TOFU_VERSION"; exit 1; }
  tmp="$(mktemp -d "$CACHE/tofu.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  cp -r "$mod_dir" "$tmp/src"
  chmod -R u+w "$tmp/src"
  mkdir -p "$tmp/bin"
  log "go build ./cmd/tofu (v$TOFU_VERSION; a few minutes)"
  # version.dev=no: a release build, as OpenTofu's own release pipeline links it.
  (cd "$tmp/src" && nice -n 10 go build -trimpath \
    -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" -o "$tmp/bin/tofu" ./cmd/tofu)
  tofu_ok "$tmp/bin/tofu" || { log "ERROR: built tofu does not report v$TOFU_VERSION"; exit 1; }
  rm -rf "$tmp/src" "$TOFU_DIR"
  mkdir -p "$(dirname "$TOFU_DIR")"
  mv "$tmp" "$TOFU_DIR"
  trap - EXIT
  log "built tofu v$TOFU_VERSION in $(since "$t0")"
fi

# --- terraform-provider-cloudfoundry ---------------------------------------------------------
if [ -x "$PROV_BIN" ]; then
  log "terraform-provider-cloudfoundry ${PROVIDER_COMMIT:0:12} cached ($PROV_BIN)"
else
  t0=$(date +%s)
  src="$PROV_DIR/src"
  if [ ! -f "$src/go.mod" ]; then
    git_dir="${PEER_PROVIDER_GIT:-}"
    if [ -z "$git_dir" ]; then
      log "ERROR: the provider's source is not cached yet ($src)."
      log "Set PEER_PROVIDER_GIT to a git directory of cloudfoundry/terraform-provider-cloudfoundry"
      log "that holds commit $PROVIDER_COMMIT, then run this again."
      exit 1
    fi
    git --git-dir="$git_dir" cat-file -e "$PROVIDER_COMMIT^{commit}" 2>/dev/null ||
      { log "ERROR: $git_dir has no commit $PROVIDER_COMMIT"; exit 1; }
    # A repository snapshot may lack its largest files (here two recorded HTTP fixtures of the
    # provider's tests): leave out files whose blobs are missing, unless the build needs them.
    # (git archive still names such a blob on stderr, "invalid object", and exits 0.)
    missing=()
    tree="$(git --git-dir="$git_dir" ls-tree -r "$PROVIDER_COMMIT" | awk '$2 == "blob" { print $3 " " $4 }')"
    while read -r blob; do
      path="$(awk -v b="$blob" '$1 == b { sub(/^[^ ]+ /, ""); print }' <<<"$tree")"
      while read -r p; do [ -n "$p" ] && missing+=(":(exclude)$p"); done <<<"$path"
    done < <(cut -d' ' -f1 <<<"$tree" | git --git-dir="$git_dir" cat-file --batch-check |
      awk '$2 == "missing" { print $1 }')
    for m in "${missing[@]}"; do
      case "$m" in
        *"/fixtures/"*|*_test.go) log "left out (not in the snapshot; tests only): ${m#:(exclude)}" ;;
        *) log "ERROR: the snapshot lacks ${m#:(exclude)}, which the build needs"; exit 1 ;;
      esac
    done
    rm -rf "$src"
    mkdir -p "$src"
    git --git-dir="$git_dir" archive "$PROVIDER_COMMIT" -- . "${missing[@]}" | tar -x -C "$src"
    log "exported the provider's source at ${PROVIDER_COMMIT:0:12} to $src"
  fi
  mkdir -p "$PROV_DIR/bin"
  log "go build terraform-provider-cloudfoundry (${PROVIDER_COMMIT:0:12}; a few minutes)"
  (cd "$src" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$PROV_BIN.tmp" .)
  mv "$PROV_BIN.tmp" "$PROV_BIN"
  log "built terraform-provider-cloudfoundry in $(since "$t0")"
fi

cat >"$CACHE/peer.env" <<EOF
TOFU=$TOFU_BIN
TOFU_VERSION=$TOFU_VERSION
PROVIDER=$PROV_BIN
PROVIDER_COMMIT=$PROVIDER_COMMIT
EOF
log "peer ready ($(since "$start")): $CACHE/peer.env"
