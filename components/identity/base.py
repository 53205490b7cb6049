"""The interface every identity source implements, and the snapshot the plan reads.

A source (YAML directory now; Okta and Entra later) answers one question: who
is in these groups right now? It answers for *every* group asked, or raises
``IdentityReadError`` - it never returns an empty or partial answer, because an
empty group downstream means "remove everyone" (fail closed).

Group references are ``"<source>:<group>"`` ("qualified"); a bare ``"<group>"``
belongs to the default source. Usernames are normalised here and nowhere else.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from components.model import UserRef


class IdentityReadError(Exception):
    """A source could not read a group (or the whole source failed when ``group`` is None)."""

    def __init__(self, source: str, group: str | None, message: str) -> None:
        self.source = source
        self.group = group
        self.message = message
        where = f"{source}:{group}" if group is not None else source
        super().__init__(f"identity source {where}: {message}")


def normalise_username(raw: str) -> str:
    """The one place usernames are normalised: strip surrounding space, casefold.

    Raises ``ValueError`` for empty names and names with control or invisible
    characters (after stripping), so a stray newline never becomes a CF user.
    """
    if not isinstance(raw, str):
        raise ValueError(f"username must be a string, got {type(raw).__name__}")
    name = raw.strip().casefold()
    if not name:
        raise ValueError("empty username")
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            raise ValueError(f"username {raw!r} contains a control or invisible character (U+{ord(ch):04X})")
    return name


def split_group_ref(ref: str, default_source: str) -> tuple[str, str]:
    """``"okta:payments-dev"`` → ``("okta", "payments-dev")``; bare names get ``default_source``.

    The source is whatever precedes the first ``:``; group names may contain ``:``
    only when qualified (``"okta:App: Payments"``).
    """
    source, sep, group = ref.partition(":")
    if not sep:
        return default_source, ref
    return source, group


def qualify_group_ref(ref: str, default_source: str) -> str:
    source, group = split_group_ref(ref, default_source)
    return f"{source}:{group}"


@dataclass(frozen=True, order=True)
class Person:
    """A person as an identity source reports them (username already normalised)."""

    username: str
    origin: str
    active: bool
    source: str
    external_id: str
    email: str | None = None
    display_name: str | None = None

    @property
    def ref(self) -> UserRef:
        return UserRef(origin=self.origin, username=self.username)


@dataclass(frozen=True)
class GroupMembers:
    """One group's members, under its qualified reference (``"directory:payments-dev"``)."""

    ref: str
    members: tuple[Person, ...]


@dataclass(frozen=True)
class IdentitySnapshot:
    """Members of every group the mappings reference, keyed by qualified group ref."""

    groups: Mapping[str, tuple[Person, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", MappingProxyType(dict(self.groups)))

    def members(self, ref: str) -> tuple[Person, ...]:
        """Members of a qualified group ref; KeyError (never an empty tuple) when it was not read."""
        try:
            return self.groups[ref]
        except KeyError:
            raise KeyError(f"group {ref!r} is not in the identity snapshot (it was never read)") from None

    def group_members(self) -> tuple[GroupMembers, ...]:
        return tuple(GroupMembers(ref, self.groups[ref]) for ref in sorted(self.groups))


@runtime_checkable
class IdentitySource(Protocol):
    """What every identity source provides.

    ``name`` is the prefix used in mappings (``okta:payments-dev``); ``origin`` is
    the UAA origin its users get. ``read_groups`` takes bare group names of this
    source and returns members for every one of them, keyed by the same bare
    name, or raises ``IdentityReadError`` - a missing group is an error.
    """

    name: str
    origin: str

    def read_groups(self, names: Collection[str]) -> dict[str, tuple[Person, ...]]: ...


def read_snapshot(
    sources: Mapping[str, IdentitySource],
    group_refs: Collection[str],
    default_source: str,
) -> IdentitySnapshot:
    """Read every referenced group from its source into one snapshot (fail closed).

    ``group_refs`` may be qualified (``"okta:x"``) or bare (``"x"``, default source).
    Raises ``IdentityReadError`` when a ref names an unknown source, when a source
    fails, or when a source's answer leaves out a group it was asked for.
    """
    configured = ", ".join(sorted(sources)) or "none"
    if default_source not in sources:
        raise IdentityReadError(
            default_source, None, f"default source is not configured (configured: {configured})"
        )
    for key, src in sources.items():
        if src.name != key:
            raise IdentityReadError(key, None, f"source configured under {key!r} calls itself {src.name!r}")

    wanted: dict[str, set[str]] = {}
    for ref in group_refs:
        source, group = split_group_ref(ref, default_source)
        if source not in sources:
            raise IdentityReadError(
                source, group, f"unknown identity source {source!r} (configured: {configured})"
            )
        if not group:
            raise IdentityReadError(source, group, "empty group name")
        wanted.setdefault(source, set()).add(group)

    groups: dict[str, tuple[Person, ...]] = {}
    for source in sorted(wanted):
        names = sorted(wanted[source])
        src = sources[source]
        try:
            got = src.read_groups(names)
        except IdentityReadError:
            raise
        except Exception as exc:  # any failure of a source is fatal: never a partial snapshot
            raise IdentityReadError(source, None, f"read failed: {type(exc).__name__}: {exc}") from exc
        for name in names:
            if name not in got:
                raise IdentityReadError(source, name, "source returned no answer for this group")
            groups[f"{source}:{name}"] = tuple(got[name])
    return IdentitySnapshot(groups)
