"""People and groups for a sandbox slapd, written through LDAP (python-ldap ``add_s``/``modify_s``
bound as the root DN - what ``ldapadd`` does), never into the database files.

Layout under ``dc=corp,dc=example``::

    ou=people   uid=<uid>            inetOrgPerson (uid, mail, cn, sn, displayName)
    ou=groups   cn=<name>            groupOfNames, member = user DNs and nested group DNs
    ou=service  cn=cf-access         the read-only bind account (simpleSecurityObject)

A YAML description (``example.yaml``) lists users (``locked: true`` sets ppolicy's
``pwdAccountLockedTime``, i.e. a disabled account) and groups (``members``: uids, ``groups``:
nested group names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap
import ldap.modlist
import yaml
from ldap.ldapobject import LDAPObject

from sandbox.slapd.server import SUFFIX

PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SERVICE = f"ou=service,{SUFFIX}"
BIND_DN = f"cn=cf-access,{SERVICE}"
LOCKED = b"000001010000Z"  # ppolicy: locked until an administrator unlocks


def user_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


@dataclass(frozen=True)
class User:
    uid: str
    mail: str
    name: str = ""
    locked: bool = False


@dataclass(frozen=True)
class Group:
    name: str
    members: tuple[str, ...] = ()  # uids
    groups: tuple[str, ...] = ()  # nested group names

    def member_dns(self) -> list[str]:
        return [user_dn(u) for u in self.members] + [group_dn(g) for g in self.groups]


@dataclass
class Data:
    users: list[User] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    @classmethod
    def from_yaml(cls, path: Path) -> Data:
        raw: Mapping[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        users = [
            User(str(u["uid"]), str(u["mail"]), str(u.get("name", "")), bool(u.get("locked", False)))
            for u in raw.get("users", [])
        ]
        groups = [
            Group(str(name), tuple(g.get("members", [])), tuple(g.get("groups", [])))
            for name, g in (raw.get("groups") or {}).items()
        ]
        return cls(users, groups)


def _enc(values: Iterable[str]) -> list[bytes]:
    return [v.encode("utf-8") for v in values]


def add_base(conn: LDAPObject, bind_password: str) -> None:
    """The suffix, the three OUs and the bind account."""
    conn.add_s(SUFFIX, [("objectClass", [b"dcObject", b"organization"]), ("dc", [b"corp"]), ("o", [b"Corp"])])
    for ou in (PEOPLE, GROUPS, SERVICE):
        name = ou.split(",", 1)[0].split("=", 1)[1]
        conn.add_s(ou, [("objectClass", [b"organizationalUnit"]), ("ou", _enc([name]))])
    conn.add_s(
        BIND_DN,
        [
            ("objectClass", [b"applicationProcess", b"simpleSecurityObject"]),
            ("cn", [b"cf-access"]),
            ("userPassword", _enc([bind_password])),
        ],
    )


def add_user(conn: LDAPObject, user: User) -> None:
    name = user.name or user.uid
    attrs = [
        ("objectClass", [b"inetOrgPerson"]),
        ("uid", _enc([user.uid])),
        ("mail", _enc([user.mail])),
        ("cn", _enc([name])),
        ("sn", _enc([name.split()[-1]])),
        ("displayName", _enc([name])),
    ]
    conn.add_s(user_dn(user.uid), attrs)
    if user.locked:
        lock_user(conn, user.uid)


def add_group(conn: LDAPObject, group: Group) -> None:
    # groupOfNames needs at least one member; slapd (without refint) accepts DNs not added yet,
    # which is how cycles get in.
    members = group.member_dns() or [BIND_DN]
    conn.add_s(
        group_dn(group.name),
        [("objectClass", [b"groupOfNames"]), ("cn", _enc([group.name])), ("member", _enc(members))],
    )


def add_members(conn: LDAPObject, group: str, dns: Iterable[str]) -> None:
    conn.modify_s(group_dn(group), [(ldap.MOD_ADD, "member", _enc(dns))])


def lock_user(conn: LDAPObject, uid: str) -> None:
    """Disable an account the OpenLDAP way: ppolicy's pwdAccountLockedTime."""
    conn.modify_s(user_dn(uid), [(ldap.MOD_REPLACE, "pwdAccountLockedTime", [LOCKED])])


def load(conn: LDAPObject, data: Data, bind_password: str) -> None:
    add_base(conn, bind_password)
    for user in data.users:
        add_user(conn, user)
    for group in data.groups:
        add_group(conn, group)


def add_referral(conn: LDAPObject, name: str, target: str) -> None:
    """A referral object under ou=groups: subtree searches there now return a continuation
    reference to ``target`` (a server cf-access does not follow)."""
    conn.add_s(
        f"cn={name},{GROUPS}",
        [("objectClass", [b"referral", b"extensibleObject"]), ("cn", _enc([name])), ("ref", _enc([target]))],
    )
