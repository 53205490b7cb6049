"""The program's bulk read of current access (components/current.py) against the sandbox.

Two read shapes, one answer: when the mappings cover most orgs of the foundation the
read lists everything unfiltered; when they cover few, it filters by org and space guid.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from components.current import read_current_access
from components.settings import CfConnection
from sandbox.control import SandboxControl
from sandbox.server import SandboxServer

pytestmark = pytest.mark.integration

ORIGIN = "corp-sso"


def seed(ctl: SandboxControl, n_orgs: int) -> None:
    orgs = [{"name": f"org{i}", "spaces": ["dev", "prod"]} for i in range(n_orgs)]
    roles: list[dict[str, Any]] = []
    for i in range(n_orgs):
        user = {"username": f"u{i}@corp.com", "origin": ORIGIN, "org": f"org{i}"}
        roles.append({"type": "organization_user", **user})
        roles.append({"type": "space_developer", "space": "dev", **user})
        # a UAA client holding a role: no username, never a member key
        roles.append({"type": "organization_auditor", "user_guid": "ci-client", "org": f"org{i}"})
    ctl.seed({"orgs": orgs, "roles": roles})


def connection(url: str) -> CfConnection:
    return CfConnection(url, "cf-access", SecretStr("sandbox-secret"), skip_tls_verify=False, concurrency=4)


def role_list_calls(ctl: SandboxControl) -> dict[str, int]:
    requests: dict[str, int] = ctl.counters()["requests"]
    return {k: v for k, v in requests.items() if k.startswith("GET /v3/")}


@pytest.mark.parametrize("mapped", [1, 3, 4])
def test_same_holders_whichever_read_shape(sandbox: SandboxServer, ctl: SandboxControl, mapped: int) -> None:
    seed(ctl, 4)
    ctl.reset_counters()
    wanted = [f"org{i}" for i in range(mapped)] + ["not-in-cf"]
    current, _ = read_current_access(connection(sandbox.url), wanted)

    assert current.scopes == {f"org{i}" for i in range(mapped)} | {
        f"org{i}/{s}" for i in range(mapped) for s in ("dev", "prod")
    }
    expected = {}
    for i in range(mapped):
        expected[(f"org{i}", "organization_user")] = frozenset({f"{ORIGIN}/u{i}@corp.com"})
        expected[(f"org{i}/dev", "space_developer")] = frozenset({f"{ORIGIN}/u{i}@corp.com"})
    assert current.holders == expected, "only mapped orgs, only users with a username"

    calls = role_list_calls(ctl)
    if 2 * mapped >= 4:  # most of the foundation: unfiltered lists, one page each here
        assert calls == {"GET /v3/organizations": 1, "GET /v3/spaces": 1, "GET /v3/roles": 1}
    else:  # few orgs: org and space roles by guid filter
        assert calls == {"GET /v3/organizations": 1, "GET /v3/spaces": 1, "GET /v3/roles": 2}


def test_no_mapped_org_in_cf_reads_only_the_org_list(sandbox: SandboxServer, ctl: SandboxControl) -> None:
    seed(ctl, 2)
    ctl.reset_counters()
    current, _ = read_current_access(connection(sandbox.url), ["elsewhere"])
    assert current.holders == {} and current.scopes == frozenset()
    assert role_list_calls(ctl) == {"GET /v3/organizations": 1}
