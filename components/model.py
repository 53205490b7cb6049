"""Core value types shared by mappings, identity sources, plan and resources.

Everything here is plain immutable data: no I/O, no Pulumi. The plan turns
mappings x identity snapshot into these; the resources layer turns them into
Pulumi resources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

OrgRoleType = Literal[
    "organization_manager",
    "organization_billing_manager",
    "organization_auditor",
    "organization_user",
]
SpaceRoleType = Literal[
    "space_developer",
    "space_manager",
    "space_auditor",
    "space_supporter",
]
RoleType = OrgRoleType | SpaceRoleType
Ownership = Literal["additive", "authoritative"]
DeprovisionPolicy = Literal["delete-user", "roles-only"]

ORG_ROLE_TYPES: tuple[OrgRoleType, ...] = get_args(OrgRoleType)
SPACE_ROLE_TYPES: tuple[SpaceRoleType, ...] = get_args(SpaceRoleType)
ORG_USER: OrgRoleType = "organization_user"


@dataclass(frozen=True, order=True)
class UserRef:
    """A CF user as cf-access names it: UAA origin plus normalised username."""

    origin: str
    username: str

    @property
    def key(self) -> str:
        """The member key used in membership maps and preview diffs."""
        return f"{self.origin}/{self.username}"

    @classmethod
    def parse(cls, key: str) -> UserRef:
        origin, sep, username = key.partition("/")
        if not sep or not origin or not username:
            raise ValueError(f"member key {key!r} is not '<origin>/<username>'")
        return cls(origin=origin, username=username)


@dataclass(frozen=True, order=True)
class Scope:
    """An org (space is None) or a space inside an org, by name."""

    org: str
    space: str | None = None

    @property
    def label(self) -> str:
        return self.org if self.space is None else f"{self.org}/{self.space}"


def role_key(scope: Scope, role: str) -> str:
    """A role's key inside its org's ``cf:OrgAccess``: ``organization_manager`` for an org
    role, ``dev/space_developer`` for a space role (what a reviewer reads in the preview)."""
    return role if scope.space is None else f"{scope.space}/{role}"


def parse_role_key(org: str, key: str) -> tuple[Scope, str]:
    """The inverse of ``role_key`` (role types hold no ``/``; space names may)."""
    space, sep, role = key.rpartition("/")
    return Scope(org, space if sep else None), role


@dataclass(frozen=True)
class Membership:
    """Desired holders of one role type in one scope.

    ``members`` maps ``UserRef.key`` to provenance: a short human-readable
    reason such as ``group okta:payments-dev (mappings/payments.yaml)`` - the file
    without a line number, because it is stored in state (``AccessPlan.located``
    has the ``file:line`` form).
    """

    scope: Scope
    role: RoleType
    ownership: Ownership
    members: dict[str, str] = field(default_factory=dict)
