#!/usr/bin/env bash
# Debian packages the LDAP identity source needs:
#   scripts/system-deps.sh build   libldap2-dev libsasl2-dev gcc, to build python-ldap (PyPI ships
#                                  it as source only); `make venv` runs this (pipelines too)
#   scripts/system-deps.sh all     also slapd + ldap-utils: the real OpenLDAP server the tests and
#                                  the ldap-demo stack start; and chromium + chromium-driver: the
#                                  headless browser the access-report tests open the HTML in
#                                  (Debian's build, so no test tool downloads a browser of its
#                                  own); `make setup` runs this
# Installs only what is missing, with apt-get: as root (CI, fresh machines), or through sudo when
# it needs no password (hosted CI runners); otherwise says what to install and fails.
set -euo pipefail
mode="${1:-all}"

missing=()
if [ "$mode" = all ]; then
  command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || missing+=(slapd)
  command -v ldapadd >/dev/null 2>&1 || missing+=(ldap-utils)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
fi
[ -f /usr/include/ldap.h ] || missing+=(libldap2-dev)
[ -f /usr/include/sasl/sasl.h ] || missing+=(libsasl2-dev)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
  else
    as_root=(missing-root)
  fi
fi
if [ "${as_root[0]:-}" = missing-root ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${missing[*]}" >&2
  echo "install them (Debian/Ubuntu: sudo apt-get install -y ${missing[*]}) and run make again" >&2
  exit 1
fi
echo "installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: update once when install fails.
if ! "${as_root[@]}" apt-get install -y -q "${missing[@]}" >/dev/null; then
  "${as_root[@]}" apt-get update -q >/dev/null
  "${as_root[@]}" apt-get install -y -q "${missing[@]}" >/dev/null
fi
# Debian's postinst may start a system slapd on port 389; cf-access never uses it (the tests and
# the demo start their own on a port of their own), so it is left alone.
