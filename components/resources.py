"""Pulumi resources: the plan declared as users, org components and memberships.

URNs are built from names only (org, space, role type, origin/username), so
they stay stable across runs and read well in previews:

    cf-access:index:OrgAccess                  payments
      pulumi-python:dynamic/cf:RoleMembership    payments:organization_user
      pulumi-python:dynamic/cf:RoleMembership    payments/dev:space_developer
    cf-access:index:Users                      users
      pulumi-python:dynamic/cf:UserSet           users:corp-sso

Users are one map per UAA origin, not one resource per person: at 10,000 people
per-person resources were 80% of the program's registrations and of its run time
(docs/performance.md). Memberships create the users they add.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from components.cloudfoundry.providers import USER_SET_ENTRY, MembershipProvider, UserSetProvider
from components.model import ORG_USER, Membership, UserRef
from components.plan import AccessPlan, OrgPlan
from components.pulumi_sdk import (
    drain_outputs_in_batches,
    keep_only_source_positions,
    quiet_sdk_debug_logs,
    serialize_providers_once,
)

# One provider instance of each kind: dill pickles the class by reference, plus the
# stack name (for the audit trail; the engine does not tell dynamic providers).
_USER_SET_PROVIDER = UserSetProvider(stack=pulumi.get_stack())
_MEMBERSHIP_PROVIDER = MembershipProvider(stack=pulumi.get_stack())


# Measured SDK costs at scale (components/pulumi_sdk.py, docs/performance.md).
serialize_providers_once((_USER_SET_PROVIDER, _MEMBERSHIP_PROVIDER))
drain_outputs_in_batches()
quiet_sdk_debug_logs(os.environ)
keep_only_source_positions()


class UserSet(Resource, module="cf", name="UserSet"):
    """Every CF user cf-access manages for one UAA origin, as a map of member keys."""

    def __init__(self, origin: str, keys: Sequence[str], opts: pulumi.ResourceOptions) -> None:
        props: dict[str, Any] = {"origin": origin, "users": dict.fromkeys(sorted(keys), USER_SET_ENTRY)}
        super().__init__(_USER_SET_PROVIDER, f"users:{origin}", props, opts)


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


class OrgAccess(pulumi.ComponentResource):
    """An org's memberships: its org roles and the roles of each of its spaces.

    Space memberships are children of the org (their names carry the space). Until
    this version they sat under a ``SpaceAccess`` component per space; an alias keeps
    their identity, so upgrading is a no-op (2,000 fewer components to register at
    10,000 people, docs/performance.md).
    """

    def __init__(self, org: OrgPlan) -> None:
        super().__init__("cf-access:index:OrgAccess", org.name, None, None)
        counts: dict[str, int] = {}
        self.memberships: list[RoleMembership] = []
        spaces: list[RoleMembership] = []
        for space in org.spaces:
            was_under = pulumi.Alias(parent=_space_access_urn(org.name, space.name))
            for membership in space.memberships:
                opts = pulumi.ResourceOptions(parent=self, aliases=[was_under])
                spaces.append(RoleMembership(membership, opts))
                counts[f"{space.name}/{membership.role}"] = len(membership.members)
        for membership in org.org_memberships:
            # organization_user goes after the org's space memberships: their adds grant it
            # first where missing (CC needs it before a space role), and its removals must
            # wait until the person's space roles are gone (CC refuses otherwise). A destroy
            # runs the other way round; the provider defers those removals (providers.py).
            deps: list[pulumi.Resource] = list(spaces) if membership.role == ORG_USER else []
            resource = RoleMembership(membership, pulumi.ResourceOptions(parent=self, depends_on=deps))
            self.memberships.append(resource)
            counts[membership.role] = len(membership.members)
        self.memberships.extend(spaces)
        self.register_outputs({"ownership": org.ownership, "members": counts})


def _space_access_urn(org: str, space: str) -> str:
    """The URN of the retired per-space component (the parent of space memberships before)."""
    parent_type = "cf-access:index:OrgAccess$cf-access:index:SpaceAccess"
    return f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{parent_type}::{org}/{space}"


class Users(pulumi.ComponentResource):
    """One ``cf:UserSet`` per UAA origin, ordered after every membership.

    Memberships create the users they add, so nothing waits for users; and a leaver is
    deprovisioned only after every membership has removed their roles.
    """

    def __init__(
        self, refs: Sequence[UserRef], memberships: Sequence[RoleMembership], retiring: Sequence[str] = ()
    ) -> None:
        super().__init__("cf-access:index:Users", "users", None, None)
        by_origin: dict[str, list[str]] = defaultdict(list)
        for origin in retiring:  # an origin nobody is granted any more: emptied for one run
            by_origin[origin] = []
        for ref in refs:
            by_origin[ref.origin].append(ref.key)
        opts = pulumi.ResourceOptions(parent=self, depends_on=list(memberships))
        self.sets = {origin: UserSet(origin, keys, opts) for origin, keys in sorted(by_origin.items())}
        self.register_outputs({"count": len(refs)})


def declare(plan: AccessPlan, retiring_user_sets: Sequence[str] = ()) -> dict[str, OrgAccess]:
    """Register every resource of the (declared) plan; returns the org components by name.

    ``plan`` is ``RunChanges.declared``: the mappings' plan plus memberships that left the
    mappings (emptied for one run) and kept organization_users (components/changes.py)."""
    orgs = {org.name: OrgAccess(org) for org in plan.orgs}
    memberships = [m for org in orgs.values() for m in org.memberships]
    Users([user.ref for user in plan.users], memberships, retiring_user_sets)
    return orgs
