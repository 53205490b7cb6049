"""Pulumi resources: the plan declared as one resource per org plus the user sets.

URNs are built from names only (org, origin), so they stay stable across runs and
read well in previews:

    pulumi-python:dynamic/cf:OrgAccess         payments
    cf-access:index:Users                      users
      pulumi-python:dynamic/cf:UserSet           users:corp-sso

One ``cf:OrgAccess`` per org holds every org role and space role the org's mapping
grants (components/cloudfoundry/org_access.py): the mapping file, the resource and
the preview block are one thing, and the order CC needs between organization_user
and space roles is kept inside one provider operation. At 10,000 people that is
~400 resources instead of ~7,000 per-scope ones (docs/performance.md).

Users are one map per UAA origin, not one resource per person: at 10,000 people
per-person resources were 80% of the program's registrations and of its run time.
The org resources create the users they add.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from components.changes import Adopted
from components.cloudfoundry.org_access import OrgAccessProvider
from components.cloudfoundry.providers import USER_SET_ENTRY, UserSetProvider
from components.model import UserRef
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
_ORG_ACCESS_PROVIDER = OrgAccessProvider(stack=pulumi.get_stack())


# Measured SDK costs at scale (components/pulumi_sdk.py, docs/performance.md).
serialize_providers_once((_USER_SET_PROVIDER, _ORG_ACCESS_PROVIDER))
drain_outputs_in_batches()
quiet_sdk_debug_logs(os.environ)
keep_only_source_positions()


class UserSet(Resource, module="cf", name="UserSet"):
    """Every CF user cf-access manages for one UAA origin, as a map of member keys."""

    def __init__(self, origin: str, keys: Sequence[str], opts: pulumi.ResourceOptions) -> None:
        props: dict[str, Any] = {"origin": origin, "users": dict.fromkeys(sorted(keys), USER_SET_ENTRY)}
        super().__init__(_USER_SET_PROVIDER, f"users:{origin}", props, opts)


class OrgAccess(Resource, module="cf", name="OrgAccess"):
    """Every org role and space role cf-access grants in one org."""

    def __init__(self, org: OrgPlan, adopt: Mapping[str, Mapping[str, str]] | None = None) -> None:
        props: dict[str, Any] = {"org": org.name, "ownership": org.ownership, "roles": org.roles()}
        if adopt:
            # Only on the run that upgrades the org from the per-scope model (changes._adopt).
            props["adopt"] = {k: dict(sorted(v.items())) for k, v in sorted(adopt.items())}
        super().__init__(_ORG_ACCESS_PROVIDER, org.name, props, None)


class Users(pulumi.ComponentResource):
    """One ``cf:UserSet`` per UAA origin, ordered after every org.

    The orgs create the users they add, so nothing waits for users; and a leaver is
    deprovisioned only after every org has removed their roles.
    """

    def __init__(
        self, refs: Sequence[UserRef], orgs: Sequence[OrgAccess], retiring: Sequence[str] = ()
    ) -> None:
        super().__init__("cf-access:index:Users", "users", None, None)
        by_origin: dict[str, list[str]] = defaultdict(list)
        for origin in retiring:  # an origin nobody is granted any more: emptied for one run
            by_origin[origin] = []
        for ref in refs:
            by_origin[ref.origin].append(ref.key)
        opts = pulumi.ResourceOptions(parent=self, depends_on=list(orgs))
        self.sets = {origin: UserSet(origin, keys, opts) for origin, keys in sorted(by_origin.items())}
        self.register_outputs({"count": len(refs)})


def declare(
    plan: AccessPlan, retiring_user_sets: Sequence[str] = (), adopted: Adopted | None = None
) -> dict[str, OrgAccess]:
    """Register every resource of the (declared) plan; returns the org resources by name.

    ``plan`` is ``RunChanges.declared``: the mappings' plan plus orgs that left the mappings
    (emptied for one run) and kept organization_users (components/changes.py)."""
    adopted = adopted or {}
    orgs = {org.name: OrgAccess(org, adopted.get(org.name)) for org in plan.orgs}
    # People whose roles an upgraded org adopts stay tracked until the next run removes them.
    refs = {user.ref for user in plan.users}
    refs |= {UserRef.parse(k) for keys in adopted.values() for members in keys.values() for k in members}
    Users(sorted(refs), list(orgs.values()), retiring_user_sets)
    return orgs
