"""Two identity sources with their own origins in one stack, every secret kept
out of output and state (with --debug), and time-bound grants — all through
the real CLI against the CF sandbox and the IdP emulators."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.control import SandboxControl
from sandbox.idp import GraphEmulator, OktaEmulator
from sandbox.idp.tls import new_rsa_key, private_pem, public_pem
from sandbox.server import SandboxServer
from tests.e2e.foundation import SEED, foundation
from tests.pulumi_harness import REPO, new_stack

pytestmark = pytest.mark.e2e

CF_SECRET = "sandbox-secret"
ENTRA_APP = "cf-access-multi-e2e"
ENTRA_SECRET = "entra-multi-secret~4242"
OKTA_CLIENT = "0oa-cf-access-multi"
IDP_DATA = REPO / "sandbox" / "idp" / "example.yaml"


def _write_config(config_file: Path, values: dict[str, Any]) -> None:
    data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    data.setdefault("config", {}).update({f"cf-access:{k}": v for k, v in values.items()})
    config_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_two_sources_two_origins_and_no_secret_anywhere(tmp_path: Path) -> None:
    key = new_rsa_key()
    okta_private_key = private_pem(key)
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "payments.yaml").write_text(
        "org: payments\nownership: authoritative\n"
        "org_roles:\n  organization_manager: {groups: [okta:payments-leads]}\n"
        "spaces:\n  dev:\n    space_developer: {groups: [okta:payments-dev, entra:platform-engineers]}\n",
        encoding="utf-8",
    )
    with (
        SandboxServer.start(seed=SEED) as cf,
        OktaEmulator.start(IDP_DATA, page_size=2) as okta,
        GraphEmulator.start(IDP_DATA, page_size=2) as graph,
    ):
        okta.register_client(OKTA_CLIENT, public_pem(key))
        graph.register_app(ENTRA_APP, secret=ENTRA_SECRET)
        common = {
            "retry": {"attempts": 2, "backoffSeconds": 0.1, "maxBackoffSeconds": 0.5},
            "sdkMaxRetries": 0,
        }
        sources = {
            "okta": {
                "type": "okta",
                "orgUrl": okta.url,
                "origin": "okta",
                "caBundle": str(okta.ca_file),
                "auth": {"method": "private-key", "clientId": OKTA_CLIENT},
                **common,
            },
            "entra": {
                "type": "entra",
                "tenantId": graph.tenant_id,
                "clientId": ENTRA_APP,
                "authorityHost": graph.authority,
                "graphBaseUrl": graph.graph_base_url,
                "origin": "azuread",
                "caBundle": str(graph.ca_file),
                "auth": {"method": "client-secret"},
                **common,
            },
        }
        stack = new_stack(REPO, tmp_path)
        _write_config(
            stack.config_file,
            {
                "cfApiUrl": cf.url,
                "mappingsDir": str(mappings),
                "identitySource": "okta",
                "identitySources": sources,
                "protectedUsers": ["(.*/)?admin(@.*)?"],
            },
        )
        stack.config_set("cfClientSecret", CF_SECRET, secret=True)
        stack.config_set("identitySources.okta.auth.privateKey", okta_private_key, secret=True, path=True)
        stack.config_set("identitySources.entra.auth.clientSecret", ENTRA_SECRET, secret=True, path=True)

        preview = stack.preview("--debug")
        assert re.search(r'okta/alice@corp.com\s*: "group okta:payments-leads', preview.output)
        assert re.search(r'azuread/frank@corp.com\s*: "group entra:platform-engineers', preview.output)
        stack.up("--debug")
        holders = {(o, u, t, org, s) for o, u, t, org, s in SandboxControl(cf.url).roles() if u}
        assert ("okta", "alice@corp.com", "organization_manager", "payments", None) in holders
        assert ("okta", "carol@corp.com", "space_developer", "payments", "dev") in holders
        assert ("azuread", "frank@corp.com", "space_developer", "payments", "dev") in holders
        assert ("azuread", "frank@corp.com", "organization_user", "payments", None) in holders
        assert not any(o not in ("okta", "azuread") for o, *_ in holders), holders
        stack.preview("--refresh", "--expect-no-changes", "--debug")

        exported = stack.export_text()
        secret_lines = [line for line in okta_private_key.splitlines() if len(line) > 20]
        for secret in [CF_SECRET, ENTRA_SECRET, *secret_lines]:
            assert secret not in exported
            for result in stack.history:
                assert secret not in result.output, f"{secret[:8]}… in {' '.join(result.args)}"


def test_time_bound_grants_expire_and_warn(tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    with foundation(tmp_path) as env:
        soon = (today + dt.timedelta(days=3)).isoformat()
        later = (today + dt.timedelta(days=30)).isoformat()
        (env.mappings_dir / "data.yaml").write_text(
            "org: data\nspaces:\n  analytics:\n"
            f"    space_developer: {{users: [{{user: erin@corp.com, until: {later}}}]}}\n"
            f"    space_auditor: {{users: [{{user: judy@corp.com, until: {soon}}}]}}\n",
            encoding="utf-8",
        )
        preview = env.stack.preview()
        assert f"expires in 3 days ({soon})" in preview.output
        env.stack.up()
        assert ("corp-sso/erin@corp.com", "space_developer", "data/analytics") in env.roles()

        # Erin's grant ends yesterday: the next up removes it.
        expired = (today - dt.timedelta(days=1)).isoformat()
        data_yaml = (env.mappings_dir / "data.yaml").read_text(encoding="utf-8").replace(later, expired)
        (env.mappings_dir / "data.yaml").write_text(data_yaml, encoding="utf-8")
        diff = env.stack.preview().output
        assert re.search(r"^\s*- corp-sso/erin@corp.com\s*:", diff, flags=re.MULTILINE)
        env.stack.up()
        assert [r for r in env.roles() if r[0] == "corp-sso/erin@corp.com" and r[2].startswith("data")] == []
        assert ("corp-sso/judy@corp.com", "space_auditor", "data/analytics") in env.roles()
