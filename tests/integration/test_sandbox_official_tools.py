"""The sandbox as official tools (``cf``, ``uaac``) see it: client details, password login,
and the reads ``cf`` makes around spaces and orgs (empty lists with CC's envelope)."""

from __future__ import annotations

import httpx
import pytest

from sandbox.control import SandboxControl
from sandbox.server import SandboxServer
from sandbox.testing import ADMIN, Api, error_of

pytestmark = pytest.mark.integration

SEED = {
    "orgs": [{"name": "payments", "spaces": ["dev"]}],
    "clients": [{"id": "admin-cli", "secret": "s3", "authorities": "clients.read"}],
}
CF_CLI = ("cf", "")


@pytest.fixture
def seeded(sandbox: SandboxServer, ctl: SandboxControl) -> SandboxControl:
    ctl.seed(SEED)
    return ctl


def password_login(url: str, username: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{url}/uaa/oauth/token",
        data={"grant_type": "password", "username": username, "password": password},
        auth=CF_CLI,
    )


# ---- GET /uaa/oauth/clients/:id --------------------------------------------------------------------
def test_client_details_need_clients_read(sandbox: SandboxServer, seeded: SandboxControl) -> None:
    reader = Api(sandbox.url, ("admin-cli", "s3"))
    resp = reader.get("/uaa/oauth/clients/cf-access-read")
    assert resp.status_code == 200
    body = resp.json()
    assert body["client_id"] == "cf-access-read"
    assert body["authorities"] == ["cloud_controller.admin_read_only", "scim.read"]
    assert "client_secret" not in body and "read-secret" not in resp.text
    missing = reader.get("/uaa/oauth/clients/nobody")
    assert (missing.status_code, missing.content) == (404, b"")

    admin = Api(sandbox.url, ADMIN)  # cloud_controller.admin scim.read scim.write: no clients.read
    denied = admin.get("/uaa/oauth/clients/cf-access-read")
    assert denied.status_code == 403 and denied.json()["error"] == "insufficient_scope"
    assert httpx.get(f"{sandbox.url}/uaa/oauth/clients/cf-access-read").status_code == 401


# ---- password grant + /login -----------------------------------------------------------------------
def test_login_info_has_the_prompts_cf_asks_for(sandbox: SandboxServer, seeded: SandboxControl) -> None:
    resp = httpx.get(f"{sandbox.url}/uaa/login", headers={"Accept": "application/json"})
    assert resp.status_code == 200
    assert set(resp.json()["prompts"]) == {"username", "password"}
    assert resp.json()["links"]["uaa"] == f"{sandbox.url}/uaa"


def test_password_login_gives_a_read_only_user_token(sandbox: SandboxServer, seeded: SandboxControl) -> None:
    resp = password_login(sandbox.url, "reader", "reader-password")
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer" and body["refresh_token"]
    assert set(body["scope"].split()) == {
        "openid",
        "uaa.user",
        "cloud_controller.read",
        "cloud_controller.admin_read_only",
        "scim.read",
    }
    user = Api(sandbox.url, token=body["access_token"])
    assert [o["name"] for o in user.get("/v3/organizations").json()["resources"]] == ["payments"]
    assert error_of(user.post("/v3/organizations", {"name": "mine"})) == (
        403,
        "CF-NotAuthorized",
        10003,
        "You are not authorized to perform the requested action",
    )
    # CC sees a user (the UAA user's id), not a client
    me = Api(sandbox.url, ADMIN).get("/uaa/Users", filter='userName eq "reader"').json()["resources"][0]
    assert me["origin"] == "uaa"
    assert me["id"] in {u["guid"] for u in Api(sandbox.url, ADMIN).get("/v3/users").json()["resources"]}

    refreshed = httpx.post(
        f"{sandbox.url}/uaa/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        auth=CF_CLI,
    )
    assert refreshed.status_code == 200 and refreshed.json()["access_token"] != body["access_token"]
    as_bearer = httpx.get(
        f"{sandbox.url}/v3/organizations", headers={"Authorization": f"bearer {body['refresh_token']}"}
    )
    assert as_bearer.status_code == 401, "a refresh token is no access token"


def test_password_login_refuses_bad_credentials(sandbox: SandboxServer, seeded: SandboxControl) -> None:
    resp = password_login(sandbox.url, "reader", "wrong")
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"
    assert password_login(sandbox.url, "nobody", "reader-password").status_code == 401


# ---- reads cf makes --------------------------------------------------------------------------------
def test_space_ssh_feature(sandbox: SandboxServer, seeded: SandboxControl) -> None:
    api = Api(sandbox.url, ("cf-access-read", "read-secret"))
    dev = api.space_guid("payments", "dev")
    resp = api.get(f"/v3/spaces/{dev}/features/ssh")
    assert resp.json() == {
        "name": "ssh",
        "description": "Enable SSHing into apps in the space.",
        "enabled": True,
    }
    assert error_of(api.get(f"/v3/spaces/{dev}/features/bogus"))[:3] == (404, "CF-ResourceNotFound", 10010)
    assert error_of(api.get("/v3/spaces/no-such-space/features/ssh"))[3] == "Space not found"


def test_apps_and_org_domains_are_empty_lists(sandbox: SandboxServer, seeded: SandboxControl) -> None:
    api = Api(sandbox.url, ("cf-access-read", "read-secret"))
    dev = api.space_guid("payments", "dev")
    apps = api.get("/v3/apps", space_guids=dev, per_page="50").json()
    assert apps["resources"] == []
    assert apps["pagination"]["total_results"] == 0 and apps["pagination"]["total_pages"] == 1
    assert (
        apps["pagination"]["first"]["href"] == f"{sandbox.url}/v3/apps?page=1&per_page=50&space_guids={dev}"
    )
    assert apps["pagination"]["next"] is None
    assert error_of(api.get("/v3/apps", bogus="1"))[:2] == (400, "CF-BadQueryParameter")

    org = api.org_guid("payments")
    domains = api.get(f"/v3/organizations/{org}/domains").json()
    assert domains["resources"] == [] and domains["pagination"]["total_results"] == 0
    assert domains["pagination"]["first"]["href"].startswith(f"{sandbox.url}/v3/organizations/{org}/domains?")
    assert error_of(api.get("/v3/organizations/nope/domains"))[3] == "Organization not found"
