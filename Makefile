# cf-access — the two commands a newcomer needs (README):
#   make demo   set everything up, then run the dev stack against the local sandbox
#   make test   set everything up, then lint, type-check and run every test
SHELL := /bin/bash
PYTHON ?= python3.11

.PHONY: setup system-deps build-deps venv pulumi seaweedfs demo ldap-demo test lint bench bench-ours bench-peer-setup bench-peer

setup: system-deps venv pulumi seaweedfs

# apt-get what is missing: python-ldap's build deps (build-deps, needed by venv) and slapd +
# ldap-utils for the LDAP tests and the ldap-demo stack (system-deps).
system-deps:
	@scripts/system-deps.sh all

build-deps:
	@scripts/system-deps.sh build

venv: venv/.installed
venv/.installed: requirements.txt requirements-dev.txt | build-deps
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	@test -x venv/bin/python || $(PYTHON) -m venv venv
	venv/bin/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	venv/bin/python -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $@

pulumi:
	@scripts/bootstrap-pulumi.sh

# SeaweedFS (an S3-compatible store) for the S3 state-backend tests; built once, cached.
seaweedfs:
	@scripts/bootstrap-seaweedfs.sh

demo: setup
	@scripts/demo.sh

# The ldap-demo stack: a local slapd with example users and groups, then preview (ARGS=up to apply).
ldap-demo: setup
	@scripts/ldap-demo.sh $(ARGS)

lint: venv
	venv/bin/ruff check .
	venv/bin/ruff format --check components sandbox tests bench __main__.py
	venv/bin/mypy components sandbox __main__.py tests bench
	scripts/actionlint.sh

test: setup
	@scripts/test.sh

# make bench SIZE=S|M|L: ours (README settings, then Pulumi's defaults), then the OpenTofu peer if
# built (make bench-peer-setup), one table; make bench-ours SIZE=.. BENCH_ARGS=..: bench/scale.py alone.
bench: setup
	@scripts/bench.sh $(SIZE)

bench-ours: setup
	@source scripts/env.sh && venv/bin/python -m bench.scale --size $(or $(SIZE),S) $(BENCH_ARGS)

# The benchmark's peer, OpenTofu + the official Terraform provider for Cloud Foundry (bench/peer_tofu.py;
# docs/performance.md). Not part of setup or test: builds both from Go sources into
# ~/.cache/cf-access/peer (minutes; PEER_PROVIDER_GIT = a git dir of the provider the first time).
bench-peer-setup:
	@scripts/bootstrap-peer.sh

# make bench-peer SIZE=S|M|L: the peer alone.
bench-peer: setup
	@source scripts/env.sh && venv/bin/python -m bench.peer_tofu --size $(or $(SIZE),S) $(BENCH_ARGS)
