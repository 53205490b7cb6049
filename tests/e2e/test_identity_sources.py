"""cf-access end to end with Okta and Entra ID as identity sources.

The real pulumi CLI runs the real program (``__main__.py``) against the local CF sandbox, with
the IdP played by the emulators in ``sandbox/idp`` (TLS on 127.0.0.1, CA via ``caBundle``).
Roles are read back through the Cloud Controller API, never from Pulumi state.

The program reads ``cf-access:identitySources`` through
``components.identity.config.parse_identity_sources``; ``cf-access:identitySource`` names the
default source.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.identity.base import read_snapshot
from components.identity.config import parse_identity_sources
from components.mappings import load_mappings
from components.plan import PlanSettings, build_plan
from sandbox.control import SandboxControl
from sandbox.idp import GraphEmulator, OktaEmulator
from sandbox.idp.common import EmulatorBase
from sandbox.server import SandboxServer
from tests.pulumi_harness import REPO, PulumiStack, new_stack

pytestmark = pytest.mark.e2e

ORIGIN = "corp-sso"
CF_SECRET = "sandbox-secret"
OKTA_TOKEN = "okta-e2e-api-token-0123456789"
ENTRA_APP = "cf-access-entra-e2e"
ENTRA_SECRET = "entra-e2e-client-secret~0123"
PROTECTED = ["(.*/)?admin(@.*)?"]
SEED: dict[str, Any] = {
    "orgs": [
        {"name": "payments", "spaces": ["dev", "prod"]},
        {"name": "platform", "spaces": ["tools", "sandbox"]},
        {"name": "data", "spaces": ["analytics"]},
    ]
}
IDP_DATA = REPO / "sandbox" / "idp" / "example.yaml"
Assignment = tuple[str, str, str]


@dataclass
class IdpFoundation:
    kind: str  # "okta" or "entra"
    stack: PulumiStack
    control: SandboxControl
    emulator: EmulatorBase
    sources: dict[str, Any]  # the identitySources object the stack holds (secrets in clear)
    mappings_dir: Path
    root: Path

    def roles(self) -> list[Assignment]:
        out = []
        for origin, username, role_type, org, space in self.control.roles():
            if username:
                out.append(
                    (
                        f"{origin}/{username.casefold()}",
                        role_type,
                        (org or "") if space is None else f"{org}/{space}",
                    )
                )
        return sorted(out)

    def expected(self) -> list[Assignment]:
        """The plan computed in-process from the same sources, mappings and emulator state."""
        sources = parse_identity_sources(self.sources, self.root)
        mappings = load_mappings(self.mappings_dir, known_sources=sources.keys())
        snapshot = read_snapshot(sources, mappings.group_refs(self.kind), self.kind)
        plan = build_plan(
            mappings,
            snapshot,
            PlanSettings(
                protected_users=tuple(PROTECTED),
                default_source=self.kind,
                source_origins={n: s.origin for n, s in sources.items()},
            ),
            today=dt.date.today(),
        )
        return sorted((key, m.role, m.scope.label) for m in plan.memberships() for key in m.members)


def _write_stack_config(stack: PulumiStack, values: dict[str, Any]) -> None:
    data = yaml.safe_load(stack.config_file.read_text(encoding="utf-8")) or {}
    data.setdefault("config", {}).update({f"cf-access:{k}": v for k, v in values.items()})
    stack.config_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@contextmanager
def idp_foundation(tmp_path: Path, kind: str) -> Iterator[IdpFoundation]:
    mappings_dir = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings_dir)
    emulator_cls = OktaEmulator if kind == "okta" else GraphEmulator
    kwargs: dict[str, Any] = {"page_size": 2}
    if kind == "okta":
        kwargs["api_tokens"] = (OKTA_TOKEN,)
    with SandboxServer.start(seed=SEED) as cf, emulator_cls.start(IDP_DATA, **kwargs) as idp:
        assert idp.ca_file is not None
        if isinstance(idp, GraphEmulator):
            idp.register_app(ENTRA_APP, secret=ENTRA_SECRET)
            source: dict[str, Any] = {
                "type": "entra",
                "tenantId": idp.tenant_id,
                "clientId": ENTRA_APP,
                "authorityHost": idp.authority,
                "graphBaseUrl": idp.graph_base_url,
                "pageSize": 2,
                "auth": {"method": "client-secret", "clientSecret": ENTRA_SECRET},
            }
            secret_path, secret = "identitySources.entra.auth.clientSecret", ENTRA_SECRET
        else:
            source = {
                "type": "okta",
                "orgUrl": idp.url,
                "pageSize": 2,
                "auth": {"method": "api-token", "apiToken": OKTA_TOKEN},
            }
            secret_path, secret = "identitySources.okta.auth.apiToken", OKTA_TOKEN
        source.update(
            caBundle=str(idp.ca_file),
            origin=ORIGIN,
            retry={"attempts": 2, "backoffSeconds": 0.1, "maxBackoffSeconds": 0.5},
            sdkMaxRetries=0,
            requestTimeoutSeconds=10,
        )
        directory = {"type": "directory", "file": str(REPO / "directory" / "example.yaml"), "origin": ORIGIN}
        sources = {kind: source, "directory": directory}

        stack = new_stack(REPO, tmp_path)
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            stack.env.pop(var, None)
        stack.config_set("cfClientSecret", CF_SECRET, secret=True)
        # Everything but the secret as plain YAML; the secret encrypted by the CLI.
        plain = {
            kind: {**source, "auth": {k: v for k, v in source["auth"].items() if k == "method"}},
            "directory": directory,
        }
        _write_stack_config(
            stack,
            {
                "cfApiUrl": cf.url,
                "mappingsDir": str(mappings_dir),
                "identitySource": kind,
                "identitySources": plain,
                "protectedUsers": PROTECTED,
                "deprovisionPolicy": "roles-only",
            },
        )
        stack.run("config", "set", "--secret", "--path", secret_path, secret)
        yield IdpFoundation(kind, stack, SandboxControl(cf.url), idp, sources, mappings_dir, REPO)


@pytest.fixture(params=["okta", "entra"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IdpFoundation]:
    with idp_foundation(tmp_path, str(request.param)) as f:
        yield f


def test_roles_follow_the_idp_and_reads_fail_closed(env: IdpFoundation) -> None:
    alice, bob, dave = (f"{ORIGIN}/{u}@corp.com" for u in ("alice", "bob", "dave"))
    secret = OKTA_TOKEN if env.kind == "okta" else ENTRA_SECRET

    # (a) preview names the IdP group as provenance; nothing is written.
    preview = env.stack.preview()
    assert f"group {env.kind}:payments-leads" in preview.output
    assert env.roles() == []
    assert secret not in preview.output

    # (b) up: CF holds exactly the plan; bob is SUSPENDED (Okta) / disabled (Entra) -> no roles.
    env.stack.up()
    assert env.roles() == env.expected()
    assert (alice, "organization_manager", "payments") in env.roles()
    assert [r for r in env.roles() if r[0] == bob] == []
    assert env.stack.preview("--expect-no-changes").ok

    # (c) a leaver in the IdP loses their roles (dave: his groups keep other active members).
    assert [r for r in env.roles() if r[0] == dave] != []
    env.emulator.data.users["00u-dave"].status = "SUSPENDED"
    env.stack.up()
    assert [r for r in env.roles() if r[0] == dave] == []
    assert env.roles() == env.expected()

    # (d) a persistent IdP failure fails the preview, naming the group; CF is untouched.
    before = env.roles()
    env.emulator.faults.add("payments-dev|00g-payments-dev", status=500, times=None)
    failed = env.stack.preview(check=False)
    assert not failed.ok
    assert f"{env.kind}:payments-dev" in failed.output and "HTTP 500" in failed.output
    assert secret not in failed.output
    failed_up = env.stack.up(check=False)
    assert not failed_up.ok
    assert env.roles() == before, "fail closed: nothing removed"
    env.emulator.faults.clear()

    # (e) a group that disappears from the IdP is an error, not an empty group.
    env.emulator.data.groups["00g-payments-oncall"].name = "payments-on-call"
    missing = env.stack.preview(check=False)
    assert not missing.ok
    assert f"{env.kind}:payments-oncall" in missing.output and "group not found" in missing.output
    assert env.roles() == before

    # (f) no secret ever reaches the state file.
    assert secret not in env.stack.export_text()
    assert secret not in str(os.environ.get("PULUMI_CONFIG", ""))
