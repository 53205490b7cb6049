"""``cf-access validate``: what ``pulumi preview`` would reject, checked offline.

No Pulumi, no CF, no network, no secrets: stack config from ``Pulumi.yaml`` and
``Pulumi.<stack>.yaml`` (secrets stay encrypted), every mapping problem with
file:line:column, the directory file's problems, groups the mappings use that
the directory does not have, and the plan itself (expired grants warn). Identity
sources behind an API (Okta, Entra) are not contacted; their groups are checked
by ``doctor`` and by preview.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from components.cli.context import Context, identity_sources
from components.cli.doctor import gather_snapshot
from components.cli.stackconfig import SECRET_PLACEHOLDER, StackConfigError, read_offline
from components.current import CurrentAccess
from components.guards import check_groups
from components.identity.directory import DirectorySource
from components.mappings import MappingError
from components.plan import PlanError, build_plan
from components.settings import SettingsError, load_settings


@dataclass
class ValidationReport:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    offline_sources: list[str] = field(default_factory=list)
    skipped_sources: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [*self.problems, *(f"warning: {w}" for w in self.warnings)]
        took = f"{self.seconds:.2f} s"
        if self.ok:
            s = self.stats
            checked = ", ".join(self.offline_sources) or "none"
            line = (
                f"validate: OK - {s.get('files', 0)} mapping files, {s.get('orgs', 0)} orgs, "
                f"{s.get('spaces', 0)} spaces, {s.get('groups', 0)} groups checked offline ({checked}), "
                f"{s.get('assignments', 0)} role assignments planned, in {took}"
            )
            if self.skipped_sources:
                line += f"; not contacted: {', '.join(self.skipped_sources)} (use doctor)"
            lines.append(line)
        else:
            lines.append(f"validate: {len(self.problems)} problem(s), in {took}")
        return "\n".join(lines)


def validate(
    project_root: Path,
    stack: str | None = None,
    config_file: Path | None = None,
    mappings_dir: Path | None = None,
) -> ValidationReport:
    started = time.perf_counter()
    report = ValidationReport()
    try:
        _validate(report, project_root, stack, config_file, mappings_dir)
    finally:
        report.seconds = time.perf_counter() - started
    return report


def _validate(
    report: ValidationReport,
    project_root: Path,
    stack: str | None,
    config_file: Path | None,
    mappings_dir: Path | None,
) -> None:
    try:
        config = read_offline(project_root, stack, config_file)
    except StackConfigError as exc:
        report.problems.append(str(exc))
        return
    if stack is None and config_file is None:
        # No stack: check mappings and directory against the defaults only.
        config.values.setdefault("cfApiUrl", "https://api.example.invalid")
        config.values.setdefault("cfClientSecret", SECRET_PLACEHOLDER)
    if mappings_dir is not None:
        config.values["mappingsDir"] = str(mappings_dir.resolve())
    try:
        settings = load_settings(config, project_root)
        sources = identity_sources(config, settings, project_root)
    except SettingsError as exc:
        report.problems.extend(f"{config.source}: {line}" for line in str(exc).splitlines())
        return
    report.warnings.extend(f"{config.source}: {w}" for w in settings.warnings)
    ctx = Context(project_root, config, settings, sources)
    try:
        mappings = ctx.load_mappings()
    except MappingError as exc:
        report.problems.extend(str(p) for p in exc.problems)
        return
    today = ctx.today()
    offline = {name: s for name, s in sources.items() if isinstance(s, DirectorySource)}
    report.offline_sources = sorted(offline)
    report.skipped_sources = sorted(set(sources) - set(offline))
    snapshot, findings = gather_snapshot(mappings, offline, ctx.default_source, today)
    report.problems.extend(f"{f.where}: {f.message}" for f in findings)
    report.stats = {
        "files": len({o.location.file for o in mappings.orgs}),
        "orgs": len(mappings.orgs),
        "spaces": sum(len(o.spaces) for o in mappings.orgs),
        "groups": len(snapshot.groups),
    }
    # The guard preview runs first: a group with no active members is a failed read unless
    # allowEmptyGroups says otherwise (shrinkage needs CF: cf-access doctor checks it).
    report.problems.extend(
        check_groups(mappings, snapshot, CurrentAccess(), ctx.plan_settings(), settings.guards)
    )
    if report.problems or report.skipped_sources:
        return
    try:
        plan = build_plan(mappings, snapshot, ctx.plan_settings(), today)
    except PlanError as exc:
        report.problems.append(str(exc))
        return
    report.warnings.extend(plan.warnings)
    report.stats["assignments"] = plan.summary()["assignments"]
