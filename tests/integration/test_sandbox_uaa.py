"""UAA part of the sandbox: client-credentials tokens and SCIM /Users."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from sandbox.control import SandboxControl
from sandbox.server import SandboxServer
from sandbox.testing import AUDITOR, Api

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer.start() as srv:
        yield srv


@pytest.fixture
def api(server: SandboxServer) -> Iterator[Api]:
    with SandboxControl(server.url) as ctl:
        ctl.reset()
    api = Api(server.url)
    yield api
    api.close()


def _new_user(api: Api, username: str, origin: str = "okta", **extra: object) -> httpx.Response:
    return api.post(
        "/uaa/Users",
        {"userName": username, "origin": origin, "emails": [{"value": username, "primary": True}], **extra},
    )


# ---- token ---------------------------------------------------------------------------------------------
def test_token_with_basic_auth_is_jwt_with_authorities_as_scope(server: SandboxServer) -> None:
    resp = httpx.post(
        f"{server.url}/uaa/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("cf-access", "sandbox-secret"),
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 43199
    assert body["scope"] == "cloud_controller.admin scim.read scim.write"
    assert "refresh_token" not in body and body["jti"]
    header, payload, _sig = body["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"] == "HS256"
    assert claims["client_id"] == "cf-access" and "cloud_controller.admin" in claims["scope"]
    assert claims["exp"] - claims["iat"] == 43199


def test_token_with_form_credentials_and_narrowed_scope(server: SandboxServer) -> None:
    resp = httpx.post(
        f"{server.url}/uaa/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "cf-access",
            "client_secret": "sandbox-secret",
            "scope": "scim.read",
        },
    )
    assert resp.status_code == 200 and resp.json()["scope"] == "scim.read"


def test_token_bad_credentials_is_401(server: SandboxServer) -> None:
    resp = httpx.post(
        f"{server.url}/uaa/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("cf-access", "wrong"),
    )
    assert resp.status_code == 401
    assert resp.json() == {"error": "unauthorized", "error_description": "Bad credentials"}
    assert resp.headers["www-authenticate"].startswith('Basic realm="UAA/client"')


def test_token_expiry_is_configurable(server: SandboxServer) -> None:
    with SandboxControl(server.url) as ctl:
        ctl.set_config(token_validity_s=5)
        try:
            resp = httpx.post(
                f"{server.url}/uaa/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=("cf-access", "sandbox-secret"),
            )
            assert resp.json()["expires_in"] == 5
        finally:
            ctl.set_config(token_validity_s=None)


# ---- SCIM scopes ----------------------------------------------------------------------------------------
def test_scim_needs_token_and_scope(server: SandboxServer, api: Api) -> None:
    resp = httpx.get(f"{server.url}/uaa/Users")
    assert resp.status_code == 401 and resp.json()["error"] == "unauthorized"
    auditor = Api(server.url, AUDITOR)  # scim.read only
    assert auditor.get("/uaa/Users").status_code == 200
    resp = _new_user(auditor, "x@corp.com")
    assert resp.status_code == 403 and resp.json()["error"] == "insufficient_scope"
    assert api.get("/uaa/ids/Users").status_code == 403  # needs scim.userids


def test_uaa_admin_satisfies_every_scim_scope(server: SandboxServer) -> None:
    with SandboxControl(server.url) as ctl:
        ctl.seed({"clients": [{"id": "root", "secret": "r", "authorities": "uaa.admin"}]})
    root = Api(server.url, ("root", "r"))
    assert _new_user(root, "r@corp.com").status_code == 201
    assert root.get("/uaa/ids/Users").status_code == 200


# ---- SCIM create / get / put / delete --------------------------------------------------------------
def test_create_user_201_etag_and_409_with_origin_and_user_id(api: Api) -> None:
    resp = _new_user(api, "Alice@Corp.com")
    assert resp.status_code == 201 and resp.headers["etag"] == '"0"'
    user = resp.json()
    assert (user["userName"], user["origin"], user["meta"]["version"]) == ("Alice@Corp.com", "okta", 0)
    dup = _new_user(api, "alice@corp.COM", "OKTA")  # uniqueness is on lower(username), lower(origin)
    assert dup.status_code == 409
    assert dup.json() == {
        "error": "scim_resource_already_exists",
        "error_description": "Username already in use: Alice@Corp.com",
        "message": "Username already in use: Alice@Corp.com",
        "origin": "okta",
        "user_id": user["id"],
    }
    assert _new_user(api, "alice@corp.com", "ldap").status_code == 201  # other origin is fine


def test_create_user_requires_exactly_one_email(api: Api) -> None:
    resp = api.post("/uaa/Users", {"userName": "noemail", "origin": "okta"})
    assert (
        resp.status_code == 400 and resp.json()["error_description"] == "Exactly one email must be provided."
    )


def test_get_user_etag_and_404(api: Api) -> None:
    uid = _new_user(api, "g@corp.com").json()["id"]
    resp = api.get(f"/uaa/Users/{uid}")
    assert resp.status_code == 200 and resp.headers["etag"] == '"0"'
    missing = api.get("/uaa/Users/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "scim_resource_not_found"
    assert missing.json()["error_description"] == "User nope does not exist"


def test_put_requires_if_match_and_rejects_stale_version(api: Api) -> None:
    user = _new_user(api, "p@corp.com").json()
    body = {
        "userName": "p2@corp.com",
        "origin": "okta",
        "emails": [{"value": "p2@corp.com", "primary": True}],
    }
    missing = api.put(f"/uaa/Users/{user['id']}", body)
    assert missing.status_code == 400 and missing.json()["error_description"] == "Missing If-Match for PUT"
    ok = api.put(f"/uaa/Users/{user['id']}", body, headers={"If-Match": '"0"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"1"' and ok.json()["userName"] == "p2@corp.com"
    stale = api.put(f"/uaa/Users/{user['id']}", body, headers={"If-Match": '"0"'})
    assert stale.status_code == 409 and stale.json()["error"] == "scim_resource_conflict"
    star = api.put(f"/uaa/Users/{user['id']}", body, headers={"If-Match": "*"})
    assert star.status_code == 200 and star.headers["etag"] == '"2"'


def test_delete_user_returns_user_json(api: Api) -> None:
    user = _new_user(api, "d@corp.com").json()
    resp = api.delete(f"/uaa/Users/{user['id']}", headers={"If-Match": "*"})
    assert resp.status_code == 200 and resp.json()["id"] == user["id"]
    assert api.get(f"/uaa/Users/{user['id']}").status_code == 404


# ---- SCIM list -------------------------------------------------------------------------------------------
def test_filter_operators_and_case_insensitivity(api: Api) -> None:
    for name, origin in [
        ("ann@corp.com", "okta"),
        ("bob@corp.com", "okta"),
        ("ann@corp.com", "ldap"),
        ("carl@other.org", "uaa"),
    ]:
        assert _new_user(api, name, origin).status_code == 201

    def names(flt: str) -> list[tuple[str, str]]:
        resp = api.get("/uaa/Users", filter=flt)
        assert resp.status_code == 200, resp.text
        return sorted((u["userName"], u["origin"]) for u in resp.json()["resources"])

    assert names('userName eq "ANN@corp.com" and origin eq "okta"') == [("ann@corp.com", "okta")]
    assert names('username eq "ann@corp.com"') == [("ann@corp.com", "ldap"), ("ann@corp.com", "okta")]
    assert names('USERNAME co "CORP"') == [
        ("ann@corp.com", "ldap"),
        ("ann@corp.com", "okta"),
        ("bob@corp.com", "okta"),
    ]
    assert names('userName sw "b" or origin eq "UAA"') == [
        ("bob@corp.com", "okta"),
        ("carl@other.org", "uaa"),
    ]
    assert names('(userName sw "a" or userName sw "b") and origin eq "okta"') == [
        ("ann@corp.com", "okta"),
        ("bob@corp.com", "okta"),
    ]
    assert len(names("id pr")) == 4
    assert names('active eq true and origin eq "ldap"') == [("ann@corp.com", "ldap")]
    bad = api.get("/uaa/Users", filter="userName eq")
    assert (
        bad.status_code == 400
        and bad.json()["error_description"] == "Invalid filter expression: [userName eq]"
    )


def test_attributes_and_paging(api: Api) -> None:
    for i in range(7):
        _new_user(api, f"u{i}@corp.com")
    body = api.get("/uaa/Users", attributes="id,userName,origin", count=3, startIndex=4).json()
    assert (body["startIndex"], body["itemsPerPage"], body["totalResults"]) == (4, 3, 7)
    assert [u["userName"] for u in body["resources"]] == ["u3@corp.com", "u4@corp.com", "u5@corp.com"]
    assert set(body["resources"][0]) == {"id", "userName", "origin"}
    last = api.get("/uaa/Users", count=3, startIndex=7).json()
    assert len(last["resources"]) == 1 and last["itemsPerPage"] == 3  # echoes count, not returned
    default = api.get("/uaa/Users").json()
    assert default["itemsPerPage"] == 100 and default["schemas"] == ["urn:scim:schemas:core:1.0"]
    assert api.get("/uaa/Users", count=100000).json()["itemsPerPage"] == 500


def test_ids_users_endpoint(server: SandboxServer, api: Api) -> None:
    with SandboxControl(server.url) as ctl:
        ctl.seed({"clients": [{"id": "cc", "secret": "c", "authorities": "scim.userids"}]})
    uid = _new_user(api, "ids@corp.com").json()["id"]
    cc = Api(server.url, ("cc", "c"))
    body = cc.get("/uaa/ids/Users", filter=f'id eq "{uid}"', includeInactive="true").json()
    assert body["resources"] == [{"id": uid, "userName": "ids@corp.com", "origin": "okta"}]


def test_sort_by_username_descending(api: Api) -> None:
    for name in ("b@x", "c@x", "a@x"):
        _new_user(api, name)
    body = api.get("/uaa/Users", sortBy="userName", sortOrder="descending", attributes="userName").json()
    assert [u["userName"] for u in body["resources"]] == ["c@x", "b@x", "a@x"]
