"""``cf-access doctor``: mappings x identity provider x Cloud Foundry, cross-checked.

Each finding names where it comes from (a mapping's file:line, the directory
file's line, or the CF object) and is an **error** (preview would fail, or
cf-access cannot act correctly) or a **warning** (works, but probably not what
you want). Checks:

=====================  =======  ==============================================================
code                   level    what
=====================  =======  ==============================================================
missing-group          error    a mapped group does not exist in its identity source
idp-error              error    the identity source cannot be read (file problems, API errors)
ldap-bind              error    an LDAP source: no server answers, TLS fails or the bind is refused
no-username-attribute  error    an IdP user lacks the attribute that becomes the CF username
missing-org            error    an org in the mappings does not exist in CF
missing-space          error    a space in the mappings does not exist in CF
case-collision         error    CF users (one origin) or names differing only in case
cf-scope               error    the CF client lacks global read (docs/permissions.md); CF not checked
cf-unreachable         error    CF cannot be read (connection, credentials, API errors)
two-origins            warning  the same username under two UAA origins (two CF users)
unmapped-cf-user       warning  a CF user holds roles in a mapped org that no mapping grants
=====================  =======  ==============================================================

The logic is pure (``diagnose``) over an identity snapshot and a CF ``Inventory``;
``gather_snapshot`` reads the sources group by group so one missing group does
not hide the others. An LDAP source is first connected and bound on its own (``ldap-bind``),
so a connection or bind problem is reported once, naming the server, instead of once per group.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from components.changes import Deployed, run_changes
from components.cli.explain import resolve_grants
from components.cli.inventory import Inventory
from components.guards import GuardSettings, check_groups, check_removals
from components.identity.base import (
    IdentityReadError,
    IdentitySnapshot,
    IdentitySource,
    Person,
    split_group_ref,
)
from components.identity.directory import DirectoryError, DirectorySource, parse_directory
from components.mappings import Mappings
from components.model import UserRef
from components.plan import PlanSettings, build_plan
from components.yamlsource import did_you_mean, display_path

Level = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Finding:
    where: str
    level: Level
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.level} [{self.code}] {self.message}"


# --------------------------------------------------------------------------- identity


def _directory_groups(
    source: DirectorySource, names: Collection[str], findings: list[Finding]
) -> tuple[dict[str, tuple[Person, ...]] | None, list[str]]:
    """Groups of a directory source (and every group name it has, for hints); on file
    problems, report them and read leniently so the other checks still run."""
    try:
        directory = source.load()
    except DirectoryError as exc:
        problems = list(exc.problems)
    else:
        out = {
            g: tuple(sorted((directory.people[u] for u in directory.groups[g]), key=lambda p: p.username))
            for g in names
            if g in directory.groups
        }
        return out, sorted(directory.groups)
    try:
        lenient = parse_directory(
            source.path.read_bytes(),
            display_path(source.path),
            source=source.name,
            origin=source.origin,
            username_attribute="username",
        )
    except (OSError, DirectoryError):
        lenient = None
    # People without the CF username attribute (reported once, not again per group listing them).
    missing: set[str] = set()
    people: dict[str, Person] = {}
    rename: dict[str, str] = {}
    if lenient is not None:
        for name, person in lenient.people.items():
            cf_name = person.email if source.username_attribute == "email" else name
            if not cf_name:
                missing.add(name)
                continue
            rename[name] = cf_name
            people[cf_name] = Person(
                cf_name,
                person.origin,
                person.active,
                person.source,
                person.external_id,
                person.email,
                person.display_name,
            )
    for p in problems:
        if p.message.startswith("unknown user '") and p.message.split("'")[1].strip().casefold() in missing:
            continue
        where = f"{p.file}:{p.line}" if p.line else p.file
        code = "no-username-attribute" if "missing 'email'" in p.message else "idp-error"
        findings.append(
            Finding(where, "error", code, f"{p.key_path}: {p.message}" if p.key_path else p.message)
        )
    if lenient is None:
        return None, []
    groups = {g: tuple(rename[m] for m in members if m in rename) for g, members in lenient.groups.items()}
    out = {
        g: tuple(sorted((people[m] for m in groups[g]), key=lambda p: p.username))
        for g in names
        if g in groups
    }
    return out, sorted(lenient.groups)


def gather_snapshot(
    mappings: Mappings, sources: Mapping[str, IdentitySource], default_source: str, today: dt.date
) -> tuple[IdentitySnapshot, list[Finding]]:
    """Read every mapped group; missing groups become findings at each mapping line using them."""
    findings: list[Finding] = []
    where_used: dict[str, list[str]] = defaultdict(list)
    for org in mappings.orgs:
        for _, rg in org.all_role_grants():
            for g in rg.groups:
                if g.until is None or g.until >= today:
                    where_used[g.ref(default_source)].append(str(g.location))
    wanted: dict[str, set[str]] = defaultdict(set)
    for ref in where_used:
        source_name, group = split_group_ref(ref, default_source)
        wanted[source_name].add(group)
    groups: dict[str, tuple[Person, ...]] = {}
    for source_name in sorted(wanted):
        source = sources.get(source_name)
        if source is None:
            continue  # mapping validation reports unknown sources
        names = sorted(wanted[source_name])
        got: dict[str, tuple[Person, ...]] | None
        known: list[str] = []
        if isinstance(source, DirectorySource):
            got, known = _directory_groups(source, names, findings)
        elif not _ldap_binds(source_name, source, findings):
            got = None
        else:
            got = {}
            for name in names:  # one at a time: one missing group must not hide the others
                try:
                    got.update(source.read_groups([name]))
                except IdentityReadError as exc:
                    if "not found" in exc.message.lower() or "no answer" in exc.message.lower():
                        continue
                    findings.append(Finding(f"identity source {source_name}", "error", "idp-error", str(exc)))
                    got = None
                    break
        if got is None:
            continue
        for name in names:
            ref = f"{source_name}:{name}"
            if name in got:
                groups[ref] = got[name]
                continue
            hint = ""
            case_twin = next((k for k in known if k.casefold() == name.casefold()), None)
            if case_twin is not None:
                hint = f" ('{case_twin}' exists: group names are case-sensitive)"
            elif known:
                hint = did_you_mean(name, known)
            for location in where_used[ref]:
                findings.append(
                    Finding(
                        location,
                        "error",
                        "missing-group",
                        f"group {ref} does not exist in the identity source{hint}",
                    )
                )
    return IdentitySnapshot(groups), findings


def _ldap_binds(name: str, source: IdentitySource, findings: list[Finding]) -> bool:
    """True unless ``source`` is an LDAP source that cannot connect and bind (reported)."""
    check_bind = getattr(source, "check_bind", None)  # LdapSource; not imported: python-ldap is optional
    if check_bind is None:
        return True
    try:
        check_bind()
    except IdentityReadError as exc:
        findings.append(Finding(f"identity source {name}", "error", "ldap-bind", str(exc)))
        return False
    return True


# --------------------------------------------------------------------------- CF


def diagnose(
    mappings: Mappings,
    snapshot: IdentitySnapshot,
    settings: PlanSettings,
    inventory: Inventory,
    today: dt.date,
) -> list[Finding]:
    findings: list[Finding] = []
    # Groups the snapshot could not answer plan as empty here (already reported).
    refs = mappings.group_refs(settings.default_source, today)
    full = IdentitySnapshot({**dict.fromkeys(refs, ()), **snapshot.groups})
    plan = build_plan(mappings, full, settings, today)
    where = inventory.api_url or "CF"

    # Orgs and spaces that do not exist (exact names, as the providers look them up).
    orgs_ci = {o.casefold(): o for o in inventory.orgs}
    for org in mappings.orgs:
        if org.name not in inventory.orgs:
            twin = orgs_ci.get(org.name.casefold())
            if twin is not None:
                findings.append(
                    Finding(
                        str(org.location),
                        "error",
                        "case-collision",
                        f"org '{org.name}' does not exist in CF, but '{twin}' does "
                        "(names differ only in case)",
                    )
                )
            else:
                hint = did_you_mean(org.name, sorted(inventory.orgs))
                findings.append(
                    Finding(
                        str(org.location),
                        "error",
                        "missing-org",
                        f"org '{org.name}' does not exist in {where}{hint}",
                    )
                )
            continue
        spaces = sorted(s for o, s in inventory.spaces if o == org.name)
        for space in org.spaces:
            if space.name in spaces:
                continue
            twin = next((s for s in spaces if s.casefold() == space.name.casefold()), None)
            if twin is not None:
                findings.append(
                    Finding(
                        str(space.location),
                        "error",
                        "case-collision",
                        f"space '{org.name}/{space.name}' does not exist in CF, but '{org.name}/{twin}' does "
                        "(names differ only in case)",
                    )
                )
            else:
                findings.append(
                    Finding(
                        str(space.location),
                        "error",
                        "missing-space",
                        f"space '{org.name}/{space.name}' does not exist in {where}"
                        + did_you_mean(space.name, spaces),
                    )
                )

    # CF users: case collisions within an origin, and one username under several origins.
    by_origin_name: dict[tuple[str, str], list[str]] = defaultdict(list)
    origins_of: dict[str, dict[str, str]] = defaultdict(dict)  # username -> origin -> guid
    for guid, user in sorted(inventory.users.items()):
        if not user.username or not user.origin:
            continue
        by_origin_name[(user.origin, user.username.casefold())].append(guid)
        origins_of[user.username.casefold()][user.origin] = guid
    for (origin, name), guids in sorted(by_origin_name.items()):
        if len(guids) > 1:
            shown = ", ".join(f"'{inventory.users[g].username}' ({g})" for g in guids)
            findings.append(
                Finding(
                    f"CF users {origin}/{name}",
                    "error",
                    "case-collision",
                    f"{len(guids)} CF users in origin {origin} differ only in case: {shown}; "
                    "cf-access cannot tell them apart",
                )
            )
    planned = {u.ref.key for u in plan.users}
    planned_names: dict[str, set[str]] = defaultdict(set)
    for key in planned:
        ref = UserRef.parse(key)
        planned_names[ref.username].add(ref.origin)
    grants_by_user: dict[str, list[str]] = defaultdict(list)
    for g in resolve_grants(mappings, snapshot, settings, today):
        grants_by_user[g.user].append(g.location)
    held_by: dict[str, list[str]] = defaultdict(list)
    for key, role in inventory.keyed_roles():
        held_by[key].append(f"{role.scope} {role.role}")
    mapped_orgs = {o.name: o.ownership for o in mappings.orgs}
    covered: set[str] = set()  # unmapped holders already explained by a two-origins finding
    for name in sorted(set(origins_of) | set(planned_names)):
        origins = set(origins_of.get(name, {})) | planned_names.get(name, set())
        if len(origins) < 2:
            continue
        relevant = planned_names.get(name) or {o for o in origins if held_by.get(f"{o}/{name}")}
        if not relevant:
            continue
        parts = []
        for origin in sorted(origins):
            key = f"{origin}/{name}"
            bits = []
            if key in planned:
                bits.append("mapped")
            if origin in origins_of.get(name, {}):
                bits.append(f"CF user {origins_of[name][origin]}")
            if held_by.get(key):
                held = f"holds {', '.join(sorted(held_by[key]))}"
                if key not in planned:
                    covered.add(key)
                    fates = sorted(
                        {
                            _FATE[mapped_orgs[r.split("/")[0].split(" ")[0]]]
                            for r in held_by[key]
                            if r.split("/")[0].split(" ")[0] in mapped_orgs
                        }
                    )
                    held += f", granted by no mapping: {'; '.join(fates)}" if fates else ""
                bits.append(held)
            parts.append(f"{key} ({', '.join(bits) or 'nothing'})")
        locations = sorted({loc for o in origins for loc in grants_by_user.get(f"{o}/{name}", [])})
        where_from = locations[0] if locations else f"CF users {name}"
        findings.append(
            Finding(
                where_from,
                "warning",
                "two-origins",
                f"{name} exists under {len(origins)} origins: {'; '.join(parts)} - "
                "these are different CF users; "
                "cf-access manages each origin separately",
            )
        )

    # CF users holding roles in mapped orgs that nobody maps (protected users and clients excepted).
    unmapped: dict[str, list[str]] = defaultdict(list)
    for key, role in inventory.keyed_roles():
        if key in covered or role.org not in mapped_orgs or key in planned:
            continue
        if settings.is_protected(UserRef.parse(key)):
            continue
        unmapped[key].append(f"{role.scope} {role.role}")
    for key, roles in sorted(unmapped.items()):
        orgs = sorted({r.split("/")[0].split(" ")[0] for r in roles})
        fate = "; ".join(f"{o}: {_FATE[mapped_orgs[o]]}" for o in orgs)
        findings.append(
            Finding(
                f"CF user {key}",
                "warning",
                "unmapped-cf-user",
                f"holds {', '.join(sorted(roles))} but no mapping grants {key} anything ({fate})",
            )
        )
    return findings


_FATE = {"authoritative": "removed on the next up (authoritative)", "additive": "left alone (additive)"}


def guard_findings(
    mappings: Mappings,
    snapshot: IdentitySnapshot,
    settings: PlanSettings,
    guard: GuardSettings,
    inventory: Inventory,
    deployed: Deployed | None,
    today: dt.date,
) -> list[Finding]:
    """What ``pulumi preview`` would refuse or report, from the program's own functions:
    empty and shrunken groups (guards.check_groups) and, with the stack's state, the
    removals the brake counts and the organization_users kept for roles cf-access does
    not manage (changes.run_changes)."""
    current = inventory.current_access()
    findings = [
        Finding(problem.split(";")[0].removeprefix("group ").split(" ")[0], "error", "group-guard", problem)
        for problem in check_groups(mappings, snapshot, current, settings, guard)
    ]
    if deployed is None:
        return findings
    refs = mappings.group_refs(settings.default_source, today)
    full = IdentitySnapshot({**dict.fromkeys(refs, ()), **snapshot.groups})
    plan = build_plan(mappings, full, settings, today)
    changes = run_changes(plan, current, deployed, lambda key: settings.is_protected(UserRef.parse(key)))
    report = check_removals(changes, guard)
    for problem in report.problems:
        findings.append(Finding("mass-removal brake", "error", "brake", problem.splitlines()[0]))
    for kept in changes.kept:
        findings.append(
            Finding(
                f"{kept.scope} {kept.role}",
                "warning",
                "kept-org-user",
                f"{kept.member}: {kept.reason} (the next up keeps organization_user)",
            )
        )
    return findings


def exit_code(findings: Collection[Finding]) -> int:
    return 1 if any(f.level == "error" for f in findings) else 0


def _order(f: Finding) -> tuple[int, str, int, str]:
    file, _, line = f.where.rpartition(":")
    if file and line.isdigit():
        return (0 if f.level == "error" else 1, file, int(line), f.code)
    return (0 if f.level == "error" else 1, f.where, 0, f.code)


def render(findings: list[Finding]) -> str:
    errors = sum(1 for f in findings if f.level == "error")
    warnings = len(findings) - errors
    lines = [str(f) for f in sorted(findings, key=_order)]
    lines.append(f"doctor: {errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)
