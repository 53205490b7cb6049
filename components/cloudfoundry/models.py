"""Typed results returned by the Cloud Foundry / UAA client (plain frozen data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ORG_ROLE_TYPES: frozenset[str] = frozenset(
    {"organization_user", "organization_auditor", "organization_manager", "organization_billing_manager"}
)
SPACE_ROLE_TYPES: frozenset[str] = frozenset(
    {"space_auditor", "space_developer", "space_manager", "space_supporter"}
)


@dataclass(frozen=True, slots=True)
class Org:
    guid: str
    name: str


@dataclass(frozen=True, slots=True)
class Space:
    guid: str
    name: str
    org_guid: str


@dataclass(frozen=True, slots=True)
class CfUser:
    """A Cloud Controller user. ``username``/``origin`` are None for clients and non-UAA guids."""

    guid: str
    username: str | None
    origin: str | None


@dataclass(frozen=True, slots=True)
class Role:
    """A CC role. Exactly one of ``org_guid`` (org role) and ``space_guid`` (space role) is set."""

    guid: str
    type: str
    user_guid: str
    org_guid: str | None
    space_guid: str | None

    @property
    def is_space_role(self) -> bool:
        return self.space_guid is not None


@dataclass(frozen=True, slots=True)
class UaaUser:
    id: str
    username: str
    origin: str


@dataclass(frozen=True, slots=True)
class Job:
    guid: str
    state: str
    operation: str | None
    errors: tuple[dict[str, Any], ...] = field(default=())
    warnings: tuple[dict[str, Any], ...] = field(default=())


# --------------------------------------------------------------------------- parsing


def _rel_guid(resource: dict[str, Any], name: str) -> str | None:
    rel = (resource.get("relationships") or {}).get(name) or {}
    data = rel.get("data")
    if isinstance(data, dict):
        guid = data.get("guid")
        return str(guid) if guid is not None else None
    return None


def parse_org(resource: dict[str, Any]) -> Org:
    return Org(guid=str(resource["guid"]), name=str(resource["name"]))


def parse_space(resource: dict[str, Any]) -> Space:
    org_guid = _rel_guid(resource, "organization")
    if org_guid is None:
        raise ValueError(f"space {resource.get('guid')!r} has no organization relationship")
    return Space(guid=str(resource["guid"]), name=str(resource["name"]), org_guid=org_guid)


def parse_cf_user(resource: dict[str, Any]) -> CfUser:
    username = resource.get("username")
    origin = resource.get("origin")
    return CfUser(
        guid=str(resource["guid"]),
        username=str(username) if username is not None else None,
        origin=str(origin) if origin is not None else None,
    )


def parse_role(resource: dict[str, Any]) -> Role:
    user_guid = _rel_guid(resource, "user")
    if user_guid is None:
        raise ValueError(f"role {resource.get('guid')!r} has no user relationship")
    return Role(
        guid=str(resource["guid"]),
        type=str(resource["type"]),
        user_guid=user_guid,
        org_guid=_rel_guid(resource, "organization"),
        space_guid=_rel_guid(resource, "space"),
    )


def parse_uaa_user(resource: dict[str, Any]) -> UaaUser:
    return UaaUser(
        id=str(resource["id"]),
        username=str(resource.get("userName", "")),
        origin=str(resource.get("origin") or "uaa"),
    )


def parse_job(resource: dict[str, Any]) -> Job:
    op = resource.get("operation")
    return Job(
        guid=str(resource["guid"]),
        state=str(resource.get("state", "")),
        operation=str(op) if op is not None else None,
        errors=tuple(e for e in resource.get("errors") or [] if isinstance(e, dict)),
        warnings=tuple(w for w in resource.get("warnings") or [] if isinstance(w, dict)),
    )


def user_key(user: CfUser) -> str | None:
    """The member key ``<origin>/<casefolded username>`` of a CF user, or None
    for users without a username (UAA clients such as the sync client itself:
    never managed)."""
    if not user.username or not user.origin:
        return None
    return f"{user.origin}/{user.username.casefold()}"
