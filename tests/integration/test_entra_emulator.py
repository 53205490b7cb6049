"""The Graph + Entra token emulator's own contract, with plain HTTP (SDK level: test_entra_source.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sandbox.idp import GraphEmulator

pytestmark = pytest.mark.integration
DATA = {
    "users": [
        {"id": "u1", "login": "a@corp.com"},
        {"id": "u2", "login": "b@corp.com", "enabled": False},
        {"id": "u3", "login": "c@corp.com"},
    ],
    "groups": [
        {"id": "g1", "name": "One", "members": ["a@corp.com", "group:Two"]},
        {"id": "g2", "name": "Two", "members": ["b@corp.com", "group:One", "c@corp.com"]},
    ],
}


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphEmulator]:
    with GraphEmulator.start(DATA, page_size=2) as emulator:
        emulator.register_app("app", secret="s3cret")
        yield emulator


@pytest.fixture
def http(graph: GraphEmulator) -> Iterator[httpx.Client]:
    graph.faults.clear()
    with httpx.Client(base_url=graph.url, verify=str(graph.ca_file), timeout=10) as client:
        token = client.post(
            f"/{graph.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "app",
                "client_secret": "s3cret",
                "scope": "https://graph.microsoft.com/.default",
            },
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def test_token_errors_look_like_aad(graph: GraphEmulator, http: httpx.Client) -> None:
    bad = http.post(
        f"/{graph.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "app",
            "client_secret": "nope",
            "scope": "https://graph.microsoft.com/.default",
        },
    )
    assert bad.status_code == 401 and bad.json()["error_codes"] == [7000215]
    assert http.post("/other-tenant/oauth2/v2.0/token", data={}).json()["error_codes"] == [90002]


def test_filter_double_slash_and_default_properties(http: httpx.Client) -> None:
    got = http.get("/v1.0//groups", params={"$filter": "displayName eq 'one'"}).json()["value"]
    assert [g["id"] for g in got] == ["g1"], "eq ignores case; // collapsed"
    user = http.get("/v1.0/groups/g1/transitiveMembers/graph.user").json()["value"][0]
    assert "accountEnabled" not in user, "not in Graph's default property set"


def test_transitive_members_cycle_paging_and_count(http: httpx.Client) -> None:
    params = {"$select": "id,accountEnabled", "$count": "true", "$top": "5"}
    assert http.get("/v1.0/groups/g1/transitiveMembers/graph.user", params=params).status_code == 400, (
        "$count needs ConsistencyLevel: eventual"
    )
    headers = {"ConsistencyLevel": "eventual"}
    page = http.get("/v1.0/groups/g1/transitiveMembers/graph.user", params=params, headers=headers).json()
    assert page["@odata.count"] == 3 and len(page["value"]) == 2, "page size capped at 2"
    assert "/transitiveMembers/microsoft.graph.user?" in page["@odata.nextLink"]
    rest = http.get(page["@odata.nextLink"], headers=headers).json()
    ids = [u["id"] for u in page["value"] + rest["value"]]
    assert sorted(ids) == ["u1", "u2", "u3"] and "@odata.nextLink" not in rest
    typed: list[dict[str, str]] = []
    url: str | None = "/v1.0/groups/g1/transitiveMembers"
    while url:
        body = http.get(url).json()
        typed += body["value"]
        url = body.get("@odata.nextLink")
    assert len(typed) == 4, "3 users + the nested group Two (the cycle back to One is not listed)"
    assert {x["@odata.type"] for x in typed} == {"#microsoft.graph.user", "#microsoft.graph.group"}


def test_429_carries_retry_after(graph: GraphEmulator, http: httpx.Client) -> None:
    graph.faults.add("transitiveMembers", status=429, times=1, retry_after=2)
    resp = http.get("/v1.0/groups/g1/transitiveMembers/graph.user")
    assert resp.status_code == 429 and resp.headers["retry-after"] == "2"
    assert resp.json()["error"]["code"] == "TooManyRequests"
    assert graph.counters.get("status:429") == 1


def test_missing_token_and_unknown_group(http: httpx.Client) -> None:
    assert http.get("/v1.0/groups/nope").json()["error"]["code"] == "Request_ResourceNotFound"
    anonymous = httpx.get(str(http.base_url) + "/v1.0/groups", verify=False)
    assert anonymous.status_code == 401
