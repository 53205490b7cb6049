"""The quarterly access review as rows: plan x CF now x deployed state x audit trail x blame.

Pure (no I/O): the CLI gathers the inputs, ``render.py`` writes them out. Every
statement about what the next ``pulumi up`` does comes from ``run_changes``
(components/changes.py), the one function the program, the guards and ``why`` use;
this module only labels its answer.

Sections (one flat row shape, so the CSV, the JSON and the HTML hold the same rows):

* ``access``      every role CF holds now, plus the roles the mappings grant that CF does not
                  hold yet; one row per grant that gives it (a role granted twice has two rows:
                  an auditor asks who approved *each* grant), with the mapping ``file:line`` and
                  the commit that wrote that line.
* ``not granted`` the roles CF holds that no mapping grants, with what the next up does:
                  removed / kept / left alone / protected.
* ``changes``     the audit trail's role changes in the period, each labelled with what it was
                  for the person: joiner, leaver, move, granted, revoked.
* ``leavers``     people the identity provider lists as inactive, with when their last role was
                  removed (audit trail) and what CF still holds for them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast

from components.changes import Deployed, IsProtected, RoleChange, RunChanges, describe_changes, run_changes
from components.cli.explain import Grant
from components.current import CurrentAccess
from components.identity.base import Person
from components.model import ORG_ROLE_TYPES, SPACE_ROLE_TYPES, RoleType
from components.plan import AccessPlan
from components.report.blame import BlameLine

ROLE_TYPES: tuple[str, ...] = (*ORG_ROLE_TYPES, *SPACE_ROLE_TYPES)
SECTIONS = ("access", "not granted", "changes", "leavers")

NOT_GRANTED = "not granted by any mapping"
PROTECTED = "protected user (protectedUsers)"
# What the next up does with a role (next_up column).
UNCHANGED, ADDED, REMOVED, KEPT, LEFT_ALONE, PROTECTED_FATE = (
    "unchanged",
    "added",
    "removed",
    "kept",
    "left alone",
    "protected",
)

BlameAt = Callable[[str, int], BlameLine | None]


@dataclass(frozen=True)
class Row:
    """One line of the report; unused columns are empty strings."""

    section: str
    org: str = ""
    space: str = ""
    role: str = ""
    person: str = ""  # member key origin/username
    granted_by: str = ""  # "group directory:payments-dev", "named user", "implied by ...", NOT_GRANTED
    mapping: str = ""  # mappings/<file>:<line>
    commit: str = ""  # the commit that wrote the mapping line (short id)
    author: str = ""
    committed: str = ""  # author date of that commit
    until: str = ""  # expiry of the grant
    protected: bool = False
    ownership: str = ""  # additive / authoritative / "not in mappings"
    next_up: str = ""  # what the next pulumi up does (run_changes)
    time: str = ""  # audit trail time
    update: str = ""  # audit trail run kind
    action: str = ""  # add / remove / create-user / delete-user
    change: str = ""  # joiner / leaver / move / granted / revoked
    reason: str = ""


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Row))


@dataclass(frozen=True)
class Heatmap:
    orgs: tuple[str, ...]
    roles: tuple[str, ...]
    counts: Mapping[tuple[str, str], int]  # (org, role type) -> distinct holders in CF now

    @property
    def peak(self) -> int:
        return max(self.counts.values(), default=0)


@dataclass(frozen=True)
class Week:
    start: dt.date  # Monday
    adds: int
    removes: int


@dataclass(frozen=True)
class AccessReport:
    stack: str
    generated: str
    since: str
    until: str
    rows: tuple[Row, ...]
    heatmap: Heatmap
    weeks: tuple[Week, ...]
    next_up: str  # describe_changes: the same line every preview logs
    counts: Mapping[str, int] = field(default_factory=dict)

    def section(self, name: str) -> list[Row]:
        return [r for r in self.rows if r.section == name]


@dataclass(frozen=True)
class ReportInputs:
    stack: str
    plan: AccessPlan
    grants: Sequence[Grant]  # explain.resolve_grants: each mapping entry x person, with file:line
    current: CurrentAccess
    deployed: Deployed
    is_protected: IsProtected
    ownership: Mapping[str, str]  # org -> additive / authoritative (orgs in the mappings)
    people: Sequence[Person]  # everyone the identity snapshot lists
    events: Sequence[Mapping[str, Any]]  # the audit trail, oldest first
    blame: BlameAt
    since: dt.datetime
    now: dt.datetime


def build_report(inputs: ReportInputs) -> AccessReport:
    changes = run_changes(inputs.plan, inputs.current, inputs.deployed, inputs.is_protected)
    access = _access_rows(inputs, changes)
    not_granted = [
        _replace_section(r, "not granted") for r in access if r.granted_by in (NOT_GRANTED, PROTECTED)
    ]
    events = _stack_events(inputs.events, inputs.stack)
    period = [e for e in events if _in_period(e, inputs.since, inputs.now)]
    change_rows = _change_rows(events, period, inputs.since)
    leaver_rows = _leaver_rows(inputs, events, changes)
    rows = (*access, *not_granted, *change_rows, *leaver_rows)
    return AccessReport(
        stack=inputs.stack,
        generated=_iso(inputs.now),
        since=_iso(inputs.since),
        until=_iso(inputs.now),
        rows=rows,
        heatmap=_heatmap(inputs.current),
        weeks=_weeks(period, inputs.since.date(), inputs.now.date()),
        next_up=describe_changes(changes),
        counts=_counts(rows, inputs.current),
    )


# --------------------------------------------------------------------------- access now


def _access_rows(inputs: ReportInputs, changes: RunChanges) -> list[Row]:
    desired: dict[tuple[str, str], set[str]] = defaultdict(set)
    for m in inputs.plan.memberships():
        desired[(m.scope.label, m.role)].update(m.members)
    explicit: dict[tuple[str, str, str], list[Grant]] = defaultdict(list)
    for g in inputs.grants:
        if g.status == "active":
            explicit[(g.scope, g.role, g.user)].append(g)
    adds = {_key(c) for c in changes.adds}
    fates = {_key(c): (REMOVED, c.reason) for c in changes.removals}
    fates.update({_key(c): (KEPT, c.reason.removeprefix("kept: ")) for c in changes.kept})
    rows: list[Row] = []
    for scope, role in sorted(set(desired) | set(inputs.current.holders), key=_scope_order):
        org, _, space = scope.partition("/")
        ownership = inputs.ownership.get(org, "not in mappings")
        held = inputs.current.of(scope, role)
        base = Row("access", org, space, role, ownership=ownership)
        for person in sorted(desired.get((scope, role), set()) | held):
            if person in desired.get((scope, role), ()):
                next_up = ADDED if (scope, role, person) in adds else UNCHANGED
                located = inputs.plan.located_reason(scope, cast(RoleType, role), person) or ""
                grants = explicit.get((scope, role, person), [])
                rows.extend(_granted(base, person, grants, located, next_up, inputs.blame))
            elif inputs.is_protected(person):
                rows.append(
                    _copy(base, person=person, granted_by=PROTECTED, protected=True, next_up=PROTECTED_FATE)
                )
            else:
                fate, reason = fates.get((scope, role, person), (LEFT_ALONE, "not managed by cf-access"))
                rows.append(_copy(base, person=person, granted_by=NOT_GRANTED, next_up=fate, reason=reason))
    return rows


def _granted(
    base: Row, person: str, grants: Sequence[Grant], located: str, next_up: str, blame: BlameAt
) -> Iterable[Row]:
    if not grants:  # organization_user implied by space roles: the plan's reason is the grant
        yield _copy(base, person=person, granted_by=located, next_up=next_up)
        return
    for g in grants:
        file, _, line = g.location.rpartition(":")
        b = blame(file, int(line)) if line.isdigit() else None
        yield _copy(
            base,
            person=person,
            granted_by=g.via,
            mapping=g.location,
            commit=b.commit[:12] if b else "",
            author=b.author if b else "not in git",
            committed=b.date if b else "",
            until=g.until.isoformat() if g.until else "",
            next_up=next_up,
            reason=b.summary if b else "",
        )


def _key(c: RoleChange) -> tuple[str, str, str]:
    return (c.scope, c.role, c.member)


_ROLE_ORDER = {r: i for i, r in enumerate(ROLE_TYPES)}


def _scope_order(item: tuple[str, str]) -> tuple[str, int, str, int]:
    scope, role = item
    org, _, space = scope.partition("/")
    return (org, 1 if space else 0, space, _ROLE_ORDER.get(role, 99))


def _copy(base: Row, **changes: Any) -> Row:
    return Row(**{**base.__dict__, **changes})


def _replace_section(row: Row, section: str) -> Row:
    return _copy(row, section=section)


# --------------------------------------------------------------------------- the audit trail


def _stack_events(events: Iterable[Mapping[str, Any]], stack: str) -> list[Mapping[str, Any]]:
    """This stack's events, oldest first (one trail file may serve several stacks)."""
    mine = [e for e in events if not e.get("stack") or e.get("stack") == stack]
    return sorted(mine, key=lambda e: str(e.get("time", "")))


