"""OktaSource driving the real ``okta`` SDK against the Okta emulator (TLS, 127.0.0.1)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from components.identity.base import IdentityReadError, read_snapshot
from components.identity.concurrency import RetryPolicy
from components.identity.okta import OktaApiTokenAuth, OktaPrivateKeyAuth, OktaSource
from sandbox.idp import DEFAULT_API_TOKEN, OktaEmulator, Truncate
from sandbox.idp.tls import new_rsa_key, private_pem, public_pem

pytestmark = pytest.mark.integration

QUOTED = 'O\'Brien "Ops" \\ team'
CLIENT_ID = "0oa-cf-access"
KEY = new_rsa_key()
OTHER_KEY = new_rsa_key()

DATA: dict[str, Any] = {
    "users": [
        *({"id": f"00u-p{i}", "login": f"person{i}@corp.com", "name": f"Person {i}"} for i in range(7)),
        {"id": "00u-sus", "login": "suspended@corp.com", "status": "SUSPENDED"},
        {"id": "00u-dep", "login": "gone@corp.com", "status": "DEPROVISIONED"},
        {"id": "00u-lock", "login": "locked@corp.com", "status": "LOCKED_OUT"},
        {"id": "00u-pwd", "login": "expired@corp.com", "status": "PASSWORD_EXPIRED"},
        {"id": "00u-nomail", "login": "nomail-login", "email": None},
        {"id": "00u-upper", "login": "Mixed.Case@Corp.COM", "email": "Mixed.Case@Corp.COM"},
    ],
    "groups": [
        {"id": "00g-big", "name": "payments-dev", "members": [f"person{i}@corp.com" for i in range(7)]},
        {
            "id": "00g-states",
            "name": "states",
            "members": [
                "person0@corp.com",
                "suspended@corp.com",
                "gone@corp.com",
                "locked@corp.com",
                "expired@corp.com",
            ],
        },
        {"id": "00g-quote", "name": QUOTED, "members": ["person1@corp.com"]},
        {"id": "00g-case", "name": "Platform-Leads", "members": ["person2@corp.com"]},
        {"id": "00g-dup1", "name": "twins", "members": ["person3@corp.com"]},
        {"id": "00g-dup2", "name": "twins", "members": ["person4@corp.com"]},
        {"id": "00g-nomail", "name": "no-mail", "members": ["nomail-login", "person5@corp.com"]},
        {"id": "00g-upper", "name": "upper", "members": ["Mixed.Case@Corp.COM"]},
        {"id": "00g-empty", "name": "empty", "members": []},
        *(
            {"id": f"00g-many{i}", "name": f"many-{i}", "members": [f"person{i % 7}@corp.com"]}
            for i in range(12)
        ),
    ],
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The okta SDK takes HTTP(S)_PROXY from the environment and ignores NO_PROXY; OKTA_* env
    # values leak into its config.
    import os

    for var in list(os.environ):
        if var.upper() in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY") or var.startswith("OKTA_"):
            monkeypatch.delenv(var)


@pytest.fixture(scope="module")
def server() -> Iterator[OktaEmulator]:
    with OktaEmulator.start(DATA, page_size=3) as okta:
        okta.register_client(CLIENT_ID, public_pem(KEY))
        yield okta


@pytest.fixture
def okta(server: OktaEmulator) -> Iterator[OktaEmulator]:
    server.faults.clear()
    server.counters.reset()
    yield server
    server.faults.clear()


FAST = RetryPolicy(attempts=3, backoff_seconds=0.05, max_backoff_seconds=0.2)


def source(okta: OktaEmulator, **kw: Any) -> OktaSource:
    args: dict[str, Any] = {
        "org_url": okta.url,
        "auth": OktaApiTokenAuth(SecretStr(DEFAULT_API_TOKEN)),
        "ca_file": okta.ca_file,
        "page_size": 3,
        "retry": FAST,
        "request_timeout": 10.0,
    }
    args.update(kw)
    return OktaSource(**args)


def key_source(okta: OktaEmulator, key: str, **kw: Any) -> OktaSource:
    return source(okta, auth=OktaPrivateKeyAuth(CLIENT_ID, SecretStr(key)), **kw)


def usernames(people: Any) -> list[str]:
    return [p.username for p in people]


# -- reading ------------------------------------------------------------------------------------
def test_members_over_three_pages_with_api_token(okta: OktaEmulator) -> None:
    got = source(okta).read_groups(["payments-dev"])
    assert usernames(got["payments-dev"]) == [f"person{i}@corp.com" for i in range(7)]
    assert all(p.active and p.origin == "okta" and p.source == "okta" for p in got["payments-dev"])
    assert got["payments-dev"][0].external_id == "00u-p0"
    assert got["payments-dev"][0].display_name == "Person 0"
    assert okta.counters.get("GET /api/v1/groups/{id}/users") == 3, "7 members at 3 per page"
    assert okta.counters.get("auth:ssws") >= 4


def test_private_key_jwt_is_verified_and_token_shared(okta: OktaEmulator) -> None:
    names = ["payments-dev", "states", *(f"many-{i}" for i in range(12))]
    got = key_source(okta, private_pem(KEY)).read_groups(names)
    assert set(got) == set(names)
    assert okta.counters.get("token:issued") == 1, "one token for all concurrent reads"
    assert okta.counters.get("auth:bearer") >= len(names) * 2
    assert okta.counters.get("auth:ssws") == 0


def test_private_key_jwt_wrong_key_rejected_without_leaking_it(okta: OktaEmulator) -> None:
    pem = private_pem(OTHER_KEY)
    with pytest.raises(IdentityReadError) as info:
        key_source(okta, pem).read_groups(["payments-dev"])
    text = str(info.value)
    assert "signature is invalid" in text
    assert info.value.source == "okta" and info.value.group == "payments-dev"
    for line in pem.splitlines()[1:-1]:
        assert line not in text
    assert okta.counters.get("token:rejected") >= 1
    assert okta.counters.get("GET /api/v1/groups") == 0, "no API call without a token"


def test_private_key_from_jwk(okta: OktaEmulator) -> None:
    from jwcrypto.jwk import JWK

    jwk = JWK.from_pem(private_pem(KEY).encode("ascii")).export_private()
    got = key_source(okta, jwk).read_groups(["upper"])
    assert usernames(got["upper"]) == ["mixed.case@corp.com"], "usernames are case-folded"


def test_group_name_with_quotes_and_backslash(okta: OktaEmulator) -> None:
    got = source(okta).read_groups([QUOTED])
    assert usernames(got[QUOTED]) == ["person1@corp.com"]


def test_statuses_only_active_is_active(okta: OktaEmulator) -> None:
    got = {p.username: p.active for p in source(okta).read_groups(["states"])["states"]}
    assert got == {
        "person0@corp.com": True,
        "suspended@corp.com": False,
        "gone@corp.com": False,
        "locked@corp.com": False,
        "expired@corp.com": False,
    }


def test_active_statuses_configurable(okta: OktaEmulator) -> None:
    src = source(okta, active_statuses=("ACTIVE", "PASSWORD_EXPIRED"))
    got = {p.username: p.active for p in src.read_groups(["states"])["states"]}
    assert got["expired@corp.com"] is True and got["suspended@corp.com"] is False


def test_empty_group_is_an_answer(okta: OktaEmulator) -> None:
    assert source(okta).read_groups(["empty"]) == {"empty": ()}


def test_username_from_email_and_missing_email_fails(okta: OktaEmulator) -> None:
    src = source(okta, username_attribute="email")
    assert usernames(src.read_groups(["payments-dev"])["payments-dev"])[0] == "person0@corp.com"
    with pytest.raises(
        IdentityReadError, match=r"okta:no-mail: user 00u-nomail \(nomail-login\) has no email"
    ):
        src.read_groups(["no-mail"])


def test_many_groups_concurrently_bounded(okta: OktaEmulator) -> None:
    okta.faults.latency = 0.05
    names = [f"many-{i}" for i in range(12)]
    got = source(okta, max_concurrency=3).read_groups(names)
    assert len(got) == 12
    assert 2 <= okta.counters.get("max_inflight") <= 3


def test_works_from_inside_a_running_event_loop(okta: OktaEmulator) -> None:
    async def program() -> Any:  # like a Pulumi program body
        return source(okta).read_groups(["upper"])

    assert usernames(asyncio.run(program())["upper"]) == ["mixed.case@corp.com"]


def test_read_snapshot_with_okta(okta: OktaEmulator) -> None:
    snap = read_snapshot({"okta": source(okta)}, ["okta:upper", "payments-dev"], "okta")
    assert set(snap.groups) == {"okta:upper", "okta:payments-dev"}


# -- lookups that must fail ---------------------------------------------------------------------
def test_missing_group(okta: OktaEmulator) -> None:
    with pytest.raises(IdentityReadError, match="okta:nope: group not found in Okta"):
        source(okta).read_groups(["payments-dev", "nope"])


def test_case_differs_is_not_a_match(okta: OktaEmulator) -> None:
    with pytest.raises(IdentityReadError, match=r"group not found.*did you mean 'Platform-Leads'"):
        source(okta).read_groups(["platform-leads"])


def test_duplicate_exact_names(okta: OktaEmulator) -> None:
    with pytest.raises(
        IdentityReadError, match=r"2 Okta groups are named exactly 'twins' \(ids 00g-dup1, 00g-dup2\)"
    ):
        source(okta).read_groups(["twins"])


# -- rate limits, errors, timeouts --------------------------------------------------------------
def test_429_with_rate_limit_headers_then_success(okta: OktaEmulator) -> None:
    okta.faults.add(r"/users", status=429, times=1, retry_after=1)
    started = time.monotonic()
    got = source(okta).read_groups(["payments-dev"])
    assert len(got["payments-dev"]) == 7
    assert okta.counters.get("status:429") == 1
    assert time.monotonic() - started >= 0.9, "the SDK waited for X-Rate-Limit-Reset"


def test_429_without_headers_is_retried_by_us(okta: OktaEmulator) -> None:
    # The SDK crashes (AttributeError) on a 429 without Date + X-Rate-Limit-Reset.
    okta.faults.add(r"/users", status=429, times=2, rate_limit_headers=False)
    got = source(okta).read_groups(["payments-dev"])
    assert len(got["payments-dev"]) == 7
    assert okta.counters.get("status:429") == 2


def test_429_exhausting_sdk_retries_then_ours_succeeds(okta: OktaEmulator) -> None:
    okta.faults.add(r"/api/v1/groups\?", status=429, times=2, retry_after=0)
    got = source(okta, sdk_max_retries=0).read_groups(["upper"])
    assert len(got["upper"]) == 1
    assert okta.counters.get("status:429") == 2


def test_persistent_5xx_names_the_group(okta: OktaEmulator) -> None:
    okta.faults.add(r"/api/v1/groups/00g-big/users", status=500, times=None)
    with pytest.raises(IdentityReadError) as info:
        source(okta).read_groups(["payments-dev", "upper"])
    assert info.value.group == "payments-dev"
    assert "member page 1 failed after 3 attempt(s): HTTP 500 E0000009 Internal Server Error" in str(
        info.value
    )


def test_timeout_is_a_clear_error(okta: OktaEmulator) -> None:
    okta.faults.add(r"/users", delay=20.0, times=None)
    started = time.monotonic()
    with pytest.raises(
        IdentityReadError, match=r"okta:payments-dev: member page 1 failed after 2 attempt\(s\): timed out"
    ):
        source(okta, request_timeout=0.5, retry=RetryPolicy(2, 0.05, 0.1)).read_groups(["payments-dev"])
    # The emulator holds the response for 20 s: finishing well before proves the timeout applied.
    assert time.monotonic() - started < 10


def test_connection_refused(okta: OktaEmulator) -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    src = OktaSource(
        org_url=f"https://127.0.0.1:{port}",
        auth=OktaApiTokenAuth(SecretStr("tok-123456")),
        retry=RetryPolicy(2, 0.01, 0.01),
    )
    with pytest.raises(IdentityReadError, match="no HTTP response from Okta"):
        src.read_groups(["x"])


# -- truncation ---------------------------------------------------------------------------------
def test_next_link_that_errors_fails_closed(okta: OktaEmulator) -> None:
    okta.faults.truncate = Truncate(after_pages=2, mode="bad-next", match="payments-dev")
    with pytest.raises(IdentityReadError, match=r"okta:payments-dev: member page 3 failed: HTTP 400"):
        source(okta).read_groups(["payments-dev"])


def test_dropped_next_link_detected_by_users_count(okta: OktaEmulator) -> None:
    okta.faults.truncate = Truncate(after_pages=1, mode="drop-next", match="payments-dev")
    with pytest.raises(
        IdentityReadError, match=r"read 3 members over 1 page\(s\) but Okta reports usersCount 7"
    ):
        source(okta).read_groups(["payments-dev"])


# -- secrets ------------------------------------------------------------------------------------
def test_wrong_api_token_error_and_repr_do_not_leak(okta: OktaEmulator) -> None:
    token = "SSWS-very-secret-token-value-123"
    src = source(okta, auth=OktaApiTokenAuth(SecretStr(token)))
    assert token not in repr(src)
    with pytest.raises(IdentityReadError) as info:
        src.read_groups(["payments-dev"])
    assert "not authorised by Okta (HTTP 401 E0000011 Invalid token provided); check the API token" in str(
        info.value
    )
    assert token not in str(info.value) and token not in repr(info.value)


def test_private_key_not_in_repr(okta: OktaEmulator) -> None:
    pem = private_pem(KEY)
    src = key_source(okta, pem)
    text = repr(src) + repr(src.auth) + str(src.__dict__)
    for line in pem.splitlines()[1:-1]:
        assert line not in text


def test_key_file_path_reading(okta: OktaEmulator, tmp_path: Path) -> None:
    from components.identity.config import parse_identity_sources

    (tmp_path / "okta.pem").write_text(private_pem(KEY), encoding="ascii")
    assert okta.ca_file is not None
    sources = parse_identity_sources(
        {
            "okta": {
                "type": "okta",
                "orgUrl": okta.url,
                "caBundle": str(okta.ca_file),
                "pageSize": 2,
                "auth": {"method": "private-key", "clientId": CLIENT_ID, "privateKeyFile": "okta.pem"},
            }
        },
        tmp_path,
    )
    assert len(sources["okta"].read_groups(["payments-dev"])["payments-dev"]) == 7
    assert okta.counters.get("GET /api/v1/groups/{id}/users") == 4
