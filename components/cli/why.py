"""``cf-access why USER``: every role the user should hold and why, next to what CF holds.

Desired roles come from the plan (the authority, exactly what ``pulumi up``
converges to); the reasons come from the mappings (``explain.resolve_grants``:
file:line and group). Each line is marked::

    =  desired and held in CF
    +  desired, not held in CF yet (the next up adds it)
    -  held in CF, granted by no mapping; the note says what the next up does about it,
       from the same "what will this run change" function the program uses
       (components/changes.py): removed, kept (organization_user for roles cf-access
       does not manage), protected, or left alone (not managed)
    !  a grant that does not apply: expired, protected user, inactive in the IdP
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from components.changes import Deployed, RoleChange, RunChanges, run_changes
from components.cli.explain import Grant, resolve_grants
from components.cli.inventory import Inventory
from components.identity.base import IdentitySnapshot, normalise_username
from components.mappings import Mappings
from components.model import ORG_ROLE_TYPES, SPACE_ROLE_TYPES, RoleType, UserRef
from components.plan import AccessPlan, PlanSettings


@dataclass(frozen=True, order=True)
class WhyLine:
    scope: str
    role: str
    mark: str  # = + - !
    reasons: tuple[str, ...]
    note: str = ""


def _matches(key: str, wanted: str) -> bool:
    if "/" in wanted:
        origin, _, name = wanted.partition("/")
        return key == f"{origin}/{normalise_username(name)}"
    return key.partition("/")[2] == normalise_username(wanted)


def explain_user(
    user: str,
    mappings: Mappings,
    snapshot: IdentitySnapshot,
    plan: AccessPlan,
    settings: PlanSettings,
    inventory: Inventory | None,
    today: dt.date,
    deployed: Deployed | None = None,
) -> dict[str, list[WhyLine]]:
    """Lines per member key the query matches (``name`` matches every origin).

    ``deployed`` is what cf-access manages (the stack's state); without it, what the next
    up does about a role no mapping grants cannot be known and the line says so."""
    grants = [g for g in resolve_grants(mappings, snapshot, settings, today) if _matches(g.user, user)]
    desired: dict[str, dict[tuple[str, str], str]] = defaultdict(dict)  # key -> (scope, role) -> provenance
    for m in plan.memberships():
        for key, provenance in m.members.items():
            if _matches(key, user):
                desired[key][(m.scope.label, m.role)] = provenance
    held: dict[str, set[tuple[str, str]]] = defaultdict(set)
    if inventory is not None:
        for key, held_role in inventory.keyed_roles():
            if _matches(key, user):
                held[key].add((held_role.scope, held_role.role))
    changes: RunChanges | None = None
    if inventory is not None and deployed is not None:
        changes = run_changes(plan, inventory.current_access(), deployed, _protected(settings))
    removed = {(c.member, c.scope, c.role): c for c in changes.removals} if changes else {}
    kept = {(c.member, c.scope, c.role): c for c in changes.kept} if changes else {}
    by_grant: dict[tuple[str, str, str], list[Grant]] = defaultdict(list)
    for g in grants:
        by_grant[(g.user, g.scope, g.role)].append(g)

    out: dict[str, list[WhyLine]] = {}
    for key in sorted(set(desired) | set(held) | {g.user for g in grants}):
        lines: list[WhyLine] = []
        for (scope, role), provenance in desired[key].items():
            explicit = [g for g in by_grant.get((key, scope, role), []) if g.status == "active"]
            located = plan.located_reason(scope, cast(RoleType, role), key) or provenance
            reasons = tuple(f"{g.via} ({g.location})" for g in explicit) or (located,)
            if inventory is None:
                mark, note = "+", "CF not read"
            elif (scope, role) in held[key]:
                mark, note = "=", ""
            else:
                mark, note = "+", "not in CF: the next up adds it"
            lines.append(WhyLine(scope, role, mark, reasons, note))
        for scope, role in held[key] - set(desired[key]):
            note = _held_note((key, scope, role), settings, changes, removed, kept)
            lines.append(WhyLine(scope, role, "-", (), note))
        for g in grants:
            if g.user == key and g.status != "active":
                lines.append(WhyLine(g.scope, g.role, "!", (f"{g.via} ({g.location})",), _inactive_note(g)))
        out[key] = sorted(lines, key=_order)
    return out


def _protected(settings: PlanSettings) -> Callable[[str], bool]:
    return lambda key: settings.is_protected(UserRef.parse(key))


def _held_note(
    held: tuple[str, str, str],
    settings: PlanSettings,
    changes: RunChanges | None,
    removed: dict[tuple[str, str, str], RoleChange],
    kept: dict[tuple[str, str, str], RoleChange],
) -> str:
    key = held[0]
    if settings.is_protected(UserRef.parse(key)):
        return "protected user: never added or removed by cf-access"
    if changes is None:
        return "granted by no mapping: what the next up does depends on the stack's state (give --stack)"
    if held in removed:
        return f"granted by no mapping: the next up removes it ({removed[held].reason})"
    if held in kept:
        return f"the next up keeps it: {kept[held].reason.removeprefix('kept: ')}"
    return "granted by no mapping, not managed by cf-access: left alone"


def _inactive_note(g: Grant) -> str:
    if g.status == "expired":
        return f"expired on {g.until.isoformat() if g.until else '?'}: not applied"
    if g.status == "protected":
        return "protected user: never added or removed by cf-access"
    return "inactive in the identity provider: not granted"


_ROLE_ORDER: dict[str, int] = {r: i for i, r in enumerate((*ORG_ROLE_TYPES, *SPACE_ROLE_TYPES))}


def _order(line: WhyLine) -> tuple[str, int, int, str]:
    org, _, space = line.scope.partition("/")
    return (org, 1 if space else 0, _ROLE_ORDER.get(line.role, 99), space + line.mark)


def render(user: str, result: dict[str, list[WhyLine]], describe: dict[str, str] | None = None) -> str:
    if not result:
        return f"{user}: no mapping grants this user anything, and CF shows no roles for them"
    out: list[str] = []
    for key, lines in result.items():
        title = key + (f" ({describe[key]})" if describe and key in describe else "")
        out.append(title)
        if not lines:
            out.append("  (nothing)")
        width = max((len(f"{ln.scope} {ln.role}") for ln in lines), default=0)
        for ln in lines:
            what = f"{ln.scope} {ln.role}".ljust(width)
            reason = "; ".join(ln.reasons) if ln.reasons else ""
            tail = "  ".join(t for t in (reason, f"[{ln.note}]" if ln.note else "") if t)
            out.append(f"  {ln.mark} {what}  {tail}".rstrip())
        out.append("")
    out.append(
        "= held and granted   + granted, not in CF yet   - held, granted by no mapping   ! grant not applied"
    )
    return "\n".join(out)
