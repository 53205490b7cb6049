"""EntraSource driving the real ``msgraph-sdk`` + ``azure-identity`` against the Graph/AAD emulator (TLS)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from components.identity.base import IdentityReadError
from components.identity.concurrency import RetryPolicy
from components.identity.entra import (
    EntraAuth,
    EntraCertificateAuth,
    EntraClientSecretAuth,
    EntraSource,
    EntraWorkloadIdentityAuth,
)
from sandbox.idp import FederatedCredential, GraphEmulator, Truncate
from sandbox.idp.tls import cert_pem, new_rsa_key, private_pem, public_pem, self_signed_cert

pytestmark = pytest.mark.integration

APP = "22222222-0000-0000-0000-00000000c0de"
LIMITED_APP = "22222222-0000-0000-0000-0000000011ed"
SECRET = "entra-client-secret-value~123"
CERT_KEY = new_rsa_key()
CERT = self_signed_cert(CERT_KEY)
OTHER_KEY = new_rsa_key()
CI_KEY = new_rsa_key()
ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:acme/cf-access:environment:production"
QUOTED = "O'Brien's ''team''"

DATA: dict[str, Any] = {
    "users": [
        *({"id": f"u-{i}", "login": f"person{i}@corp.com", "name": f"Person {i}"} for i in range(7)),
        {"id": "u-off", "login": "disabled@corp.com", "enabled": False},
        {"id": "u-l1", "login": "level1@corp.com"},
        {"id": "u-l2", "login": "level2@corp.com"},
        {"id": "u-l3", "login": "level3@corp.com"},
        {"id": "u-nomail", "login": "nomail@corp.com", "email": None},
        {"id": "u-guest", "login": "guest_ext.com#EXT#@corp.onmicrosoft.com", "email": "Guest@Ext.com"},
    ],
    "groups": [
        {"id": "g-big", "name": "payments-dev", "members": [f"person{i}@corp.com" for i in range(7)]},
        # 3 levels deep with a cycle: top -> mid -> leaf -> top; users at each level
        {"id": "g-top", "name": "top", "members": ["level1@corp.com", "group:mid", "disabled@corp.com"]},
        {"id": "g-mid", "name": "mid", "members": ["level2@corp.com", "group:leaf", "level1@corp.com"]},
        {"id": "g-leaf", "name": "leaf", "members": ["level3@corp.com", "group:top"]},
        {"id": "g-quote", "name": QUOTED, "members": ["person1@corp.com"]},
        {"id": "g-case", "name": "Platform-Leads", "members": ["person2@corp.com"]},
        {"id": "g-dup1", "name": "twins", "members": ["person3@corp.com"]},
        {"id": "g-dup2", "name": "twins", "members": ["person4@corp.com"]},
        {"id": "g-nomail", "name": "no-mail", "members": ["nomail@corp.com"]},
        {"id": "g-guest", "name": "guests", "members": ["guest_ext.com#EXT#@corp.onmicrosoft.com"]},
        *(
            {"id": f"g-many{i}", "name": f"many-{i}", "members": [f"person{i % 7}@corp.com"]}
            for i in range(10)
        ),
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[GraphEmulator]:
    with GraphEmulator.start(DATA, page_size=3) as graph:
        graph.register_app(
            APP,
            secret=SECRET,
            certificate_pem=cert_pem(CERT),
            federated=[FederatedCredential(ISSUER, SUBJECT)],
        )
        graph.register_app(LIMITED_APP, secret=SECRET, roles=("GroupMember.Read.All",))
        graph.register_issuer(ISSUER, public_pem(CI_KEY))
        yield graph


@pytest.fixture
def graph(server: GraphEmulator) -> Iterator[GraphEmulator]:
    server.faults.clear()
    server.counters.reset()
    yield server
    server.faults.clear()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in list(os.environ):
        if var.upper() in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY") or var.startswith("AZURE_"):
            monkeypatch.delenv(var)


FAST = RetryPolicy(attempts=3, backoff_seconds=0.05, max_backoff_seconds=0.2)


def source(graph: GraphEmulator, auth: EntraAuth | None = None, **kw: Any) -> EntraSource:
    args: dict[str, Any] = {
        "tenant_id": graph.tenant_id,
        "client_id": APP,
        "auth": auth or EntraClientSecretAuth(SecretStr(SECRET)),
        "authority_host": graph.authority,
        "graph_base_url": graph.graph_base_url,
        "ca_file": graph.ca_file,
        "page_size": 3,
        "retry": FAST,
        "sdk_max_retries": 1,
        "sdk_retry_delay": 0.0,
        "request_timeout": 10.0,
    }
    args.update(kw)
    return EntraSource(**args)


def ci_token(subject: str = SUBJECT, key: Any = CI_KEY, audience: str = "api://AzureADTokenExchange") -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": subject, "aud": audience, "iat": now, "nbf": now, "exp": now + 600}
    return jwt.encode(claims, private_pem(key), algorithm="RS256")


def usernames(people: Any) -> list[str]:
    return [p.username for p in people]


# -- reading ------------------------------------------------------------------------------------
def test_members_over_three_pages_with_client_secret(graph: GraphEmulator) -> None:
    got = source(graph).read_groups(["payments-dev"])
    assert usernames(got["payments-dev"]) == [f"person{i}@corp.com" for i in range(7)]
    person = got["payments-dev"][0]
    assert (person.origin, person.source, person.external_id, person.active) == (
        "azuread",
        "entra",
        "u-0",
        True,
    )
    assert graph.counters.get("GET /v1.0/groups/{id}/transitiveMembers/graph.user") == 3
    assert graph.counters.get("token:secret") == 1


def test_nested_three_levels_with_cycle_and_disabled_user(graph: GraphEmulator) -> None:
    got = source(graph).read_groups(["top", "leaf"])
    assert {p.username: p.active for p in got["top"]} == {
        "level1@corp.com": True,
        "level2@corp.com": True,
        "level3@corp.com": True,
        "disabled@corp.com": False,
    }
    assert set(usernames(got["leaf"])) == set(usernames(got["top"])), "the cycle brings everyone back"


def test_group_name_with_quotes(graph: GraphEmulator) -> None:
    got = source(graph).read_groups([QUOTED])
    assert usernames(got[QUOTED]) == ["person1@corp.com"]


def test_certificate_credential(graph: GraphEmulator) -> None:
    auth = EntraCertificateAuth(certificate=SecretStr(private_pem(CERT_KEY) + cert_pem(CERT)))
    got = source(graph, auth).read_groups(["payments-dev"])
    assert len(got["payments-dev"]) == 7
    assert graph.counters.get("token:certificate") == 1


def test_certificate_from_file(graph: GraphEmulator, tmp_path: Path) -> None:
    path = tmp_path / "app.pem"
    path.write_text(private_pem(CERT_KEY) + cert_pem(CERT), encoding="ascii")
    got = source(graph, EntraCertificateAuth(certificate_file=path)).read_groups(["guests"])
    assert usernames(got["guests"]) == ["guest_ext.com#ext#@corp.onmicrosoft.com"]


def test_unknown_certificate_rejected(graph: GraphEmulator) -> None:
    other = self_signed_cert(OTHER_KEY)
    pem = private_pem(OTHER_KEY) + cert_pem(other)
    with pytest.raises(IdentityReadError, match="AADSTS700027") as info:
        source(graph, EntraCertificateAuth(certificate=SecretStr(pem))).read_groups(["payments-dev"])
    for line in private_pem(OTHER_KEY).splitlines()[1:-1]:
        assert line not in str(info.value)


def test_workload_identity_from_token_file(graph: GraphEmulator, tmp_path: Path) -> None:
    token_file = tmp_path / "oidc.jwt"
    token_file.write_text(ci_token(), encoding="ascii")
    got = source(graph, EntraWorkloadIdentityAuth(token_file=token_file)).read_groups(["payments-dev"])
    assert len(got["payments-dev"]) == 7
    assert graph.counters.get("token:federated") == 1


def test_workload_identity_from_env(graph: GraphEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_OIDC_TOKEN", ci_token())
    got = source(graph, EntraWorkloadIdentityAuth(token_env="CI_OIDC_TOKEN")).read_groups(["many-1"])
    assert len(got["many-1"]) == 1


def test_workload_identity_default_env_file(
    graph: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(ci_token(), encoding="ascii")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    assert len(source(graph, EntraWorkloadIdentityAuth()).read_groups(["many-2"])["many-2"]) == 1


def test_workload_identity_wrong_subject_or_signature(graph: GraphEmulator, tmp_path: Path) -> None:
    token_file = tmp_path / "oidc.jwt"
    token_file.write_text(ci_token(subject="repo:acme/cf-access:pull_request"), encoding="ascii")
    with pytest.raises(IdentityReadError, match="AADSTS70021: No matching federated identity record"):
        source(graph, EntraWorkloadIdentityAuth(token_file=token_file)).read_groups(["payments-dev"])
    forged = ci_token(key=OTHER_KEY)
    token_file.write_text(forged, encoding="ascii")
    with pytest.raises(IdentityReadError, match="AADSTS700024") as info:
        source(graph, EntraWorkloadIdentityAuth(token_file=token_file)).read_groups(["payments-dev"])
    assert forged not in str(info.value)


def test_concurrent_groups_share_one_token(graph: GraphEmulator) -> None:
    graph.faults.latency = 0.03
    names = [f"many-{i}" for i in range(10)]
    got = source(graph, max_concurrency=4).read_groups(names)
    assert len(got) == 10
    assert graph.counters.get("token:issued") == 1
    assert 2 <= graph.counters.get("max_inflight") <= 4


# -- lookups that must fail ---------------------------------------------------------------------
def test_missing_group(graph: GraphEmulator) -> None:
    with pytest.raises(IdentityReadError, match="entra:nope: group not found in Entra tenant"):
        source(graph).read_groups(["payments-dev", "nope"])


def test_case_differs_is_not_a_match(graph: GraphEmulator) -> None:
    with pytest.raises(IdentityReadError, match=r"did you mean 'Platform-Leads'"):
        source(graph).read_groups(["platform-leads"])


def test_duplicate_exact_names(graph: GraphEmulator) -> None:
    with pytest.raises(
        IdentityReadError, match=r"2 Entra groups are named exactly 'twins' \(ids g-dup1, g-dup2\)"
    ):
        source(graph).read_groups(["twins"])


def test_mail_attribute_missing_fails_closed(graph: GraphEmulator) -> None:
    src = source(graph, username_attribute="mail")
    assert usernames(src.read_groups(["guests"])["guests"]) == ["guest@ext.com"]
    with pytest.raises(
        IdentityReadError, match=r"entra:no-mail: user u-nomail \(nomail@corp.com\) has no mail"
    ):
        src.read_groups(["no-mail"])


def test_without_user_read_all_account_enabled_missing_fails(graph: GraphEmulator) -> None:
    with pytest.raises(IdentityReadError, match=r"the app needs User\.Read\.All"):
        source(graph, client_id=LIMITED_APP, username_attribute="userPrincipalName").read_groups(
            ["payments-dev"]
        )


# -- rate limits, errors, timeouts --------------------------------------------------------------
def test_429_then_success(graph: GraphEmulator) -> None:
    graph.faults.add("transitiveMembers", status=429, times=1, retry_after=1)
    started = time.monotonic()
    got = source(graph).read_groups(["payments-dev"])
    assert len(got["payments-dev"]) == 7
    assert graph.counters.get("status:429") == 1
    assert time.monotonic() - started >= 0.9, "Retry-After honoured"


def test_429_beyond_sdk_retries_then_ours(graph: GraphEmulator) -> None:
    graph.faults.add("transitiveMembers", status=429, times=2, retry_after=0)
    got = source(graph, sdk_max_retries=0).read_groups(["payments-dev"])
    assert len(got["payments-dev"]) == 7
    assert graph.counters.get("status:429") == 2


def test_persistent_5xx_names_the_group(graph: GraphEmulator) -> None:
    graph.faults.add("groups/g-big/transitiveMembers", status=500, times=None)
    with pytest.raises(IdentityReadError) as info:
        source(graph).read_groups(["payments-dev", "many-1"])
    assert info.value.group == "payments-dev"
    assert "member page 1 failed after 3 attempt(s): HTTP 500 UnknownError" in str(info.value)


def test_persistent_503_with_retry_after(graph: GraphEmulator) -> None:
    graph.faults.add("transitiveMembers", status=503, times=None, retry_after=0)
    with pytest.raises(
        IdentityReadError, match=r"entra:payments-dev: member page 1 failed after 2 attempt\(s\): HTTP 503"
    ):
        source(graph, retry=RetryPolicy(2, 0.01, 0.05)).read_groups(["payments-dev"])


def test_timeout_is_a_clear_error(graph: GraphEmulator) -> None:
    graph.faults.add("transitiveMembers", delay=20.0, times=None)
    started = time.monotonic()
    with pytest.raises(
        IdentityReadError, match=r"entra:payments-dev: member page 1 failed after 2 attempt\(s\): timed out"
    ):
        source(graph, request_timeout=0.5, retry=RetryPolicy(2, 0.01, 0.05)).read_groups(["payments-dev"])
    # The emulator holds the response for 20 s: finishing well before proves the timeout applied.
    assert time.monotonic() - started < 10


# -- truncation ---------------------------------------------------------------------------------
def test_next_link_that_errors_fails_closed(graph: GraphEmulator) -> None:
    graph.faults.truncate = Truncate(after_pages=1, mode="bad-next", match="payments-dev")
    with pytest.raises(
        IdentityReadError, match=r"entra:payments-dev: member page 2: Graph rejected the paging link"
    ):
        source(graph).read_groups(["payments-dev"])


def test_dropped_next_link_detected_by_count(graph: GraphEmulator) -> None:
    graph.faults.truncate = Truncate(after_pages=2, mode="drop-next", match="payments-dev")
    with pytest.raises(
        IdentityReadError, match=r"read 6 members over 2 page\(s\) but Graph reported @odata.count 7"
    ):
        source(graph).read_groups(["payments-dev"])


# -- secrets ------------------------------------------------------------------------------------
def test_wrong_secret_error_and_repr_do_not_leak(graph: GraphEmulator) -> None:
    wrong = "not-the-right-secret-4567"
    src = source(graph, EntraClientSecretAuth(SecretStr(wrong)))
    assert wrong not in repr(src)
    with pytest.raises(IdentityReadError) as info:
        src.read_groups(["payments-dev"])
    text = str(info.value)
    assert "AADSTS7000215: Invalid client secret provided" in text
    assert wrong not in text and SECRET not in text


def test_certificate_not_in_repr(graph: GraphEmulator) -> None:
    pem = private_pem(CERT_KEY)
    src = source(graph, EntraCertificateAuth(certificate=SecretStr(pem + cert_pem(CERT))))
    text = repr(src) + repr(src.auth)
    for line in pem.splitlines()[1:-1]:
        assert line not in text


# -- short-lived CI tokens: re-read at every exchange ------------------------------------------
def _ci_token_with_jti(jti: str, lifetime_s: int = 600) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": "api://AzureADTokenExchange",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_s,
        "jti": jti,
    }
    return jwt.encode(claims, private_pem(CI_KEY), algorithm="RS256")


def test_federated_token_file_is_reread_at_every_exchange(graph: GraphEmulator, tmp_path: Path) -> None:
    """One credential (one run), two token exchanges: the CI rewrote the token file in
    between (GitHub tokens expire in minutes), and the second exchange presents the new one."""
    import asyncio

    token_file = tmp_path / "oidc.jwt"
    token_file.write_text(_ci_token_with_jti("first", lifetime_s=2), encoding="ascii")
    src = source(graph, EntraWorkloadIdentityAuth(token_file=token_file))
    graph.federated_jtis.clear()
    lifetime = graph.token_lifetime
    graph.token_lifetime = 1  # Graph access tokens expire at once: the next call must exchange again

    async def two_exchanges() -> None:
        credential = src._credential()
        try:
            await credential.get_token(src.graph_scope)
            # The CI's refresher replaces the file (scripts/oidc-token-file.sh); the first
            # assertion is now expired, so a credential that kept it would be refused.
            token_file.write_text(_ci_token_with_jti("second"), encoding="ascii")
            await asyncio.sleep(2.5)
            await credential.get_token(src.graph_scope)
        finally:
            await credential.close()

    try:
        asyncio.run(two_exchanges())
    finally:
        graph.token_lifetime = lifetime
    assert graph.federated_jtis == ["first", "second"]
