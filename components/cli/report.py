"""``cf-access report``: gather what the access review needs, the way the program does.

The plan is built as ``__main__.py`` builds it (mappings x identity snapshot), CF is
read in bulk (``Inventory.current_access``, the guards' view), what cf-access manages
comes from ``pulumi stack export`` and the changes from the stack's ``auditLog`` file.
``components/report/model.py`` turns those into rows; nothing here decides anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.changes import Deployed
from components.cli.context import Context
from components.cli.explain import resolve_grants
from components.cli.inventory import read_inventory
from components.cli.stackconfig import StackConfig
from components.identity.base import read_snapshot
from components.mappings import Mappings
from components.model import UserRef
from components.plan import build_plan
from components.report.blame import Blame
from components.report.model import ReportInputs

QUARTER = dt.timedelta(days=91)


class ReportError(RuntimeError):
    """The report cannot be built (the message says what to fix)."""


def parse_since(value: str | None, now: dt.datetime) -> dt.datetime:
    """``--since`` (YYYY-MM-DD or an ISO time, UTC when no zone) or a quarter before ``now``."""
    if not value:
        return now - QUARTER
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ReportError(f"--since {value!r} is not a date (YYYY-MM-DD) or an ISO time") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def audit_events(config: StackConfig, project_root: Path) -> list[Mapping[str, Any]]:
    """The stack's audit trail (``auditLog``, relative to the project); [] when it keeps none."""
    from components.audit import CONFIG_KEY, read_events

    raw = (config.get(CONFIG_KEY) or "").strip()
    if not raw:
        return []
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = project_root / path
    if not path.exists():
        return []  # no change applied yet since the trail was configured
    try:
        return list(read_events(path))
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read the audit trail {path} (auditLog): {exc}") from None


def mapping_files(mappings: Mappings, mappings_dir: Path) -> dict[str, Path]:
    """Each mapping file as provenance names it -> its path on disk (for git blame).

    Provenance names a file relative to the working folder, or as ``<mappings folder
    name>/<path below it>`` when the folder is elsewhere: try both, and only accept a
    file inside the mappings folder (never the same name in another checkout)."""
    root = mappings_dir.resolve()
    out: dict[str, Path] = {}
    for org in mappings.orgs:
        shown = org.location.file
        for base in (mappings_dir.parent, Path.cwd()):
            path = (base / shown).resolve()
            if path.is_file() and path.is_relative_to(root):
                out[shown] = path
                break
    return out


def gather(
    ctx: Context, deployed: Deployed, stack: str, since: dt.datetime, now: dt.datetime
) -> ReportInputs:
    """Every input of the report, read once (raises the readers' own errors)."""
    mappings = ctx.load_mappings()
    today = now.date()
    snapshot = read_snapshot(ctx.sources, mappings.group_refs(ctx.default_source, today), ctx.default_source)
    settings = ctx.plan_settings()
    plan = build_plan(mappings, snapshot, settings, today)
    inventory = read_inventory(ctx.settings.cf)
    people = {p.ref.key: p for group in snapshot.groups.values() for p in group}
    # Someone inactive in any group is inactive everywhere (as the plan treats them).
    people.update({p.ref.key: p for group in snapshot.groups.values() for p in group if not p.active})
    blame = Blame(mapping_files(mappings, ctx.settings.mappings_dir))
    return ReportInputs(
        stack=stack,
        plan=plan,
        grants=resolve_grants(mappings, snapshot, settings, today),
        current=inventory.current_access(),
        deployed=deployed,
        is_protected=lambda key: settings.is_protected(UserRef.parse(key)),
        ownership={org.name: org.ownership for org in mappings.orgs},
        people=tuple(people.values()),
        events=audit_events(ctx.config, ctx.project_root),
        blame=blame.at,
        since=since,
        now=now,
    )