def _parse_time(value: object) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _in_period(event: Mapping[str, Any], since: dt.datetime, now: dt.datetime) -> bool:
    when = _parse_time(event.get("time"))
    return when is not None and since <= when <= now


def _change_rows(
    events: Sequence[Mapping[str, Any]], period: Sequence[Mapping[str, Any]], since: dt.datetime
) -> list[Row]:
    kinds = classify_people(events, since)
    rows: list[Row] = []
    for e in period:
        scope = str(e.get("scope") or "")
        org, _, space = scope.partition("/")
        user = str(e.get("user", ""))
        rows.append(
            Row(
                "changes",
                org=org,
                space=space,
                role=str(e.get("role") or ""),
                person=user,
                time=str(e.get("time", "")),
                update=str(e.get("update", "")),
                action=str(e.get("action", "")),
                change=kinds.get(user, ""),
                reason=str(e.get("reason", "")),
            )
        )
    return rows


def classify_people(events: Sequence[Mapping[str, Any]], since: dt.datetime) -> dict[str, str]:
    """What the period's changes were for each person, replaying the trail's role changes:
    ``leaver`` (roles removed, none left), ``joiner`` (no role before the period, roles now),
    ``move`` (roles added and removed, some left), else ``granted`` / ``revoked``."""
    held: dict[str, set[tuple[str, str]]] = defaultdict(set)
    before: dict[str, frozenset[tuple[str, str]]] = {}
    added: set[str] = set()
    removed: set[str] = set()
    for e in events:
        action, user = e.get("action"), str(e.get("user", ""))
        if action not in ("add", "remove"):
            continue
        when = _parse_time(e.get("time"))
        in_period = when is not None and when >= since
        if in_period and user not in before:
            before[user] = frozenset(held[user])
        role = (str(e.get("scope") or ""), str(e.get("role") or ""))
        if action == "add":
            held[user].add(role)
        else:
            held[user].discard(role)
        if in_period:
            (added if action == "add" else removed).add(user)
    out: dict[str, str] = {}
    for user in added | removed:
        if user in removed and not held[user]:
            out[user] = "leaver"
        elif user in added and not before.get(user):
            out[user] = "joiner"
        elif user in added and user in removed:
            out[user] = "move"
        else:
            out[user] = "granted" if user in added else "revoked"
    return out


