"""Group membership over one bound LDAP connection: people, groups, nesting, AD specifics.

* People: one paged search of ``userBase`` with ``userFilter`` reads every candidate once (DN →
  username, email, enabled); a second, with ``(&userFilter disabledFilter)``, marks OpenLDAP
  accounts that are locked/disabled. AD: ``userAccountControl`` bit 0x2 (ACCOUNTDISABLE).
* A mapped group: the one entry under ``groupBase`` matching ``(&groupFilter (nameAttr=name))``;
  none, or more than one, is an error naming the group.
* Members: ``member``/``uniqueMember`` values are DNs; a DN that is a person counts, a DN that is a
  group is read in turn (nested groups) with cycle detection and a depth limit. ``memberUid``
  (posixGroup) values are the people's ``uid``s and do not nest.
* AD ranged retrieval: a group with more values than the DC's MaxValRange returns
  ``member;range=0-1499``; the rest is read with ``member;range=1500-*`` until the range ends in ``*``.
* AD in-chain rule (``matchingRuleInChain``): people are searched with
  ``(memberOf:1.2.840.113556.1.4.1941:=<group DN>)``, which the DC resolves transitively.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

import ldap
import ldap.dn
import ldap.filter

from components.identity.base import Person, normalise_username
from components.identity.ldap_client import Entry, LdapConnection, NoSuchEntry

logger = logging.getLogger("cf_access.identity")
IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN (AD)
ACCOUNTDISABLE = 0x2
RANGE = re.compile(r"^(?P<attr>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Directory:
    """What to read where (the directory-layout part of an LDAP source's settings)."""

    source: str
    origin: str
    user_base: str
    user_filter: str
    group_base: str
    group_filter: str
    group_name_attribute: str = "cn"
    member_attribute: str = "member"
    username_attribute: str = "mail"
    email_attribute: str = "mail"
    disabled_filter: str | None = None
    active_directory: bool = False
    nested_groups: bool = True
    max_depth: int = 10
    in_chain: bool = False


def dn_key(dn: str) -> str:
    """A DN in a form two spellings of the same DN share (attribute types and values case-folded,
    spacing normalised); DNs in LDAP are compared case-insensitively for these schemas."""
    try:
        return str(ldap.dn.dn2str(ldap.dn.str2dn(dn))).casefold()
    except ldap.DECODING_ERROR:
        return dn.strip().casefold()


def _first(entry: Mapping[str, list[bytes]], attr: str) -> str | None:
    for key, values in entry.items():
        if key.casefold() == attr.casefold() and values:
            return values[0].decode("utf-8", "replace")
    return None


def _values(entry: Mapping[str, list[bytes]], attr: str) -> list[str]:
    out: list[str] = []
    for key, values in entry.items():
        if key.casefold() == attr.casefold():
            out.extend(v.decode("utf-8", "replace") for v in values)
    return out


class MemberReader:
    """Reads people once, then the transitive members of each mapped group."""

    def __init__(self, conn: LdapConnection, directory: Directory) -> None:
        self.conn = conn
        self.d = directory
        self.people: dict[str, Person] = {}  # dn_key → person
        self.by_uid: dict[str, str] = {}  # uid → dn_key (memberUid groups)
        self.nameless: dict[str, str] = {}  # dn_key → DN of people without the username attribute
        self._groups: dict[str, Entry | None] = {}  # dn_key → group entry (None: not a group)

    # -- people ----------------------------------------------------------------------------------
    def load_people(self) -> None:
        d = self.d
        attrs = sorted({d.username_attribute, d.email_attribute, "uid", "displayName", "cn"})
        if d.active_directory:
            attrs.append("userAccountControl")
        disabled = self._disabled_dns()
        for dn, entry in self.conn.iter_search(
            d.user_base, ldap.SCOPE_SUBTREE, d.user_filter, attrs, group=None, what="reading users"
        ):
            key = dn_key(dn)
            uid = _first(entry, "uid")
            raw = _first(entry, d.username_attribute)
            if raw is None:
                # No CF username: an error only if a mapped group lists them (``_check_named``).
                self.nameless[key] = dn
                if uid is not None:
                    self.by_uid[uid.casefold()] = key
                continue
            try:
                username = normalise_username(raw)
                email = _first(entry, d.email_attribute)
                email = normalise_username(email) if email else None
            except ValueError as exc:
                raise self.conn.error(None, f"user {dn!r}: {exc}") from None
            self.people[key] = Person(
                username=username,
                origin=d.origin,
                active=key not in disabled and not self._ad_disabled(dn, entry),
                source=d.source,
                external_id=dn,
                email=email,
                display_name=_first(entry, "displayName") or _first(entry, "cn"),
            )
            if uid is not None:
                self.by_uid[uid.casefold()] = key
        logger.debug("%s: %d users under %s", d.source, len(self.people), d.user_base)

    def _disabled_dns(self) -> set[str]:
        d = self.d
        if not d.disabled_filter:
            return set()
        flt = f"(&{d.user_filter}{d.disabled_filter})"
        entries = self.conn.search(
            d.user_base, ldap.SCOPE_SUBTREE, flt, ["1.1"], group=None, what="reading disabled users"
        )
        return {dn_key(dn) for dn, _ in entries}

    def _ad_disabled(self, dn: str, entry: Mapping[str, list[bytes]]) -> bool:
        if not self.d.active_directory:
            return False
        raw = _first(entry, "userAccountControl")
        if raw is None:
            return False
        try:
            return bool(int(raw) & ACCOUNTDISABLE)
        except ValueError:
            raise self.conn.error(None, f"user {dn!r}: userAccountControl {raw!r} is not a number") from None

    # -- groups ----------------------------------------------------------------------------------
    def members(self, name: str) -> tuple[Person, ...]:
        dn, entry = self.find_group(name)
        if self.d.in_chain:
            keys = self._in_chain(name, dn)
        elif self.d.member_attribute.casefold() == "memberuid":
            keys = self._member_uids(name, entry)
        else:
            keys = self._transitive(name, dn, entry)
        self._check_named(name, keys)
        return self._unique(name, [self.people[k] for k in keys])

    def _unique(self, name: str, people: list[Person]) -> tuple[Person, ...]:
        """The group's people by username; two entries with one CF username fail the group (which of
        them would the CF user be?), like a user seen twice in the SDK sources."""
        owners: dict[str, str] = {}
        for person in sorted(people, key=lambda p: (p.username, p.external_id)):
            other = owners.setdefault(person.username, person.external_id)
            if other != person.external_id:
                raise self.conn.error(
                    name,
                    f"users {other!r} and {person.external_id!r} both map to username {person.username!r} "
                    f"({self.d.username_attribute}); usernames must be unique",
                )
        return tuple(sorted(people, key=lambda p: p.username))

    def _check_named(self, name: str, keys: set[str]) -> None:
        """Fail closed when a member has no username attribute: leaving them out would silently
        take their roles away, and guessing another attribute could grant the wrong CF user."""
        missing = sorted(self.nameless[k] for k in keys if k in self.nameless)
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise self.conn.error(
                name,
                f"member {'; '.join(repr(m) for m in missing[:3])}{more} has no "
                f"{self.d.username_attribute} (usernameAttribute): set it in the directory, or "
                "choose another usernameAttribute",
            )

    def find_group(self, name: str) -> Entry:
        d = self.d
        flt = f"(&{d.group_filter}({d.group_name_attribute}={ldap.filter.escape_filter_chars(name)}))"
        entries = self.conn.search(
            d.group_base, ldap.SCOPE_SUBTREE, flt, self._group_attrs(), group=name, what="finding the group"
        )
        if not entries:
            raise self.conn.error(
                name,
                f"group not found: no entry under {d.group_base!r} matches {flt} "
                "(check the name in the mapping, groupBase and groupFilter)",
            )
        if len(entries) > 1:
            dns = "; ".join(sorted(dn for dn, _ in entries))
            raise self.conn.error(
                name, f"{len(entries)} groups match {flt} ({dns}); group names must be unique"
            )
        dn, entry = entries[0]
        self._groups[dn_key(dn)] = entries[0]
        return dn, entry

    def _group_attrs(self) -> list[str]:
        return [self.d.group_name_attribute, self.d.member_attribute]

    def _member_uids(self, name: str, entry: Mapping[str, list[bytes]]) -> set[str]:
        keys: set[str] = set()
        for uid in _values(entry, self.d.member_attribute):
            key = self.by_uid.get(uid.strip().casefold())  # people and nameless people
            if key is None:
                logger.info(
                    "%s:%s: memberUid %r matches no user under userBase; ignored", self.d.source, name, uid
                )
            else:
                keys.add(key)
        return keys

    def _in_chain(self, name: str, dn: str) -> set[str]:
        d = self.d
        flt = f"(&{d.user_filter}(memberOf:{IN_CHAIN}:={ldap.filter.escape_filter_chars(dn)}))"
        entries = self.conn.search(
            d.user_base, ldap.SCOPE_SUBTREE, flt, ["1.1"], group=name, what="reading members (in-chain rule)"
        )
        return {
            k for k in (dn_key(member) for member, _ in entries) if k in self.people or k in self.nameless
        }

    def _transitive(self, name: str, dn: str, entry: Mapping[str, list[bytes]]) -> set[str]:
        """People reachable from the group through nested groups; a group already on the path is a
        cycle (skipped: its members are being collected already); deeper than ``max_depth`` fails."""
        found: set[str] = set()
        expanded: set[str] = set()

        def visit(group_dn: str, group_entry: Mapping[str, list[bytes]], path: tuple[str, ...]) -> None:
            key = dn_key(group_dn)
            if key in path:
                logger.info(
                    "%s:%s: group cycle through %r; not followed again", self.d.source, name, group_dn
                )
                return
            if key in expanded:
                return
            if len(path) > self.d.max_depth:
                chain = " -> ".join([*path, key])
                raise self.conn.error(
                    name,
                    f"groups nest deeper than maxNestingDepth={self.d.max_depth} ({chain}); "
                    "raise maxNestingDepth if this is intended",
                )
            expanded.add(key)
            for member in self._member_dns(name, group_dn, group_entry):
                member_key = dn_key(member)
                if member_key in self.people or member_key in self.nameless:
                    found.add(member_key)
                    continue
                if not self.d.nested_groups:
                    continue
                nested = self._group_by_dn(name, member)
                if nested is not None:
                    visit(nested[0], nested[1], (*path, key))
                else:
                    logger.debug(
                        "%s:%s: member %r is neither a user nor a group; ignored", self.d.source, name, member
                    )

        visit(dn, entry, ())
        return found

    def _group_by_dn(self, name: str, dn: str) -> Entry | None:
        key = dn_key(dn)
        if key not in self._groups:
            try:
                entries = self.conn.search(
                    dn,
                    ldap.SCOPE_BASE,
                    self.d.group_filter,
                    self._group_attrs(),
                    group=name,
                    what=f"reading nested group {dn!r}",
                )
            except NoSuchEntry:
                entries = []  # a dangling member DN (deleted entry): not a group, not a person
            self._groups[key] = entries[0] if entries else None
        return self._groups[key]

    def _member_dns(self, name: str, dn: str, entry: Mapping[str, list[bytes]]) -> list[str]:
        """The member attribute's values, following AD ranged retrieval when the DC split them."""
        attr = self.d.member_attribute
        values = _values(entry, attr)
        ranged = [
            (k, v)
            for k, v in entry.items()
            if (m := RANGE.match(k)) and m["attr"].casefold() == attr.casefold()
        ]
        if not ranged:
            return values
        if not self.d.active_directory:
            raise self.conn.error(
                name, f"group {dn!r} returned ranged values ({ranged[0][0]}); set activeDirectory: true"
            )
        key, first = ranged[0]
        values.extend(v.decode("utf-8", "replace") for v in first)
        match = RANGE.match(key)
        assert match is not None
        high = match["high"]
        while high != "*":
            low = int(high) + 1
            wanted = f"{attr};range={low}-*"
            entries = self.conn.search(
                dn,
                ldap.SCOPE_BASE,
                "(objectClass=*)",
                [wanted],
                group=name,
                what=f"reading {wanted} of {dn!r}",
            )
            part = [(k, v) for _, e in entries for k, v in e.items() if (m := RANGE.match(k))]
            if len(part) != 1:
                raise self.conn.error(
                    name,
                    f"ranged retrieval of {wanted} on {dn!r} returned no range; the list would be incomplete",
                )
            got_key, got = part[0]
            got_match = RANGE.match(got_key)
            assert got_match is not None
            if int(got_match["low"]) != low:
                raise self.conn.error(
                    name, f"ranged retrieval asked for {wanted} on {dn!r} but got {got_key}"
                )
            values.extend(v.decode("utf-8", "replace") for v in got)
            high = got_match["high"]
        logger.debug("%s:%s: %d values of %s via ranged retrieval", self.d.source, name, len(values), attr)
        return values
