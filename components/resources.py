"""Pulumi resources: the plan declared as users, org components and memberships.

URNs are built from names only (org, space, role type, origin/username), so
they stay stable across runs and read well in previews:

    cf-access:index:Users                      users
      pulumi-python:dynamic/cf:User              corp-sso/alice@corp.com
    cf-access:index:OrgAccess                  payments
      pulumi-python:dynamic/cf:RoleMembership    payments:organization_user
      cf-access:index:SpaceAccess                payments/dev
        pulumi-python:dynamic/cf:RoleMembership  payments/dev:space_developer
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from components.cloudfoundry.providers import MembershipProvider, UserProvider
from components.model import ORG_USER, Membership, UserRef
from components.plan import AccessPlan, OrgPlan

# One provider instance of each kind: dill pickles the class by reference, plus the
# stack name (for the audit trail; the engine does not tell dynamic providers).
_USER_PROVIDER = UserProvider(stack=pulumi.get_stack())
_MEMBERSHIP_PROVIDER = MembershipProvider(stack=pulumi.get_stack())


def _serialize_our_providers_once() -> None:
    """Serialize each of our two provider objects once per program run, not once per resource.

    The SDK (pulumi 3.260 ``dynamic.serialize_provider``) wraps ``pickle._Pickler._batch_setitems``
    in a new sorting closure on every call and never restores it, so the N-th dynamic resource
    pickles through N nested wrappers: past ~960 resources in one program the default recursion
    limit is hit (RecursionError, pulumi/pulumi#17803) - the M and L benchmarks (2,000 and 10,000
    users) cannot run without this. Our providers pickle to the same bytes every time (class by
    reference, ``__getstate__`` -> {}) and capture no Outputs, so caching is exact; it also saves
    the dill call per resource (pulumi/pulumi#6675). Other providers are left to the SDK.
    """
    from pulumi.dynamic import dynamic

    original = dynamic.serialize_provider
    if getattr(original, "_cf_access_once", False):
        return
    cache: dict[int, str] = {}
    ours = (_USER_PROVIDER, _MEMBERSHIP_PROVIDER)

    def serialize_provider(provider: Any) -> str:
        if not any(provider is p for p in ours):
            return str(original(provider))
        key = id(provider)
        if key not in cache:
            cache[key] = str(original(provider))
        return cache[key]

    serialize_provider._cf_access_once = True  # type: ignore[attr-defined]
    dynamic.serialize_provider = serialize_provider


_serialize_our_providers_once()


class CfUserResource(Resource, module="cf", name="User"):
    """A CF user (UAA shadow user + CC user)."""

    def __init__(self, ref: UserRef, opts: pulumi.ResourceOptions) -> None:
        props: dict[str, Any] = {"origin": ref.origin, "username": ref.username}
        super().__init__(_USER_PROVIDER, ref.key, props, opts)


class RoleMembership(Resource, module="cf", name="RoleMembership"):
    """Everyone holding one role type in one org or space."""

    def __init__(self, membership: Membership, opts: pulumi.ResourceOptions) -> None:
        props: dict[str, Any] = {
            "org": membership.scope.org,
            "space": membership.scope.space,
            "role": membership.role,
            "ownership": membership.ownership,
            "members": dict(sorted(membership.members.items())),
        }
        super().__init__(_MEMBERSHIP_PROVIDER, f"{membership.scope.label}:{membership.role}", props, opts)


def _user_deps(members: Mapping[str, str], users: Mapping[str, CfUserResource]) -> list[pulumi.Resource]:
    return [users[key] for key in sorted(members) if key in users]


class Users(pulumi.ComponentResource):
    def __init__(self, refs: Sequence[UserRef]) -> None:
        super().__init__("cf-access:index:Users", "users", None, None)
        self.by_key: dict[str, CfUserResource] = {
            ref.key: CfUserResource(ref, pulumi.ResourceOptions(parent=self)) for ref in refs
        }
        self.register_outputs({"count": len(self.by_key)})


class SpaceAccess(pulumi.ComponentResource):
    def __init__(
        self,
        org: str,
        name: str,
        memberships: Sequence[Membership],
        org_user: RoleMembership | None,
        users: Mapping[str, CfUserResource],
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__("cf-access:index:SpaceAccess", f"{org}/{name}", None, opts)
        for membership in memberships:
            deps: list[pulumi.Resource] = _user_deps(membership.members, users)
            if org_user is not None:
                # A space role needs organization_user first (CC returns 422 otherwise).
                deps.append(org_user)
            RoleMembership(membership, pulumi.ResourceOptions(parent=self, depends_on=deps))
        self.register_outputs({})


class OrgAccess(pulumi.ComponentResource):
    def __init__(self, org: OrgPlan, users: Mapping[str, CfUserResource]) -> None:
        super().__init__("cf-access:index:OrgAccess", org.name, None, None)
        org_user: RoleMembership | None = None
        counts: dict[str, int] = {}
        for membership in org.org_memberships:
            resource = RoleMembership(
                membership,
                pulumi.ResourceOptions(parent=self, depends_on=_user_deps(membership.members, users)),
            )
            counts[membership.role] = len(membership.members)
            if membership.role == ORG_USER:
                org_user = resource
        for space in org.spaces:
            SpaceAccess(
                org.name, space.name, space.memberships, org_user, users, pulumi.ResourceOptions(parent=self)
            )
            for membership in space.memberships:
                counts[f"{space.name}/{membership.role}"] = len(membership.members)
        self.register_outputs({"ownership": org.ownership, "members": counts})


def declare(plan: AccessPlan) -> dict[str, OrgAccess]:
    """Register every resource of the plan; returns the org components by name."""
    users = Users([user.ref for user in plan.users])
    return {org.name: OrgAccess(org, users.by_key) for org in plan.orgs}
