"""AD-only behaviours of the LDAP source against the AD-like LDAP server (``sandbox/ldap_ad``,
ldaptor over TLS on 127.0.0.1): ranged ``member`` retrieval, the in-chain rule,
``userAccountControl``, and a server that drops the paging cookie. python-ldap talks the real
protocol to it; nothing is mocked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.identity.base import IdentityReadError
from components.identity.config import parse_identity_sources
from components.identity.ldap_source import LdapSource
from sandbox.ldap_ad.launcher import AdServer, ad_entry, ad_server

BASE = "DC=ad,DC=example"
USERS = f"OU=Users,{BASE}"
GROUPS = f"OU=Groups,{BASE}"
BIND_DN = f"CN=svc-cf-access,OU=Service,{BASE}"
BIND_PASSWORD = "ad-bind-Secret-4410"
MAX_VALUES = 15  # the DC's MaxValRange, small so a 40-member group needs three ranges
NORMAL, DISABLED = "512", "514"  # userAccountControl: NORMAL_ACCOUNT, + ACCOUNTDISABLE (0x2)


def user(sam: str, uac: str = NORMAL) -> dict[str, Any]:
    return ad_entry(
        f"CN={sam},{USERS}",
        objectClass=["top", "person", "organizationalPerson", "user"],
        sAMAccountName=sam,
        userPrincipalName=f"{sam}@AD.example",
        mail=f"{sam}@corp.com",
        userAccountControl=uac,
    )


def group(name: str, *members: str) -> dict[str, Any]:
    return ad_entry(f"CN={name},{GROUPS}", objectClass=["top", "group"], cn=name, member=list(members))


def udn(sam: str) -> str:
    return f"CN={sam},{USERS}"


def gdn(name: str) -> str:
    return f"CN={name},{GROUPS}"


CROWD = [f"member{i:02d}" for i in range(40)]
ENTRIES = [
    *(user(s) for s in ("alice", "carol", "dave", *CROWD)),
    user("bob", DISABLED),
    # Three deep with a cycle: sre -> platform -> core -> sre.
    group("sre", udn("alice"), gdn("platform")),
    group("platform", udn("bob"), gdn("core")),
    group("core", udn("carol"), gdn("sre")),
    group("crowd", *(udn(s) for s in CROWD)),
]


def start(tmp: Path, **kwargs: Any) -> Any:
    return ad_server(
        tmp, ENTRIES, bind_dn=BIND_DN, bind_password=BIND_PASSWORD, max_values=MAX_VALUES, **kwargs
    )


@pytest.fixture(scope="module")
def ad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdServer]:
    with start(tmp_path_factory.mktemp("ad")) as server:
        yield server


def source(server: AdServer, **overrides: Any) -> LdapSource:
    cfg = {
        "type": "ldap",
        "urls": [server.url],
        "caBundle": str(server.tls.ca_file),
        "bindDn": BIND_DN,
        "bindPassword": BIND_PASSWORD,
        "userBase": USERS,
        "userFilter": "(objectClass=user)",
        "groupBase": GROUPS,
        "groupFilter": "(objectClass=group)",
        "usernameAttribute": "userPrincipalName",
        "activeDirectory": True,
        "origin": "corp-ad",
        "pageSize": 7,
        "operationTimeoutSeconds": 10,
        **overrides,
    }
    built = parse_identity_sources({"ad": cfg}, Path.cwd())["ad"]
    assert isinstance(built, LdapSource)
    return built


def test_ranged_member_retrieval_reads_every_member(ad: AdServer) -> None:
    got = source(ad).read_groups(["crowd"])["crowd"]
    assert [p.username for p in got] == [f"{s}@ad.example" for s in CROWD]


def test_ranged_values_without_active_directory_fail_closed(ad: AdServer) -> None:
    with pytest.raises(IdentityReadError) as caught:
        source(ad, activeDirectory=False).read_groups(["crowd"])
    assert "range" in caught.value.message and caught.value.group == "crowd"


@pytest.mark.parametrize("in_chain", [False, True])
def test_nested_groups_and_user_account_control(ad: AdServer, in_chain: bool) -> None:
    got = source(ad, matchingRuleInChain=in_chain).read_groups(["sre", "core"])
    expected = ["alice@ad.example", "bob@ad.example", "carol@ad.example"]
    assert [p.username for p in got["sre"]] == expected
    assert [p.username for p in got["core"]] == expected  # the cycle: core reaches sre again
    active = {p.username: p.active for p in got["sre"]}
    assert active == {"alice@ad.example": True, "bob@ad.example": False, "carol@ad.example": True}


def test_bind_refused_names_the_server(ad: AdServer) -> None:
    with pytest.raises(IdentityReadError) as caught:
        source(ad, bindPassword="not-the-password").read_groups(["sre"])
    assert "refused" in caught.value.message and ad.url in caught.value.message
    assert "not-the-password" not in str(caught.value)


def test_dropped_paging_cookie_fails_closed(tmp_path: Path) -> None:
    with start(tmp_path, drop_paging_after=1) as server, pytest.raises(IdentityReadError) as caught:
        source(server).read_groups(["crowd"])
    message = caught.value.message
    assert "dropped the paged-results control on page 2" in message and server.url in message
    assert "crowd" in message


def test_tls_below_the_minimum_version_fails_closed(tmp_path: Path) -> None:
    with start(tmp_path, max_tls="1.2") as server:
        assert source(server, tlsMinVersion="1.2").read_groups(["sre"])["sre"]
        with pytest.raises(IdentityReadError) as caught:
            source(server, tlsMinVersion="1.3").read_groups(["sre"])
    assert "TLS failed" in caught.value.message and server.url in caught.value.message
