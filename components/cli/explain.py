"""Every grant in the mappings, resolved to people: which file:line and which group
gives whom which role. Pure; ``why`` and ``doctor`` read it next to the plan (the
plan stays the authority on what is desired - this adds the *why*)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from components.identity.base import IdentitySnapshot
from components.mappings import Mappings
from components.model import UserRef
from components.plan import PlanSettings


@dataclass(frozen=True)
class Grant:
    org: str
    space: str | None
    role: str
    user: str  # member key origin/username
    via: str  # "group directory:payments-dev" | "named user"
    location: str  # mappings/payments.yaml:13
    until: dt.date | None = None
    status: str = "active"  # active | expired | inactive | protected

    @property
    def scope(self) -> str:
        return self.org if self.space is None else f"{self.org}/{self.space}"


def resolve_grants(
    mappings: Mappings, snapshot: IdentitySnapshot, settings: PlanSettings, today: dt.date
) -> list[Grant]:
    """Each (grant entry x person) of the mappings. Groups missing from the snapshot
    are skipped (``doctor`` reports them)."""
    out: list[Grant] = []
    default_origin = settings.source_origins.get(settings.default_source, "uaa")
    inactive = {p.ref for people in snapshot.groups.values() for p in people if not p.active}
    for org in mappings.orgs:
        for space, rg in org.all_role_grants():
            for g in rg.groups:
                ref = g.ref(settings.default_source)
                people = snapshot.groups.get(ref)
                if people is None:
                    continue
                for person in people:
                    status = _status(
                        person.ref, g.until, today, settings, not person.active or person.ref in inactive
                    )
                    out.append(
                        Grant(
                            org.name,
                            space,
                            rg.role,
                            person.ref.key,
                            f"group {ref}",
                            str(g.location),
                            g.until,
                            status,
                        )
                    )
            for u in rg.users:
                ref_user = UserRef(u.origin or default_origin, u.username)
                status = _status(ref_user, u.until, today, settings, ref_user in inactive)
                out.append(
                    Grant(
                        org.name, space, rg.role, ref_user.key, "named user", str(u.location), u.until, status
                    )
                )
    return sorted(out, key=lambda g: (g.org, g.space or "", g.role, g.user, g.location))


def _status(
    user: UserRef, until: dt.date | None, today: dt.date, settings: PlanSettings, inactive: bool
) -> str:
    if settings.is_protected(user):
        return "protected"
    if until is not None and until < today:
        return "expired"
    if inactive:
        return "inactive"
    return "active"
