"""The LDAP source against a real OpenLDAP ``slapd`` on 127.0.0.1 (started here, loaded over LDAP).

slapd runs with ``sizelimit 100``: the 250-member group can only be read completely by paging.
Each failure mode must raise ``IdentityReadError`` naming the server and the group, never showing
the bind password.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.identity.base import IdentityReadError, Person
from components.identity.config import LDAP_PASSWORD_ENV, IdentityConfigError, parse_identity_sources
from components.identity.ldap_source import LdapSource
from sandbox.idp.tls import make_server_tls
from sandbox.slapd import data as D
from sandbox.slapd.server import SlapdServer, free_port

BIND_PASSWORD = "ldap-bind-Secret-7731"
SIZE_LIMIT = 100
BIG = [D.User(f"user{i:03d}", f"User{i:03d}@Corp.com", f"User {i:03d}") for i in range(250)]
USERS = [
    D.User("alice", "Alice@Corp.com", "Alice Andersen"),
    D.User("bob", "bob@corp.com", "Bob Brown", locked=True),
    D.User("carol", "carol@corp.com", "Carol Chen"),
    D.User("dave", "dave@corp.com", "Dave Diaz"),
    D.User("erin", "erin@corp.com", "Erin Evans"),
    *BIG,
]
# Three deep with a cycle: eng -> eng-platform -> eng-sre -> eng-oncall -> eng (again).
GROUPS = [
    D.Group("eng", ("alice",), ("eng-platform",)),
    D.Group("eng-platform", ("bob",), ("eng-sre",)),
    D.Group("eng-sre", ("carol",), ("eng-oncall",)),
    D.Group("eng-oncall", ("dave",), ("eng",)),
    D.Group("everyone", tuple(u.uid for u in BIG)),
    D.Group("solo", ("erin",)),
]


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    with SlapdServer.start(tmp_path_factory.mktemp("slapd"), size_limit=SIZE_LIMIT) as server:
        conn = server.admin()
        D.load(conn, D.Data(USERS, GROUPS), BIND_PASSWORD)
        conn.add_s(
            f"cn=posix-devs,{D.GROUPS}",
            [
                ("objectClass", [b"posixGroup"]),
                ("cn", [b"posix-devs"]),
                ("gidNumber", [b"5000"]),
                ("memberUid", [b"alice", b"carol", b"nobody-here"]),
            ],
        )
        # A person without mail (the default usernameAttribute) in a group of their own.
        conn.add_s(
            D.user_dn("nomail"),
            [
                ("objectClass", [b"inetOrgPerson"]),
                ("uid", [b"nomail"]),
                ("cn", [b"No Mail"]),
                ("sn", [b"Mail"]),
            ],
        )
        D.add_group(conn, D.Group("nameless", ("nomail", "erin")))
        D.add_user(conn, D.User("twin1", "Twin@Corp.com"))
        D.add_user(conn, D.User("twin2", "twin@corp.com"))
        D.add_group(conn, D.Group("twins", ("twin1", "twin2")))
        conn.unbind_s()
        yield server


def config(server: SlapdServer, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "ldap",
        "urls": [server.url],
        "caBundle": str(server.tls.ca_file),
        "bindDn": D.BIND_DN,
        "bindPassword": BIND_PASSWORD,
        "userBase": D.PEOPLE,
        "userFilter": "(objectClass=inetOrgPerson)",
        "groupBase": D.GROUPS,
        "groupFilter": "(objectClass=groupOfNames)",
        "usernameAttribute": "mail",
        "disabledFilter": "(pwdAccountLockedTime=*)",
        "origin": "corp-ldap",
        "pageSize": 40,
        "connectTimeoutSeconds": 3,
        "operationTimeoutSeconds": 5,
        **overrides,
    }


def source(server: SlapdServer, **overrides: Any) -> LdapSource:
    built = parse_identity_sources({"ldap": config(server, **overrides)}, Path.cwd())["ldap"]
    assert isinstance(built, LdapSource)
    return built


def names(people: tuple[Person, ...]) -> list[str]:
    return [p.username for p in people]


def read_error(src: LdapSource, group: str) -> IdentityReadError:
    with pytest.raises(IdentityReadError) as caught:
        src.read_groups([group])
    assert BIND_PASSWORD not in str(caught.value)
    return caught.value


def test_nested_three_deep_with_a_cycle(slapd: SlapdServer, caplog: pytest.LogCaptureFixture) -> None:
    src = source(slapd)
    with caplog.at_level(logging.INFO, logger="cf_access.identity"):
        got = src.read_groups(["eng", "eng-sre"])
    assert names(got["eng"]) == ["alice@corp.com", "bob@corp.com", "carol@corp.com", "dave@corp.com"]
    # The cycle brings eng (and everything under it) into eng-sre as well.
    assert names(got["eng-sre"]) == names(got["eng"])
    assert "group cycle" in caplog.text
    people = {p.username: p for p in got["eng"]}
    assert people["alice@corp.com"].origin == "corp-ldap" and people["alice@corp.com"].active
    assert not people["bob@corp.com"].active, "pwdAccountLockedTime marks a leaver"
    assert people["alice@corp.com"].external_id == D.user_dn("alice")


def test_depth_limit_fails_closed(slapd: SlapdServer) -> None:
    err = read_error(source(slapd, maxNestingDepth=2), "eng")
    assert err.group == "eng" and "maxNestingDepth=2" in err.message and slapd.url in err.message


def test_group_larger_than_the_size_limit_is_read_completely(slapd: SlapdServer) -> None:
    src = source(slapd, pageSize=40)
    got = src.read_groups(["everyone"])
    assert len(got["everyone"]) == 250 > SIZE_LIMIT
    assert names(got["everyone"])[0] == "user000@corp.com"  # usernames case-folded
    assert src.last_read is not None and src.last_read.pages >= 255 // 40


def test_member_uid_groups(slapd: SlapdServer) -> None:
    got = source(slapd, memberAttribute="memberUid", groupFilter="(objectClass=posixGroup)").read_groups(
        ["posix-devs"]
    )
    assert names(got["posix-devs"]) == ["alice@corp.com", "carol@corp.com"]


def test_username_attribute_uid(slapd: SlapdServer) -> None:
    assert names(source(slapd, usernameAttribute="uid").read_groups(["solo"])["solo"]) == ["erin"]


def test_member_without_the_username_attribute_fails_closed(slapd: SlapdServer) -> None:
    err = read_error(source(slapd), "nameless")
    assert err.group == "nameless" and D.user_dn("nomail") in err.message and "has no mail" in err.message
    assert names(source(slapd, usernameAttribute="uid").read_groups(["nameless"])["nameless"]) == [
        "erin",
        "nomail",
    ]


def test_two_members_with_one_username_fail_closed(slapd: SlapdServer) -> None:
    # Two entries whose mail differs only in case: one CF username after case-folding.
    err = read_error(source(slapd), "twins")
    assert err.group == "twins" and "both map to username 'twin@corp.com'" in err.message


def test_failover_to_the_next_url_and_ldaps(slapd: SlapdServer) -> None:
    dead = f"ldap://127.0.0.1:{free_port()}"
    src = source(slapd, urls=[dead, slapd.url])
    assert names(src.read_groups(["solo"])["solo"]) == ["erin@corp.com"]
    assert src.last_read is not None and src.last_read.server == slapd.url
    tls = source(slapd, urls=[slapd.ldaps_url], tlsMinVersion="1.2")
    assert names(tls.read_groups(["solo"])["solo"]) == ["erin@corp.com"]


def test_every_url_down(slapd: SlapdServer) -> None:
    dead = f"ldap://127.0.0.1:{free_port()}"
    err = read_error(source(slapd, urls=[dead]), "solo")
    assert "cannot reach any LDAP server" in err.message and dead in err.message


def test_bind_refused(slapd: SlapdServer) -> None:
    err = read_error(source(slapd, bindPassword="wrong-password-1"), "solo")
    assert "bind as" in err.message and "refused" in err.message and slapd.url in err.message
    assert "groups not read: solo" in err.message
    assert "wrong-password-1" not in str(err)


def test_tls_failure(slapd: SlapdServer, tmp_path: Path) -> None:
    other_ca = make_server_tls(tmp_path / "other").ca_file
    err = read_error(source(slapd, caBundle=str(other_ca)), "solo")
    assert "TLS failed" in err.message and slapd.url in err.message and "groups not read: solo" in err.message
    # ldaps: libldap reports the failed handshake as "server down"; it is still a TLS failure,
    # final (no failover to the next URL) and named as such.
    err = read_error(source(slapd, urls=[slapd.ldaps_url, slapd.ldaps_url], caBundle=str(other_ca)), "solo")
    assert (
        "TLS failed" in err.message and slapd.ldaps_url in err.message and "cannot reach" not in err.message
    )


def test_missing_group(slapd: SlapdServer) -> None:
    err = read_error(source(slapd), "no-such-group")
    assert err.group == "no-such-group" and "group not found" in err.message and slapd.url in err.message


def test_timeout(slapd: SlapdServer) -> None:
    slapd.pause()
    try:
        err = read_error(source(slapd, operationTimeoutSeconds=1), "solo")
    finally:
        slapd.resume()
    assert "timed out" in err.message and slapd.url in err.message and "groups not read: solo" in err.message


def test_env_password_wins_and_missing_password(slapd: SlapdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LDAP_PASSWORD_ENV, BIND_PASSWORD)
    assert source(slapd, bindPassword="stale-config-value").read_groups(["solo"])
    monkeypatch.setenv("OTHER_LDAP_PW", "not-it-at-all")
    err = read_error(source(slapd, bindPasswordEnv="OTHER_LDAP_PW"), "solo")
    assert "refused" in err.message and "not-it-at-all" not in str(err)
    monkeypatch.delenv(LDAP_PASSWORD_ENV)
    cfg = config(slapd)
    del cfg["bindPassword"]
    with pytest.raises(IdentityConfigError) as caught:
        parse_identity_sources({"ldap": cfg}, Path.cwd())
    assert LDAP_PASSWORD_ENV in str(caught.value)
    assert os.environ.get(LDAP_PASSWORD_ENV) is None


def test_config_errors_name_the_key_and_hide_the_password(slapd: SlapdServer) -> None:
    with pytest.raises(IdentityConfigError) as caught:
        parse_identity_sources(
            {
                "ldap": config(
                    slapd, urls=["http://x"], startTls=False, bindPassword=["x"], memberAttribute="mbr"
                )
            },
            Path.cwd(),
        )
    text = str(caught.value)
    assert "cf-access:identitySources.ldap.urls" in text
    assert "cf-access:identitySources.ldap.memberAttribute" in text
    with pytest.raises(IdentityConfigError) as plain:
        parse_identity_sources({"ldap": config(slapd, startTls=False)}, Path.cwd())
    assert "in clear" in str(plain.value) and BIND_PASSWORD not in str(plain.value)


# Last in this module: they change the shared slapd (a referral object; stricter limits).
def test_referral_fails_closed(slapd: SlapdServer) -> None:
    conn = slapd.admin()
    D.add_referral(conn, "elsewhere", "ldap://127.0.0.1:1/ou=groups,dc=other")
    conn.unbind_s()
    err = read_error(source(slapd), "solo")
    assert err.group == "solo" and "referral" in err.message and slapd.url in err.message


def test_size_limit_exceeded_fails_closed(slapd: SlapdServer) -> None:
    slapd.restart(size_limit=SIZE_LIMIT, paged_unlimited=False)
    err = read_error(source(slapd), "solo")
    assert "size limit exceeded" in err.message and slapd.url in err.message and "solo" in err.message
