"""The in-memory directory behind the AD-like LDAP server: entries, AD's computed ``memberOf``,
the filters cf-access sends (and, or, not, equality, presence, the in-chain extensible match),
and ranged retrieval of ``member``.

It is deliberately small and strict: an unsupported filter is an error (the client should see a
protocol failure, not a silently wrong answer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IN_CHAIN = "1.2.840.113556.1.4.1941"
RANGE_REQUEST = re.compile(r"^(?P<attr>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)


class UnsupportedFilter(Exception):
    pass


def norm_dn(dn: str) -> str:
    return ",".join(part.strip().casefold() for part in dn.split(","))


@dataclass
class Entry:
    dn: str
    attrs: dict[str, list[str]]

    def get(self, name: str) -> list[str]:
        for key, values in self.attrs.items():
            if key.casefold() == name.casefold():
                return values
        return []


@dataclass
class AdDirectory:
    """Entries by normalised DN; ``max_values`` is the DC's MaxValRange for ``member``."""

    entries: dict[str, Entry] = field(default_factory=dict)
    max_values: int = 1500
    bind_dn: str = ""
    bind_password: str = ""

    @classmethod
    def load(cls, path: Path) -> AdDirectory:
        raw: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        out = cls(
            max_values=int(raw.get("max_values", 1500)),
            bind_dn=str(raw["bind_dn"]),
            bind_password=str(raw["bind_password"]),
        )
        for item in raw["entries"]:
            attrs = {str(k): [str(v) for v in vs] for k, vs in item["attrs"].items()}
            out.entries[norm_dn(item["dn"])] = Entry(str(item["dn"]), attrs)
        return out

    # -- searching -------------------------------------------------------------------------------
    def scope(self, base: str, scope: int) -> Iterator[Entry]:
        key = norm_dn(base)
        if key not in self.entries and scope == 0:
            return
        for dn, entry in sorted(self.entries.items()):
            if (
                (scope == 0 and dn == key)
                or (scope == 1 and dn.partition(",")[2] == key)
                or (scope == 2 and (dn == key or dn.endswith("," + key)))
            ):
                yield entry

    def exists(self, dn: str) -> bool:
        return norm_dn(dn) in self.entries

    def groups_of(self, dn: str) -> set[str]:
        """Normalised DNs of every group ``dn`` is in, directly or through nesting (cycle-safe)."""
        direct: dict[str, set[str]] = {}
        for gkey, entry in self.entries.items():
            for member in entry.get("member"):
                direct.setdefault(norm_dn(member), set()).add(gkey)
        seen: set[str] = set()
        todo = list(direct.get(norm_dn(dn), ()))
        while todo:
            g = todo.pop()
            if g not in seen:
                seen.add(g)
                todo.extend(direct.get(g, ()))
        return seen

    def values(self, entry: Entry, name: str) -> list[str]:
        """Attribute values, with AD's computed ``memberOf`` (direct groups)."""
        if name.casefold() == "memberof":
            return [
                self.entries[g].dn for g in sorted(self.entries) if _has_member(self.entries[g], entry.dn)
            ]
        return entry.get(name)

    # -- result attributes -----------------------------------------------------------------------
    def project(self, entry: Entry, requested: Iterable[str]) -> list[tuple[str, list[str]]]:
        """The attributes a search returns: ``member`` over ``max_values`` comes back as
        ``member;range=0-<max-1>``, and ``member;range=<low>-*`` gives the next slice."""
        wanted = [r for r in requested if r != "1.1"]
        names = wanted or list(entry.attrs)
        out: list[tuple[str, list[str]]] = []
        for name in names:
            ranged = RANGE_REQUEST.match(name)
            if ranged is not None:
                out.extend(self._slice(entry, ranged["attr"], int(ranged["low"])))
                continue
            values = self.values(entry, name)
            if not values:
                continue
            if name.casefold() == "member" and len(values) > self.max_values:
                out.extend(self._slice(entry, "member", 0))
            else:
                out.append((_spelling(entry, name), values))
        return out

    def _slice(self, entry: Entry, attr: str, low: int) -> list[tuple[str, list[str]]]:
        values = entry.get(attr)
        if low >= len(values) and low > 0:
            return []
        chunk = values[low : low + self.max_values]
        end = low + len(chunk) - 1
        high = "*" if low + len(chunk) >= len(values) else str(end)
        return [(f"{attr};range={low}-{high}", chunk)]


def _spelling(entry: Entry, name: str) -> str:
    for key in entry.attrs:
        if key.casefold() == name.casefold():
            return key
    return name


def _has_member(group: Entry, dn: str) -> bool:
    key = norm_dn(dn)
    return any(norm_dn(m) == key for m in group.get("member"))


# -- filters: a small tree the protocol layer builds from ldaptor's filter objects ----------------
@dataclass(frozen=True)
class Filter:
    kind: str  # and, or, not, eq, present, in_chain
    attr: str = ""
    value: str = ""
    children: tuple[Filter, ...] = ()

    def matches(self, directory: AdDirectory, entry: Entry) -> bool:
        if self.kind == "and":
            return all(c.matches(directory, entry) for c in self.children)
        if self.kind == "or":
            return any(c.matches(directory, entry) for c in self.children)
        if self.kind == "not":
            return not self.children[0].matches(directory, entry)
        if self.kind == "present":
            return self.attr.casefold() == "objectclass" or bool(directory.values(entry, self.attr))
        if self.kind == "eq":
            values = directory.values(entry, self.attr)
            if self.attr.casefold() in ("member", "memberof"):
                return any(norm_dn(v) == norm_dn(self.value) for v in values)
            return any(v.casefold() == self.value.casefold() for v in values)
        if self.kind == "in_chain":
            if self.attr.casefold() != "memberof":
                raise UnsupportedFilter(f"in-chain rule on {self.attr}")
            return norm_dn(self.value) in directory.groups_of(entry.dn)
        raise UnsupportedFilter(self.kind)
