"""The Okta emulator's own contract, with plain HTTP (SDK level: test_okta_source.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import jwt
import pytest

from sandbox.idp import DEFAULT_API_TOKEN, OktaEmulator, generate_data
from sandbox.idp.tls import new_rsa_key, private_pem, public_pem

pytestmark = pytest.mark.integration
KEY = new_rsa_key()


@pytest.fixture(scope="module")
def okta() -> Iterator[OktaEmulator]:
    with OktaEmulator.start(generate_data(5, 2, inactive_every=5), page_size=2) as emulator:
        emulator.register_client("svc", public_pem(KEY))
        yield emulator


@pytest.fixture
def http(okta: OktaEmulator) -> Iterator[httpx.Client]:
    okta.faults.clear()
    with httpx.Client(base_url=okta.url, verify=str(okta.ca_file), timeout=10) as client:
        yield client
    okta.faults.clear()


def ssws(token: str = DEFAULT_API_TOKEN, space: bool = True) -> dict[str, str]:
    return {"Authorization": f"SSWS {token}" if space else f"SSWS{token}"}


def test_ssws_with_and_without_space(http: httpx.Client) -> None:
    assert http.get("/api/v1/groups", headers=ssws()).status_code == 200
    assert http.get("/api/v1/groups", headers=ssws(space=False)).status_code == 200
    denied = http.get("/api/v1/groups", headers=ssws("wrong"))
    assert denied.status_code == 401 and denied.json()["errorCode"] == "E0000011"


def test_search_is_case_insensitive_and_users_page_with_link_headers(http: httpx.Client) -> None:
    groups = http.get(
        "/api/v1/groups", params={"search": 'profile.name eq "TEAM-0000"', "expand": "stats"}, headers=ssws()
    ).json()
    assert [g["profile"]["name"] for g in groups] == ["team-0000"]
    assert groups[0]["_embedded"]["stats"]["usersCount"] == 3
    page1 = http.get(f"/api/v1/groups/{groups[0]['id']}/users", params={"limit": 50}, headers=ssws())
    links = page1.headers.get_list("link")
    assert len(page1.json()) == 2, "capped at the emulator's page size"
    assert links[0].endswith('rel="self"') and links[-1].endswith('rel="next"'), (
        "next last (the SDK keeps the last)"
    )
    nxt = links[-1].split(";")[0].strip("<>")
    page2 = http.get(nxt, headers=ssws())
    assert len(page2.json()) == 1 and all('rel="next"' not in v for v in page2.headers.get_list("link"))
    statuses = [u["status"] for u in page1.json() + page2.json()]
    assert statuses.count("SUSPENDED") == 1


def test_private_key_jwt_token_flow(okta: OktaEmulator, http: httpx.Client) -> None:
    now = int(time.time())
    claims = {
        "iss": "svc",
        "sub": "svc",
        "aud": f"{okta.url}/oauth2/v1/token",
        "iat": now,
        "exp": now + 300,
        "jti": f"j-{now}",
    }
    form = {
        "grant_type": "client_credentials",
        "scope": "okta.groups.read okta.users.read",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": jwt.encode(claims, private_pem(KEY), algorithm="RS256"),
    }
    token = http.post("/oauth2/v1/token", data=form).json()["access_token"]
    assert http.get("/api/v1/groups", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    replay = http.post("/oauth2/v1/token", data=form)
    assert replay.status_code == 401 and "jti" in replay.json()["error_description"]
    wrong_aud = {
        **form,
        "client_assertion": jwt.encode(
            {**claims, "jti": "x", "aud": "https://evil/oauth2/v1/token"}, private_pem(KEY), algorithm="RS256"
        ),
    }
    assert http.post("/oauth2/v1/token", data=wrong_aud).status_code == 401
    forged = {
        **form,
        "client_assertion": jwt.encode({**claims, "jti": "y"}, private_pem(new_rsa_key()), algorithm="RS256"),
    }
    assert http.post("/oauth2/v1/token", data=forged).json()["error_description"] == (
        "The client_assertion signature is invalid."
    )
    too_much = {
        **form,
        "client_assertion": jwt.encode({**claims, "jti": "z"}, private_pem(KEY), algorithm="RS256"),
        "scope": "okta.users.manage",
    }
    assert http.post("/oauth2/v1/token", data=too_much).json()["error"] == "invalid_scope"


def test_fault_knobs_over_http(okta: OktaEmulator, http: httpx.Client) -> None:
    http.put("/_emulator/faults", json={"rules": [{"match": "/api/v1/groups", "status": 429, "times": 1}]})
    limited = http.get("/api/v1/groups", headers=ssws())
    assert limited.status_code == 429
    assert limited.headers["x-rate-limit-remaining"] == "0" and "x-rate-limit-reset" in limited.headers
    assert "date" in limited.headers
    assert http.get("/api/v1/groups", headers=ssws()).status_code == 200, "times: 1"
    counters = http.get("/_emulator/counters").json()
    assert counters["status:429"] >= 1 and counters["GET /api/v1/groups"] >= 2
    http.delete("/_emulator/faults")
    assert http.get("/_emulator/faults").json()["rules"] == []


def test_nested_groups_are_rejected() -> None:
    with pytest.raises(ValueError, match="Okta groups cannot contain groups"):
        OktaEmulator({"users": [], "groups": [{"name": "a"}, {"name": "b", "members": ["group:a"]}]})
