#!/usr/bin/env bash
# Debian packages the LDAP identity source needs (make setup runs this before pip):
#   slapd + ldap-utils              the real OpenLDAP server the tests and the ldap-demo stack start
#   libldap2-dev libsasl2-dev gcc   to build python-ldap (PyPI ships it as source only)
# Installs only what is missing, with apt-get, when run as root (CI, fresh machines);
# otherwise says what to install and fails.
set -euo pipefail

missing=()
have_slapd() { command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ]; }
have_slapd || missing+=(slapd)
command -v ldapadd >/dev/null 2>&1 || missing+=(ldap-utils)
[ -f /usr/include/ldap.h ] || missing+=(libldap2-dev)
[ -f /usr/include/sasl/sasl.h ] || missing+=(libsasl2-dev)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${missing[*]}" >&2
  echo "install them (Debian/Ubuntu: sudo apt-get install -y ${missing[*]}) and run make setup again" >&2
  exit 1
fi
echo "installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
# The package lists may be missing or stale on a fresh machine: update once when install fails.
if ! apt-get install -y -q "${missing[@]}" >/dev/null; then
  apt-get update -q >/dev/null
  apt-get install -y -q "${missing[@]}" >/dev/null
fi
# Debian's postinst may start a system slapd on port 389; cf-access never uses it (the tests and
# the demo start their own on a port of their own), so it is left alone.
