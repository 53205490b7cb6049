"""Operations API of the sandbox: seeding, counters, faults, rate limiter, state, standalone CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.control import SandboxControl
from sandbox.server import SandboxServer
from sandbox.testing import AUDITOR, Api, error_of

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer.start(seed=REPO / "sandbox" / "seed.example.yaml") as srv:
        yield srv


@pytest.fixture
def ctl(server: SandboxServer) -> Iterator[SandboxControl]:
    with SandboxControl(server.url) as ctl:
        ctl.clear_faults()
        ctl.clear_rate_limit()
        ctl.reset_counters()
        yield ctl
        ctl.clear_faults()
        ctl.clear_rate_limit()


def test_example_seed_orgs_and_spaces(server: SandboxServer, ctl: SandboxControl) -> None:
    state = ctl.state()
    orgs = {o["guid"]: o["name"] for o in state["organizations"]}
    assert {"payments", "platform", "data"} <= set(orgs.values())
    spaces = {(orgs[s["organization_guid"]], s["name"]) for s in state["spaces"]}
    assert {
        ("payments", "dev"),
        ("payments", "prod"),
        ("platform", "tools"),
        ("platform", "sandbox"),
        ("data", "analytics"),
    } <= spaces
    assert {c["id"] for c in state["clients"]} >= {"cf-access", "auditor"}


def test_seed_returns_guids_and_roles(ctl: SandboxControl) -> None:
    result = ctl.seed(
        {
            "orgs": [{"name": "seeded", "spaces": ["one"]}],
            "roles": [
                {"username": "s@corp.com", "origin": "okta", "type": "organization_user", "org": "seeded"},
                {
                    "username": "s@corp.com",
                    "origin": "okta",
                    "type": "space_manager",
                    "org": "seeded",
                    "space": "one",
                },
            ],
        }
    )
    assert set(result["orgs"]["seeded"]["spaces"]) == {"one"} and result["roles_created"] == 2
    assert ("okta", "s@corp.com", "space_manager", "seeded", "one") in ctl.roles()


def test_seed_accepts_yaml(server: SandboxServer) -> None:
    resp = httpx.post(
        f"{server.url}/_sandbox/seed",
        content=b"orgs:\n  - name: yamlorg\n    spaces: [a]\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert resp.status_code == 200 and resp.json()["orgs"]["yamlorg"]["spaces"]["a"]


def test_counters_keyed_by_route_template(server: SandboxServer, ctl: SandboxControl) -> None:
    api = Api(server.url)
    role = api.org_role("organization_auditor", api.org_guid("data"), guid="counted").json()
    api.get(f"/v3/roles/{role['guid']}")
    api.delete(f"/v3/roles/{role['guid']}")
    counters = ctl.counters()
    req = counters["requests"]
    assert req["POST /uaa/oauth/token"] == 1
    assert req["GET /v3/organizations"] == 1
    assert (
        req["POST /v3/roles"] == 1
        and req["GET /v3/roles/{guid}"] == 1
        and req["DELETE /v3/roles/{guid}"] == 1
    )
    assert counters["writes"] == 2  # role POST, role DELETE (a token request is not a write)
    assert counters["total"] == 5
    assert not any(k.split()[1].startswith("/_sandbox") for k in req)  # ops calls are not counted
    ctl.reset_counters()
    assert ctl.counters() == {"requests": {}, "writes": 0, "total": 0, "faults": {}}


def test_fault_latency(server: SandboxServer, ctl: SandboxControl) -> None:
    # A large delay, so the check outside the prefix holds on a loaded CI machine too.
    ctl.set_faults(latency_ms=1500, path_prefix="/v3/info")
    t0 = time.perf_counter()
    assert httpx.get(f"{server.url}/v3/info").status_code == 200
    assert time.perf_counter() - t0 >= 1.45
    t0 = time.perf_counter()
    httpx.get(f"{server.url}/v3")  # outside the prefix
    assert time.perf_counter() - t0 < 1.0


def test_fault_errors_mix_is_seeded(server: SandboxServer, ctl: SandboxControl) -> None:
    def run() -> list[int]:
        ctl.set_faults(error_rate=0.5, seed=7)
        return [httpx.get(f"{server.url}/v3").status_code for _ in range(60)]

    first, second = run(), run()
    assert first == second  # deterministic with a seed
    assert set(first) == {200, 500, 502, 503}
    resp = next(r for r in (httpx.get(f"{server.url}/v3") for _ in range(100)) if r.status_code == 503)
    assert error_of(resp)[:3] == (503, "CF-ServiceUnavailable", 10015)


def test_fault_429_like_cc(server: SandboxServer, ctl: SandboxControl) -> None:
    ctl.set_faults(rate_429=1.0, retry_after_s=3)
    resp = httpx.get(f"{server.url}/v3/roles")
    assert resp.status_code == 429 and resp.headers["retry-after"] == "3"
    assert resp.headers["content-type"].startswith("text/plain")  # CC's real quirk
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(resp.headers)
    assert json.loads(resp.text) == {
        "errors": [{"detail": "Rate Limit Exceeded", "title": "CF-RateLimitExceeded", "code": 10013}]
    }


def test_fault_drop_closes_connection(server: SandboxServer, ctl: SandboxControl) -> None:
    ctl.set_faults(drop_rate=1.0, path_prefix="/v3/roles")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/v3/roles")
    assert httpx.get(f"{server.url}/v3").status_code == 200
    ctl.clear_faults()
    assert Api(server.url).get("/v3/roles").status_code == 200


def test_fault_drop_after_processing_loses_response_but_keeps_write(
    server: SandboxServer, ctl: SandboxControl
) -> None:
    api = Api(server.url)
    org = api.org_guid("data")
    ctl.set_faults(drop_after_rate=1.0, path_prefix="/v3/roles")
    with pytest.raises(httpx.TransportError):
        api.org_role("organization_billing_manager", org, guid="lost-response")
    ctl.set_faults(error_after_rate=1.0, path_prefix="/v3/roles")
    resp = api.org_role("organization_billing_manager", org, guid="lost-502")
    assert resp.status_code == 502
    assert ctl.counters()["faults"] == {"502_after": 1, "drop_after": 1}
    ctl.clear_faults()
    api = Api(server.url)
    users = {
        r["relationships"]["user"]["data"]["guid"]
        for r in api.get("/v3/roles", types="organization_billing_manager").json()["resources"]
    }
    assert {"lost-response", "lost-502"} <= users  # both writes happened


def test_uaa_rate_limited_shadow_user_creation(server: SandboxServer, ctl: SandboxControl) -> None:
    api = Api(server.url)
    ctl.set_faults(uaa_rate_429=1.0)
    resp = api.org_role("organization_user", api.org_guid("data"), username="busy@corp.com", origin="okta")
    assert error_of(resp) == (
        429,
        "CF-UaaRateLimited",
        20008,
        "The UAA is currently rate limited. Please try again later",
    )
    assert 5 <= int(resp.headers["retry-after"]) <= 20
    assert (
        error_of(api.post("/v3/users", {"username": "busy@corp.com", "origin": "okta"}))[1]
        == "CF-UaaRateLimited"
    )
    ctl.clear_faults()
    assert (
        api.org_role(
            "organization_user", api.org_guid("data"), username="busy@corp.com", origin="okta"
        ).status_code
        == 201
    )


def _stored_for(ctl: SandboxControl, username: str) -> dict[str, int]:
    """How many UAA users, CC users and roles the sandbox holds for ``username``."""
    state = ctl.state()
    uaa_ids = {u["id"] for u in state["uaa_users"] if u["userName"] == username}
    return {
        "uaa": len(uaa_ids),
        "cc": len(uaa_ids & {u["guid"] for u in state["users"]}),
        "roles": sum(1 for r in state["roles"] if r["user_guid"] in uaa_ids),
    }


def test_reject_usernames_refuses_one_user_and_stores_nothing(
    server: SandboxServer, ctl: SandboxControl
) -> None:
    api = Api(server.url)
    org = api.org_guid("data")
    bob, alice = "bob.rejected@corp.com", "alice.accepted@corp.com"
    ctl.set_faults(reject_usernames=["Bob.Rejected@corp.com"])  # case-insensitive

    resp = api.org_role("organization_user", org, username=bob, origin="okta")
    assert error_of(resp) == (
        422,
        "CF-UnprocessableEntity",
        10008,
        f"Role for user '{bob}' with origin 'okta' could not be created: the user was rejected.",
    )
    resp = api.post("/v3/users", {"username": bob, "origin": "okta"})
    assert error_of(resp)[:2] == (422, "CF-UnprocessableEntity") and bob in error_of(resp)[3]
    resp = api.post("/uaa/Users", {"userName": bob, "origin": "okta", "emails": [{"value": bob}]})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scim_resource"
    assert bob in resp.json()["error_description"]
    assert _stored_for(ctl, bob) == {"uaa": 0, "cc": 0, "roles": 0}
    # everyone else is served normally
    assert api.org_role("organization_user", org, username=alice, origin="okta").status_code == 201

    # a user who exists already is refused by guid too (role and CC user)
    ctl.clear_faults()
    created = api.post("/uaa/Users", {"userName": bob, "origin": "okta", "emails": [{"value": bob}]})
    assert created.status_code == 201
    ctl.set_faults(reject_usernames=[bob])
    bob_guid = created.json()["id"]
    assert error_of(api.org_role("organization_user", org, guid=bob_guid))[0] == 422
    assert error_of(api.post("/v3/users", {"guid": bob_guid}))[0] == 422
    assert _stored_for(ctl, bob) == {"uaa": 1, "cc": 0, "roles": 0}
    assert ctl.set_faults(reject_usernames=[bob])["reject_usernames"] == [bob]
    ctl.clear_faults()
    assert api.org_role("organization_user", org, guid=bob_guid).status_code == 201
    assert _stored_for(ctl, bob) == {"uaa": 1, "cc": 1, "roles": 1}


@pytest.mark.parametrize("knob", ["reject_usernames", "refuse_uaa_user_deletes"])
def test_username_knobs_must_be_lists(server: SandboxServer, knob: str) -> None:
    resp = httpx.put(f"{server.url}/_sandbox/faults", json={knob: "bob@corp.com"})
    assert resp.status_code == 400
    assert f"{knob} must be a list" in resp.json()["error"]


def test_refuse_uaa_user_deletes_leaves_a_deletion_half_done(
    server: SandboxServer, ctl: SandboxControl
) -> None:
    api = Api(server.url)
    bob = "bob.half@corp.com"
    created = api.post("/uaa/Users", {"userName": bob, "origin": "okta", "emails": [{"value": bob}]})
    uaa_id = created.json()["id"]
    assert api.post("/v3/users", {"guid": uaa_id}).status_code == 201
    ctl.set_faults(refuse_uaa_user_deletes=["Bob.Half@corp.com"])  # case-insensitive

    deleting = api.delete(f"/v3/users/{uaa_id}")
    assert deleting.status_code == 202  # CC still deletes
    assert api.wait_job(deleting.headers["Location"])["state"] == "COMPLETE"
    resp = api.delete(f"/uaa/Users/{uaa_id}", headers={"If-Match": "*"})
    assert resp.status_code == 403 and resp.json()["error"] == "access_denied"
    assert resp.json()["error_description"] == f"Deleting user '{bob}' was refused."
    assert _stored_for(ctl, bob) == {"uaa": 1, "cc": 0, "roles": 0}

    ctl.clear_faults()
    assert api.delete(f"/uaa/Users/{uaa_id}", headers={"If-Match": "*"}).status_code == 200
    assert _stored_for(ctl, bob) == {"uaa": 0, "cc": 0, "roles": 0}


def test_rate_limiter_headers_and_429(server: SandboxServer, ctl: SandboxControl) -> None:
    auditor = Api(server.url, AUDITOR)
    ctl.set_rate_limit(limit=10, global_limit=100, reset_interval_s=60, admin_limit=-1)
    seen = []
    for _ in range(11):
        resp = auditor.get("/v3/organizations")
        seen.append((resp.status_code, resp.headers["x-ratelimit-remaining"]))
        assert resp.headers["x-ratelimit-limit"] == "100"  # the global limit
        assert time.time() < int(resp.headers["x-ratelimit-reset"]) <= time.time() + 61
    # Remaining is CC's estimate in 10 % steps of the global limit
    assert seen[:3] == [(200, "90"), (200, "80"), (200, "70")]
    assert seen[9] == (200, "0") and seen[10] == (429, "0")
    assert error_of(resp) == (429, "CF-RateLimitExceeded", 10013, "Rate Limit Exceeded")
    assert resp.headers["content-type"].startswith("text/plain")
    assert 0 < int(resp.headers["retry-after"]) <= 60
    assert "x-ratelimit-limit" not in httpx.get(f"{server.url}/v3").headers  # root paths are exempt
    # admin_limit=-1 (CC's default) exempts admin tokens entirely
    assert "x-ratelimit-limit" not in Api(server.url).get("/v3/organizations").headers


def test_rate_limiter_unauthenticated_by_ip(server: SandboxServer, ctl: SandboxControl) -> None:
    ctl.set_rate_limit(unauthenticated_limit=2, reset_interval_s=60)
    statuses = [httpx.get(f"{server.url}/v3/roles").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    resp = httpx.get(f"{server.url}/v3/roles")
    assert error_of(resp) == (
        429,
        "CF-IPBasedRateLimitExceeded",
        10014,
        "Rate Limit Exceeded: Unauthenticated requests from this IP address have exceeded the limit. "
        "Please log in.",
    )


def test_rate_limiter_applies_to_admin_by_default(server: SandboxServer, ctl: SandboxControl) -> None:
    admin = Api(server.url)
    ctl.set_rate_limit(limit=1, reset_interval_s=60)
    assert admin.get("/v3/organizations").status_code == 200
    assert admin.get("/v3/organizations").status_code == 429


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_state_file_survives_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "nested" / "state.json"
    with SandboxServer.start(
        seed={"orgs": [{"name": "keep", "spaces": ["me"]}]}, state_file=state_file
    ) as srv:
        api = Api(srv.url)
        api.org_role("organization_user", api.org_guid("keep"), username="p@corp.com", origin="okta")
    assert state_file.exists()
    with SandboxServer.start(state_file=state_file) as srv, SandboxControl(srv.url) as ctl:
        assert ("okta", "p@corp.com", "organization_user", "keep", None) in ctl.roles()


def test_standalone_cli(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--seed",
            str(REPO / "sandbox" / "seed.example.yaml"),
            "--latency-ms",
            "1",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{url}/_sandbox/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        api = Api(url)
        names = sorted(o["name"] for o in api.get("/v3/organizations").json()["resources"])
        assert names == ["data", "payments", "platform"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
