"""Scopes as real CC and UAA enforce them (docs/permissions.md), in the sandbox and in our client.

- the read-only client (``cloud_controller.admin_read_only scim.read``) and a global auditor
  read everything; every write they try is CC's 403 ``CF-NotAuthorized`` or UAA's 403
  ``insufficient_scope``;
- a ``cloud_controller.read`` client is *filtered*, not refused: it sees no orgs;
- our client, asked to check scopes, refuses before sending the request and names the scope.
"""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from components.cloudfoundry.client import CloudFoundryClient
from components.cloudfoundry.preflight import check_scopes
from components.cloudfoundry.scopes import MissingScopeError
from components.settings import CfConnection
from sandbox.control import SandboxControl
from sandbox.server import SandboxServer
from sandbox.testing import AUDITOR, Api, error_of

pytestmark = pytest.mark.integration

READ = ("cf-access-read", "read-secret")
GLOBAL_AUDITOR = ("global-auditor", "auditor-secret")
SEED = {
    "orgs": [{"name": "payments", "spaces": ["dev"]}, {"name": "platform", "spaces": ["tools"]}],
    "users": [{"username": "alice@corp.com", "origin": "uaa"}],
    "roles": [
        {"type": "organization_user", "username": "alice@corp.com", "origin": "uaa", "org": "payments"}
    ],
}
NOT_AUTHORIZED = (403, "CF-NotAuthorized", 10003, "You are not authorized to perform the requested action")


@pytest.fixture
def seeded(sandbox: SandboxServer, ctl: SandboxControl) -> SandboxControl:
    ctl.seed(SEED)
    ctl.reset_counters()
    return ctl


def connection(url: str, client: tuple[str, str]) -> CfConnection:
    return CfConnection(url, client[0], SecretStr(client[1]), skip_tls_verify=False, concurrency=2)


@pytest.mark.parametrize("client", [READ, GLOBAL_AUDITOR], ids=["admin_read_only", "global_auditor"])
def test_global_readers_see_everything_and_write_nothing(
    sandbox: SandboxServer, seeded: SandboxControl, client: tuple[str, str]
) -> None:
    api = Api(sandbox.url, client)
    orgs = api.get("/v3/organizations").json()["resources"]
    assert sorted(o["name"] for o in orgs) == ["payments", "platform"]
    assert len(api.get("/v3/roles", include="user").json()["resources"]) == 1
    users = api.get("/v3/users").json()["resources"]
    assert [u["username"] for u in users if u["username"]] == ["alice@corp.com"]  # + the client itself

    payments = api.org_guid("payments")
    alice = api.get("/v3/users", usernames="alice@corp.com").json()["resources"][0]["guid"]
    before = seeded.state()
    assert error_of(api.org_role("organization_manager", payments, guid=alice)) == NOT_AUTHORIZED
    assert error_of(api.post("/v3/users", {"guid": "new-user"})) == NOT_AUTHORIZED
    assert error_of(api.post("/v3/organizations", {"name": "x"})) == NOT_AUTHORIZED
    role = api.get("/v3/roles").json()["resources"][0]["guid"]
    assert error_of(api.delete(f"/v3/roles/{role}")) == NOT_AUTHORIZED
    scim = api.post(
        "/uaa/Users", {"userName": "bob@corp.com", "origin": "uaa", "emails": [{"value": "bob@corp.com"}]}
    )
    assert scim.status_code == 403 and scim.json()["error"] == "insufficient_scope"
    assert seeded.state() == before, "every write was refused"


def test_cloud_controller_read_is_filtered_not_refused(
    sandbox: SandboxServer, seeded: SandboxControl
) -> None:
    """CC answers 200 with only the client's own orgs: why cf-access must check scopes."""
    api = Api(sandbox.url, AUDITOR)
    resp = api.get("/v3/organizations")
    assert resp.status_code == 200 and resp.json()["resources"] == []
    assert api.get("/v3/roles").json()["resources"] == []


def test_client_names_the_missing_read_scope_before_any_read(
    sandbox: SandboxServer, seeded: SandboxControl
) -> None:
    with CloudFoundryClient(sandbox.url, *AUDITOR, check_scopes=True) as client:
        with pytest.raises(MissingScopeError) as info:
            client.list_orgs()
        assert client.granted_scopes() == {"cloud_controller.read", "scim.read"}
    message = str(info.value)
    assert message.startswith(
        "CF client 'auditor' lacks the scope cloud_controller.admin_read_only or "
        "cloud_controller.global_auditor or cloud_controller.admin to read every org, space, user and role"
    )
    assert "its token has: cloud_controller.read scim.read" in message
    assert "auditor-secret" not in message
    assert "GET /v3/organizations" not in seeded.counters()["requests"], "refused before sending"


def test_preflight_read_and_write(sandbox: SandboxServer, seeded: SandboxControl) -> None:
    assert "cloud_controller.admin_read_only" in check_scopes(connection(sandbox.url, READ), "read")
    with pytest.raises(MissingScopeError) as info:
        check_scopes(connection(sandbox.url, READ), "write")
    assert str(info.value).startswith(
        "CF client 'cf-access-read' lacks the scope cloud_controller.admin, scim.write "
        "to change roles and users (pulumi up); nothing was changed"
    )
    with pytest.raises(
        MissingScopeError, match=re.escape("lacks the scope cloud_controller.admin_read_only or")
    ):
        check_scopes(connection(sandbox.url, AUDITOR), "read")
    granted = check_scopes(connection(sandbox.url, ("cf-access", "sandbox-secret")), "write")
    assert granted == {"cloud_controller.admin", "scim.read", "scim.write"}


def test_checked_client_refuses_writes_with_the_read_client(
    sandbox: SandboxServer, seeded: SandboxControl
) -> None:
    with CloudFoundryClient(sandbox.url, *READ, check_scopes=True) as client:
        orgs = client.list_orgs()
        with pytest.raises(
            MissingScopeError, match=re.escape("lacks the scope cloud_controller.admin, scim.write")
        ):
            client.create_user("new-user-guid")
    assert len(orgs) == 2
    assert seeded.counters()["writes"] == 0


def test_a_token_without_any_cc_read_scope_is_refused(sandbox: SandboxServer, seeded: SandboxControl) -> None:
    """check_read_permissions!: no admin, admin_read_only, global_auditor or read scope → 403."""
    seeded.seed({"clients": [{"id": "scim-only", "secret": "s", "authorities": "scim.read"}]})
    api = Api(sandbox.url, ("scim-only", "s"))
    assert error_of(api.get("/v3/organizations")) == NOT_AUTHORIZED
    assert api.get("/uaa/Users").status_code == 200
