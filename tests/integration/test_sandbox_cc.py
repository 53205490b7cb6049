"""Cloud Controller V3 rules of the sandbox, checked against reference/cf-api.md."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from sandbox.control import SandboxControl
from sandbox.server import SandboxServer
from sandbox.testing import AUDITOR, Api, error_of, get_token

pytestmark = pytest.mark.integration

SPACE_USER_MSG = (
    "Users cannot be assigned roles in a space if they do not have a role in that space's organization."
)
SEED = {
    "orgs": [
        {"name": "payments", "spaces": ["dev", "prod"]},
        {"name": "platform", "spaces": ["tools", "sandbox"]},
        {"name": "data", "spaces": ["analytics"]},
    ],
    "users": [{"username": "alice@corp.com", "origin": "okta"}, {"username": "bob", "origin": "uaa"}],
}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer.start() as srv:
        yield srv


@pytest.fixture
def ctl(server: SandboxServer) -> Iterator[SandboxControl]:
    with SandboxControl(server.url) as ctl:
        ctl.reset()
        ctl.set_config(job_delay_ms=20, job_polls=0)
        ctl.seed(SEED)
        yield ctl


@pytest.fixture
def api(server: SandboxServer, ctl: SandboxControl) -> Iterator[Api]:
    api = Api(server.url)
    yield api
    api.close()


def _user_guid(api: Api, username: str) -> str:
    guid: str = api.get("/v3/users", usernames=username).json()["resources"][0]["guid"]
    return guid


# ---- root / info ---------------------------------------------------------------------------------
def test_root_links_point_to_uaa_on_same_port(server: SandboxServer) -> None:
    body = httpx.get(f"{server.url}/").json()
    assert body["links"]["uaa"]["href"] == f"{server.url}/uaa"
    assert body["links"]["login"]["href"] == f"{server.url}/uaa"
    assert body["links"]["cloud_controller_v3"]["href"] == f"{server.url}/v3"
    assert httpx.get(f"{server.url}/v3").json()["links"]["roles"]["href"] == f"{server.url}/v3/roles"
    assert httpx.get(f"{server.url}/v3").headers["x-vcap-request-id"]
    head = httpx.head(f"{server.url}/v3/info")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    info = httpx.get(f"{server.url}/v3/info").json()
    assert "login" not in info["links"] and "rate_limits" in info


# ---- auth ---------------------------------------------------------------------------------------------
def test_no_token_is_401_not_authenticated(server: SandboxServer) -> None:
    resp = httpx.get(f"{server.url}/v3/roles")
    assert error_of(resp) == (401, "CF-NotAuthenticated", 10002, "Authentication error")


def test_bad_token_is_401_invalid_auth_token(server: SandboxServer) -> None:
    resp = httpx.get(f"{server.url}/v3/roles", headers={"Authorization": "bearer not-a-jwt"})
    assert error_of(resp) == (401, "CF-InvalidAuthToken", 1000, "Invalid Auth Token")


def test_expired_token_is_401_invalid_auth_token(server: SandboxServer, ctl: SandboxControl) -> None:
    ctl.seed(
        {
            "clients": [
                {
                    "id": "short",
                    "secret": "s",
                    "authorities": "cloud_controller.admin",
                    "access_token_validity": 2,
                }
            ]
        }
    )
    token_resp = httpx.post(
        f"{server.url}/uaa/oauth/token", data={"grant_type": "client_credentials"}, auth=("short", "s")
    )
    assert token_resp.json()["expires_in"] == 2
    headers = {"Authorization": f"bearer {token_resp.json()['access_token']}"}
    assert httpx.get(f"{server.url}/v3/roles", headers=headers).status_code == 200
    time.sleep(3.1)  # exp has whole-second precision
    resp = httpx.get(f"{server.url}/v3/roles", headers=headers)
    assert error_of(resp) == (401, "CF-InvalidAuthToken", 1000, "Invalid Auth Token")


def test_read_only_client_gets_403_on_write(server: SandboxServer, api: Api) -> None:
    auditor = Api(server.url, AUDITOR)
    assert auditor.get("/v3/roles").status_code == 200
    resp = auditor.org_role("organization_user", api.org_guid("payments"), guid="x")
    assert error_of(resp) == (
        403,
        "CF-NotAuthorized",
        10003,
        "You are not authorized to perform the requested action",
    )


def test_token_without_cc_scope_gets_403_on_read(server: SandboxServer, ctl: SandboxControl) -> None:
    ctl.seed({"clients": [{"id": "scimonly", "secret": "s", "authorities": "scim.read"}]})
    api = Api(server.url, ("scimonly", "s"))
    assert error_of(api.get("/v3/organizations"))[:3] == (403, "CF-NotAuthorized", 10003)


def test_client_credentials_caller_becomes_cc_user(api: Api) -> None:
    me = api.get("/v3/users/cf-access").json()
    assert (me["username"], me["origin"], me["presentation_name"]) == (None, None, "cf-access")


def test_unknown_route_is_cf_not_found(api: Api) -> None:
    assert error_of(api.get("/v3/nothing-here")) == (404, "CF-NotFound", 10000, "Unknown request")


def test_malformed_json_is_message_parse_error(api: Api) -> None:
    resp = api.http.post("/v3/roles", content=b"{not json", headers={"Content-Type": "application/json"})
    assert error_of(resp) == (
        400,
        "CF-MessageParseError",
        1001,
        "Request invalid due to parse error: invalid request body",
    )


# ---- orgs / spaces ---------------------------------------------------------------------------------------
def test_orgs_filter_and_order_by_name(api: Api) -> None:
    body = api.get("/v3/organizations", order_by="-name").json()
    assert [o["name"] for o in body["resources"]] == ["platform", "payments", "data"]
    body = api.get("/v3/organizations", names="data,payments").json()
    assert sorted(o["name"] for o in body["resources"]) == ["data", "payments"]
    guid = body["resources"][0]["guid"]
    assert api.get("/v3/organizations", guids=guid).json()["pagination"]["total_results"] == 1
    assert api.get(f"/v3/organizations/{guid}").json()["guid"] == guid
    assert error_of(api.get("/v3/organizations/nope")) == (
        404,
        "CF-ResourceNotFound",
        10010,
        "Organization not found",
    )


def test_spaces_filter_by_org_and_name(api: Api) -> None:
    org = api.org_guid("payments")
    body = api.get("/v3/spaces", organization_guids=org, order_by="name").json()
    assert [s["name"] for s in body["resources"]] == ["dev", "prod"]
    assert body["resources"][0]["relationships"]["organization"]["data"]["guid"] == org
    guid = api.space_guid("payments", "dev")
    assert api.get(f"/v3/spaces/{guid}").json()["name"] == "dev"
    assert error_of(api.get("/v3/spaces/nope")) == (404, "CF-ResourceNotFound", 10010, "Space not found")


def test_orgs_and_spaces_invalid_params_are_400_bad_query_parameter(api: Api) -> None:
    resp = api.get("/v3/organizations", bogus="1")
    assert error_of(resp) == (
        400,
        "CF-BadQueryParameter",
        10005,
        "The query parameter is invalid: Unknown query parameter(s): 'bogus'. Valid parameters are: 'page', "
        "'per_page', 'order_by', 'created_ats', 'updated_ats', 'guids', 'names', 'isolation_segment_guid', "
        "'label_selector'",
    )
    resp = api.get("/v3/spaces", per_page="5001")
    assert error_of(resp) == (
        400,
        "CF-BadQueryParameter",
        10005,
        "The query parameter is invalid: Per page must be between 1 and 5000",
    )


def test_create_org_and_space_through_api(api: Api) -> None:
    org = api.post("/v3/organizations", {"name": "newco"})
    assert org.status_code == 201
    space = api.post(
        "/v3/spaces",
        {"name": "s1", "relationships": {"organization": {"data": {"guid": org.json()["guid"]}}}},
    )
    assert space.status_code == 201 and space.json()["name"] == "s1"
    dup = api.post("/v3/organizations", {"name": "newco"})
    assert error_of(dup) == (422, "CF-UnprocessableEntity", 10008, "Organization 'newco' already exists.")


# ---- roles: create rules -----------------------------------------------------------------------
def test_space_role_requires_organization_user(api: Api) -> None:
    alice = _user_guid(api, "alice@corp.com")
    space = api.space_guid("payments", "dev")
    resp = api.space_role("space_developer", space, guid=alice)
    assert error_of(resp) == (422, "CF-UnprocessableEntity", 10008, SPACE_USER_MSG)
    # organization_manager alone does not satisfy the rule
    assert api.org_role("organization_manager", api.org_guid("payments"), guid=alice).status_code == 201
    assert error_of(api.space_role("space_developer", space, guid=alice))[3] == SPACE_USER_MSG
    assert api.org_role("organization_user", api.org_guid("payments"), guid=alice).status_code == 201
    created = api.space_role("space_developer", space, guid=alice)
    assert created.status_code == 201
    role = created.json()
    assert role["relationships"]["organization"]["data"] is None
    assert role["relationships"]["space"]["data"]["guid"] == space
    assert "space" in role["links"] and "organization" not in role["links"]


def test_duplicate_org_role_is_422_with_presentation_name(api: Api) -> None:
    org = api.org_guid("payments")
    alice = _user_guid(api, "alice@corp.com")
    assert api.org_role("organization_auditor", org, guid=alice).status_code == 201
    resp = api.org_role("organization_auditor", org, guid=alice)
    assert error_of(resp) == (
        422,
        "CF-UnprocessableEntity",
        10008,
        "User 'alice@corp.com' already has 'organization_auditor' role in organization 'payments'.",
    )


def test_duplicate_space_role_is_422(api: Api) -> None:
    org, space = api.org_guid("payments"), api.space_guid("payments", "prod")
    api.org_role("organization_user", org, username="alice@corp.com", origin="okta")
    assert api.space_role("space_auditor", space, username="alice@corp.com", origin="okta").status_code == 201
    resp = api.space_role("space_auditor", space, username="alice@corp.com", origin="okta")
    assert error_of(resp) == (
        422,
        "CF-UnprocessableEntity",
        10008,
        "User 'alice@corp.com' already has 'space_auditor' role in space 'prod'.",
    )


def test_duplicate_for_user_unknown_to_uaa_uses_guid(api: Api) -> None:
    org = api.org_guid("data")
    assert api.org_role("organization_user", org, guid="ghost-guid").status_code == 201
    resp = api.org_role("organization_user", org, guid="ghost-guid")
    assert (
        error_of(resp)[3] == "User 'ghost-guid' already has 'organization_user' role in organization 'data'."
    )


def test_org_role_for_unknown_guid_creates_cc_user(api: Api) -> None:
    assert error_of(api.get("/v3/users/brand-new"))[:3] == (404, "CF-ResourceNotFound", 10010)
    assert api.org_role("organization_manager", api.org_guid("payments"), guid="brand-new").status_code == 201
    user = api.get("/v3/users/brand-new").json()
    assert (user["username"], user["presentation_name"]) == (None, "brand-new")


def test_org_role_by_username_and_origin_creates_shadow_user(api: Api) -> None:
    resp = api.org_role(
        "organization_user", api.org_guid("payments"), username="new.hire@corp.com", origin="okta"
    )
    assert resp.status_code == 201
    guid = resp.json()["relationships"]["user"]["data"]["guid"]
    uaa = api.get(f"/uaa/Users/{guid}")
    assert uaa.status_code == 200 and uaa.json()["origin"] == "okta"
    assert uaa.json()["emails"] == [{"value": "new.hire@corp.com", "primary": True}]
    assert api.get(f"/v3/users/{guid}").json()["username"] == "new.hire@corp.com"


def test_without_shadow_user_creation_org_role_needs_existing_user(api: Api, ctl: SandboxControl) -> None:
    ctl.set_config(allow_user_creation_by_org_manager=False)
    try:
        resp = api.org_role(
            "organization_user", api.org_guid("payments"), username="x@corp.com", origin="okta"
        )
    finally:
        ctl.set_config(allow_user_creation_by_org_manager=True)
    assert error_of(resp) == (
        422,
        "CF-UnprocessableEntity",
        10008,
        "No user exists with the username 'x@corp.com' and origin 'okta'.",
    )


def test_org_role_by_username_in_uaa_origin_needs_existing_user(api: Api) -> None:
    resp = api.org_role("organization_user", api.org_guid("payments"), username="nobody", origin="uaa")
    assert error_of(resp) == (
        422,
        "CF-UnprocessableEntity",
        10008,
        "No user exists with the username 'nobody' and origin 'uaa'.",
    )
    resp = api.org_role("organization_user", api.org_guid("payments"), username="nobody")
    assert error_of(resp)[3] == "No user exists with the username 'nobody'."


def test_space_role_by_guid_requires_existing_cc_user(api: Api) -> None:
    resp = api.space_role("space_developer", api.space_guid("payments", "dev"), guid="not-a-cc-user")
    assert error_of(resp) == (422, "CF-UnprocessableEntity", 10008, SPACE_USER_MSG)
    resp = api.space_role(
        "space_developer", api.space_guid("payments", "dev"), username="ghost", origin="okta"
    )
    assert error_of(resp)[3] == SPACE_USER_MSG


def test_role_create_validation_messages(api: Api) -> None:
    org = api.org_guid("payments")
    space = api.space_guid("payments", "dev")
    resp = api.post(
        "/v3/roles",
        {
            "type": "organization_user",
            "relationships": {"user": {"data": {"guid": "u"}}, "space": {"data": {"guid": space}}},
        },
    )
    assert error_of(resp) == (
        422,
        "CF-UnprocessableEntity",
        10008,
        "Relationships Space cannot be provided with the organization role type: 'organization_user'.",
    )
    resp = api.post(
        "/v3/roles",
        {
            "type": "boss",
            "relationships": {"user": {"data": {"guid": "u"}}, "organization": {"data": {"guid": org}}},
        },
    )
    assert error_of(resp)[3] == (
        'Type must be one of the allowed types ["organization_auditor", "organization_manager", '
        '"organization_billing_manager", "organization_user", "space_auditor", "space_manager", '
        '"space_developer", "space_supporter"]'
    )
    resp = api.post(
        "/v3/roles",
        {
            "type": "organization_user",
            "relationships": {
                "user": {"data": {"guid": "u", "username": "x"}},
                "organization": {"data": {"guid": org}},
            },
        },
    )
    assert error_of(resp)[3] == "Relationships Username cannot be specified when identifying user by guid"
    resp = api.post(
        "/v3/roles", {"type": "organization_user", "relationships": {"organization": {"data": {"guid": org}}}}
    )
    assert error_of(resp)[3] == (
        "Relationships User can't be blank, Relationships User must have a username or guid specified"
    )
    resp = api.org_role("organization_user", "no-such-org", guid="u")
    assert (
        error_of(resp)[3]
        == "Invalid organization. Ensure that the organization exists and you have access to it."
    )
    resp = api.space_role("space_developer", "no-such-space", guid="u")
    assert error_of(resp)[3] == "Invalid space. Ensure that the space exists and you have access to it."


# ---- roles: delete and jobs --------------------------------------------------------------------
def test_delete_role_is_async_job_and_role_visible_until_complete(api: Api, ctl: SandboxControl) -> None:
    ctl.set_config(job_polls=2)  # PROCESSING on the first poll, COMPLETE on the second
    role = api.org_role("organization_auditor", api.org_guid("payments"), guid="deleteme").json()
    resp = api.delete(f"/v3/roles/{role['guid']}")
    assert resp.status_code == 202 and resp.content == b""
    assert resp.headers["content-type"].startswith("text/html")
    location = resp.headers["Location"]
    assert location.startswith(f"{api.url}/v3/jobs/")
    job = api.http.get(location).json()
    assert (job["state"], job["operation"]) == ("PROCESSING", "role.delete")
    assert job["links"]["role"]["href"] == f"{api.url}/v3/roles/{role['guid']}"
    assert api.get(f"/v3/roles/{role['guid']}").status_code == 200  # still there while processing
    job = api.http.get(location).json()
    assert job["state"] == "COMPLETE" and job["errors"] == [] and "role" not in job["links"]
    assert error_of(api.get(f"/v3/roles/{role['guid']}")) == (
        404,
        "CF-ResourceNotFound",
        10010,
        "Role not found",
    )


def test_delete_job_completes_after_delay_without_polling(api: Api) -> None:
    role = api.org_role("organization_auditor", api.org_guid("payments"), guid="timed").json()
    location = api.delete(f"/v3/roles/{role['guid']}").headers["Location"]
    time.sleep(0.15)
    assert api.get(f"/v3/roles/{role['guid']}").status_code == 404
    assert api.http.get(location).json()["state"] == "COMPLETE"


def test_delete_org_user_with_space_roles_is_sync_422(api: Api) -> None:
    org, space = api.org_guid("payments"), api.space_guid("payments", "dev")
    org_user = api.org_role("organization_user", org, username="alice@corp.com", origin="okta").json()
    api.org_role("organization_manager", org, username="alice@corp.com", origin="okta")
    space_role = api.space_role("space_developer", space, username="alice@corp.com", origin="okta").json()
    resp = api.delete(f"/v3/roles/{org_user['guid']}")
    assert error_of(resp) == (
        422,
        "CF-UnprocessableEntity",
        10008,
        "Cannot delete organization_user role while user has roles in spaces in that organization.",
    )
    api.wait_job(api.delete(f"/v3/roles/{space_role['guid']}").headers["Location"])
    # other org roles (manager) do not block removing organization_user
    assert api.delete(f"/v3/roles/{org_user['guid']}").status_code == 202


def test_failed_job_keeps_role(api: Api, ctl: SandboxControl) -> None:
    ctl.set_config(job_fail_rate=1.0)
    try:
        role = api.org_role("organization_auditor", api.org_guid("payments"), guid="sticky").json()
        job = api.wait_job(api.delete(f"/v3/roles/{role['guid']}").headers["Location"])
    finally:
        ctl.set_config(job_fail_rate=0.0)
    assert job["state"] == "FAILED"
    assert job["errors"] == [{"detail": "An unknown error occurred.", "title": "UnknownError", "code": 10001}]
    assert api.get(f"/v3/roles/{role['guid']}").status_code == 200


def test_delete_missing_role_is_404_and_missing_job_is_404(api: Api) -> None:
    assert error_of(api.delete("/v3/roles/nope")) == (404, "CF-ResourceNotFound", 10010, "Role not found")
    assert error_of(api.get("/v3/jobs/nope")) == (404, "CF-ResourceNotFound", 10010, "Job not found")


# ---- roles: list -----------------------------------------------------------------------------------------
def _seed_roles(api: Api) -> None:
    org, dev = api.org_guid("payments"), api.space_guid("payments", "dev")
    for i in range(5):
        api.org_role("organization_user", org, guid=f"u{i}")
        api.space_role("space_developer", dev, guid=f"u{i}")


def test_roles_organization_guids_returns_org_roles_only(api: Api) -> None:
    _seed_roles(api)
    body = api.get("/v3/roles", organization_guids=api.org_guid("payments")).json()
    assert {r["type"] for r in body["resources"]} == {"organization_user"}
    assert body["pagination"]["total_results"] == 5
    body = api.get("/v3/roles", space_guids=api.space_guid("payments", "dev")).json()
    assert {r["type"] for r in body["resources"]} == {"space_developer"}


def test_roles_filters_types_users_guids(api: Api) -> None:
    _seed_roles(api)
    body = api.get("/v3/roles", user_guids="u1,u2", types="space_developer").json()
    assert body["pagination"]["total_results"] == 2
    guid = body["resources"][0]["guid"]
    assert api.get("/v3/roles", guids=guid).json()["resources"][0]["guid"] == guid
    assert api.get("/v3/roles", types="no_such_type").json()["pagination"]["total_results"] == 0


def test_roles_pagination_links_and_order(api: Api) -> None:
    _seed_roles(api)
    org = api.org_guid("payments")
    body = api.get("/v3/roles", per_page=2, organization_guids=org, page=2).json()
    pag = body["pagination"]
    assert (pag["total_results"], pag["total_pages"]) == (5, 3)
    base = f"{api.url}/v3/roles?"
    assert pag["first"]["href"] == f"{base}order_by=%2Bcreated_at&organization_guids={org}&page=1&per_page=2"
    assert pag["last"]["href"] == f"{base}order_by=%2Bcreated_at&organization_guids={org}&page=3&per_page=2"
    assert pag["next"]["href"].endswith("page=3&per_page=2")
    assert pag["previous"]["href"].endswith("page=1&per_page=2")
    # walk all pages following next links: creation order, no duplicates
    seen: list[str] = []
    url: str | None = f"/v3/roles?organization_guids={org}&per_page=2"
    while url:
        page = api.http.get(url).json()
        seen += [r["relationships"]["user"]["data"]["guid"] for r in page["resources"]]
        url = page["pagination"]["next"]["href"] if page["pagination"]["next"] else None
    assert seen == [f"u{i}" for i in range(5)]
    desc = api.get("/v3/roles", organization_guids=org, order_by="-created_at").json()
    assert [r["relationships"]["user"]["data"]["guid"] for r in desc["resources"]] == [
        f"u{i}" for i in range(4, -1, -1)
    ]


def test_roles_pagination_empty_and_raw_escaping(api: Api) -> None:
    resp = api.get("/v3/roles", user_guids="nobody")
    pag = resp.json()["pagination"]
    assert (pag["total_results"], pag["total_pages"], pag["next"], pag["previous"]) == (0, 1, None, None)
    assert pag["first"]["href"] == pag["last"]["href"]
    assert "\\u0026" in resp.text  # Rails escapes & in JSON strings
    assert dict(parse_qsl(urlsplit(pag["first"]["href"]).query)) == {
        "order_by": "+created_at",
        "page": "1",
        "per_page": "50",
        "user_guids": "nobody",
    }


def test_roles_include_user_space_organization(api: Api) -> None:
    _seed_roles(api)
    body = api.get("/v3/roles", include="user,space,organization", per_page=5000).json()
    included = body["included"]
    assert list(included) == ["users", "organizations", "spaces"]
    assert {u["guid"] for u in included["users"]} == {f"u{i}" for i in range(5)}
    assert [o["name"] for o in included["organizations"]] == ["payments"]
    assert [s["name"] for s in included["spaces"]] == ["dev"]
    only_users = api.get("/v3/roles", include="user").json()["included"]
    assert list(only_users) == ["users"]


def test_roles_invalid_params_are_422(api: Api) -> None:
    resp = api.get("/v3/roles", include="bogus")
    assert error_of(resp) == (
        422,
        "CF-UnprocessableEntity",
        10008,
        "Invalid included resource: 'bogus'. Valid included resources are: 'user', 'organization', 'space'",
    )
    assert error_of(api.get("/v3/roles", per_page="0"))[3] == "Per page must be a positive integer"
    assert error_of(api.get("/v3/roles", per_page="5001"))[3] == "Per page must be between 1 and 5000"
    assert (
        error_of(api.get("/v3/roles", order_by="name"))[3]
        == "Order by can only be: 'created_at', 'updated_at'"
    )
    resp = api.get("/v3/roles", foo="1")
    assert error_of(resp)[:3] == (422, "CF-UnprocessableEntity", 10008)
    assert error_of(resp)[3].startswith("Unknown query parameter(s): 'foo'. Valid parameters are: 'page', ")
    assert api.get("/v3/roles", per_page="5000").status_code == 200


# ---- users -------------------------------------------------------------------------------------------------
def test_users_filters_and_mutual_exclusion(api: Api) -> None:
    body = api.get("/v3/users", usernames="ALICE@corp.com").json()
    assert [u["username"] for u in body["resources"]] == ["alice@corp.com"]
    assert [
        u["origin"] for u in api.get("/v3/users", partial_usernames="lic", origins="okta").json()["resources"]
    ] == ["okta"]
    assert api.get("/v3/users", partial_usernames="lic", origins="uaa").json()["resources"] == []
    resp = api.get("/v3/users", origins="okta")
    assert error_of(resp) == (
        422,
        "CF-UnprocessableEntity",
        10008,
        "Origins filter cannot be provided without usernames or partial_usernames filter.",
    )
    resp = api.get("/v3/users", usernames="a", partial_usernames="b")
    assert (
        error_of(resp)[3]
        == "Usernames filter cannot be provided with both usernames and partial_usernames filter."
    )
    assert error_of(api.get("/v3/users", bogus="1"))[0] == 422


def test_uaa_user_without_cc_record_is_not_listed(api: Api) -> None:
    created = api.post(
        "/uaa/Users",
        {"userName": "uaa.only", "origin": "okta", "emails": [{"value": "uaa.only", "primary": True}]},
    )
    assert created.status_code == 201
    assert api.get("/v3/users", usernames="uaa.only").json()["resources"] == []


def test_create_user_by_guid_and_by_username(api: Api) -> None:
    resp = api.post("/v3/users", {"guid": "some-guid"})
    assert resp.status_code == 201 and resp.json()["presentation_name"] == "some-guid"
    assert (
        error_of(api.post("/v3/users", {"guid": "some-guid"}))[3]
        == "User with guid 'some-guid' already exists."
    )
    resp = api.post("/v3/users", {"username": "carol", "origin": "okta"})
    assert resp.status_code == 201 and (resp.json()["username"], resp.json()["origin"]) == ("carol", "okta")
    assert error_of(api.post("/v3/users", {"username": "carol", "origin": "okta"}))[3] == (
        "User with username 'carol' and origin 'okta' already exists."
    )
    assert error_of(api.post("/v3/users", {"username": "dave", "origin": "uaa"}))[3] == (
        "Origin cannot be 'uaa' when creating a user by username"
    )


def test_delete_user_removes_roles_not_uaa_user(api: Api) -> None:
    org, dev = api.org_guid("payments"), api.space_guid("payments", "dev")
    alice = _user_guid(api, "alice@corp.com")
    api.org_role("organization_user", org, guid=alice)
    api.space_role("space_developer", dev, guid=alice)
    resp = api.delete(f"/v3/users/{alice}")
    assert resp.status_code == 202
    job = api.wait_job(resp.headers["Location"])
    assert (job["state"], job["operation"]) == ("COMPLETE", "user.delete")
    assert api.get("/v3/roles", user_guids=alice).json()["pagination"]["total_results"] == 0
    assert error_of(api.get(f"/v3/users/{alice}"))[3] == "User not found"
    assert api.get(f"/uaa/Users/{alice}").status_code == 200


def test_control_roles_reads_through_api(server: SandboxServer, api: Api, ctl: SandboxControl) -> None:
    org, dev = api.org_guid("payments"), api.space_guid("payments", "dev")
    api.org_role("organization_user", org, username="alice@corp.com", origin="okta")
    api.space_role("space_developer", dev, username="alice@corp.com", origin="okta")
    api.org_role("organization_manager", org, guid="ghost")
    assert ctl.roles() == [
        ("", "ghost", "organization_manager", "payments", None),
        ("okta", "alice@corp.com", "organization_user", "payments", None),
        ("okta", "alice@corp.com", "space_developer", "payments", "dev"),
    ]
    assert get_token(server.url)


def test_org_and_space_users_list_role_holders(api: Api) -> None:
    org, dev = api.org_guid("payments"), api.space_guid("payments", "dev")
    api.org_role("organization_user", org, username="alice@corp.com", origin="okta")
    api.space_role("space_developer", dev, username="alice@corp.com", origin="okta")
    api.org_role("organization_auditor", org, guid="aud")
    body = api.get(f"/v3/organizations/{org}/users").json()
    assert sorted(u["presentation_name"] for u in body["resources"]) == ["alice@corp.com", "aud"]
    assert body["pagination"]["first"]["href"].startswith(f"{api.url}/v3/organizations/{org}/users?")
    assert [u["username"] for u in api.get(f"/v3/spaces/{dev}/users").json()["resources"]] == [
        "alice@corp.com"
    ]
    resp = api.get(f"/v3/organizations/{org}/users", origins="okta")
    assert error_of(resp) == (
        400,
        "CF-BadQueryParameter",
        10005,
        "The query parameter is invalid: Origins filter "
        "cannot be provided without usernames or partial_usernames filter.",
    )
    assert error_of(api.get("/v3/organizations/nope/users"))[3] == "Organization not found"


def test_label_selector_matches_only_negative_requirements(api: Api) -> None:
    assert api.get("/v3/organizations", label_selector="env=prod").json()["resources"] == []
    assert len(api.get("/v3/organizations", label_selector="!env").json()["resources"]) == 3


def test_patch_user_metadata(api: Api) -> None:
    alice = _user_guid(api, "alice@corp.com")
    resp = api.http.patch(f"/v3/users/{alice}", json={"metadata": {"labels": {"a": "b"}}})
    assert resp.status_code == 200 and resp.json()["guid"] == alice


def test_timestamp_filters(api: Api) -> None:
    _seed_roles(api)
    assert (
        api.get("/v3/roles", **{"created_ats[gt]": "2000-01-01T00:00:00Z"}).json()["pagination"][
            "total_results"
        ]
        == 10
    )
    body = api.get("/v3/roles", **{"created_ats[lt]": "2000-01-01T00:00:00Z"}).json()
    assert body["pagination"]["total_results"] == 0
    assert "created_ats%5Blt%5D=2000-01-01T00%3A00%3A00Z" in body["pagination"]["first"]["href"]
    resp = api.get("/v3/roles", created_ats="yesterday")
    assert error_of(resp) == (
        422,
        "CF-UnprocessableEntity",
        10008,
        "Created ats has an invalid timestamp format. "
        "Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'",
    )
    resp = api.get("/v3/organizations", **{"updated_ats[eq]": "2000-01-01T00:00:00Z"})
    assert (
        error_of(resp)[3] == "The query parameter is invalid: Updated ats Invalid relational operator: 'eq'"
    )


def test_username_in_several_origins_is_ambiguous(api: Api) -> None:
    api.post("/uaa/Users", {"userName": "twin", "origin": "okta", "emails": [{"value": "twin@a"}]})
    api.post("/uaa/Users", {"userName": "twin", "origin": "ldap", "emails": [{"value": "twin@b"}]})
    resp = api.org_role("organization_user", api.org_guid("payments"), username="twin")
    assert error_of(resp) == (
        422,
        "CF-UnprocessableEntity",
        10008,
        "Ambiguous user. User with username 'twin' exists in the following origins: ldap, okta. Specify an "
        "origin to disambiguate.",
    )


def test_org_manager_with_write_scope_manages_only_its_org(
    server: SandboxServer, ctl: SandboxControl
) -> None:
    ctl.seed(
        {
            "clients": [
                {"id": "mgr", "secret": "m", "authorities": "cloud_controller.read cloud_controller.write"}
            ],
            "roles": [{"user_guid": "mgr", "type": "organization_manager", "org": "payments"}],
        }
    )
    admin = Api(server.url)
    payments, data = admin.org_guid("payments"), admin.org_guid("data")
    admin.org_role("organization_user", data, guid="someone")
    mgr = Api(server.url, ("mgr", "m"))
    assert mgr.org_role("organization_user", payments, guid="hire").status_code == 201
    assert error_of(mgr.org_role("organization_user", data, guid="hire"))[:3] == (
        403,
        "CF-NotAuthorized",
        10003,
    )
    visible = {
        r["relationships"]["organization"]["data"]["guid"] for r in mgr.get("/v3/roles").json()["resources"]
    }
    assert visible == {payments}  # not a global reader: sees roles in its own org only
    other = admin.get("/v3/roles", organization_guids=data).json()["resources"][0]["guid"]
    assert error_of(mgr.delete(f"/v3/roles/{other}")) == (404, "CF-ResourceNotFound", 10010, "Role not found")
    assert [o["name"] for o in mgr.get("/v3/organizations").json()["resources"]] == ["payments"]