# --------------------------------------------------------------------------- leavers


def _leaver_rows(inputs: ReportInputs, events: Sequence[Mapping[str, Any]], changes: RunChanges) -> list[Row]:
    inactive = {p.ref.key: p for p in inputs.people if not p.active}
    last_removed: dict[str, str] = {}
    for e in events:
        if e.get("action") == "remove":
            last_removed[str(e.get("user", ""))] = str(e.get("time", ""))
    held: Counter[str] = Counter()
    for keys in inputs.current.holders.values():
        for key in keys:
            if key in inactive:
                held[key] += 1
    removing: Counter[str] = Counter(c.member for c in changes.removals if c.member in inactive)
    rows: list[Row] = []
    for key in sorted(inactive):
        if held[key]:
            next_up = f"holds {held[key]} role(s) in CF; the next up removes {removing[key]}"
        else:
            next_up = "holds no role in CF"
        rows.append(
            Row(
                "leavers",
                person=key,
                time=last_removed.get(key, ""),
                next_up=next_up,
                protected=inputs.is_protected(key),
                reason=f"inactive in {inactive[key].source}",
            )
        )
    return rows


# --------------------------------------------------------------------------- pictures and totals


def _heatmap(current: CurrentAccess) -> Heatmap:
    holders: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (scope, role), keys in current.holders.items():
        holders[(scope.partition("/")[0], role)].update(keys)
    return Heatmap(
        orgs=tuple(sorted({org for org, _ in holders})),
        roles=ROLE_TYPES,
        counts={k: len(v) for k, v in holders.items()},
    )


def _weeks(period: Sequence[Mapping[str, Any]], start: dt.date, end: dt.date) -> tuple[Week, ...]:
    first = start - dt.timedelta(days=start.weekday())
    adds: Counter[dt.date] = Counter()
    removes: Counter[dt.date] = Counter()
    for e in period:
        when = _parse_time(e.get("time"))
        if when is None or e.get("action") not in ("add", "remove"):
            continue
        monday = when.date() - dt.timedelta(days=when.weekday())
        (adds if e.get("action") == "add" else removes)[monday] += 1
    weeks: list[Week] = []
    monday = first
    while monday <= end:
        weeks.append(Week(monday, adds[monday], removes[monday]))
        monday += dt.timedelta(days=7)
    return tuple(weeks)


def _counts(rows: Sequence[Row], current: CurrentAccess) -> dict[str, int]:
    by_section = Counter(r.section for r in rows)
    fates = Counter(r.next_up for r in rows if r.section == "not granted")
    return {
        "roles_held": sum(len(v) for v in current.holders.values()),
        "people_holding": len({k for v in current.holders.values() for k in v}),
        "access_rows": by_section["access"],
        "not_granted": by_section["not granted"],
        "not_granted_removed": fates[REMOVED],
        "not_granted_kept": fates[KEPT],
        "not_granted_left_alone": fates[LEFT_ALONE],
        "not_granted_protected": fates[PROTECTED_FATE],
        "changes": by_section["changes"],
        "leavers": by_section["leavers"],
    }


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
