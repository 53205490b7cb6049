"""``cf-access``: the helper CLI around the Pulumi program (docs/operations.md).

    cf-access validate [--stack S]          offline checks, fast (pre-commit)
    cf-access doctor   [--stack S]          mappings x IdP x CF cross-checks
    cf-access why USER [--stack S]          a user's roles: why, and what CF holds
    cf-access export   --out DIR            starting mappings from a live foundation
    cf-access summary  preview.json         pulumi preview --json -> PR comment (Markdown)
    cf-access report   --stack S            the quarterly access review (HTML, CSV, JSON)

CF credentials for doctor/why/export: the stack's config, decrypted with
``pulumi config --show-secrets --json`` (``--stack``), or ``CF_API_URL``,
``CF_CLIENT_ID``, ``CF_CLIENT_SECRET`` in the environment (these win).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

import click

from components.cli.stackconfig import StackConfig, StackConfigError, find_project_root

if TYPE_CHECKING:
    from components.changes import Deployed
    from components.summary import Locate

_project_dir = click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder with Pulumi.yaml (default: the nearest one above the current folder).",
)
_stack = click.option("--stack", "-s", default=None, help="Stack name (reads Pulumi.<stack>.yaml).")
_config_file = click.option(
    "--config-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Stack config file to use instead of Pulumi.<stack>.yaml.",
)


def _root(project_dir: Path | None) -> Path:
    try:
        return find_project_root(project_dir or Path.cwd())
    except StackConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """cf-access helper: validate, doctor, why, export, summary, report."""


# --------------------------------------------------------------------------- summary


@main.command()
@click.argument("preview", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--drift", is_flag=True, help="A scheduled drift check: every change is drift.")
@click.option("--title", default=None, help="Heading (default: 'cf-access preview — stack `S`').")
@click.option("--max-chars", type=int, default=65_536, show_default=True, help="Comment size limit.")
@click.option("--details-url", default=None, help="Link to the full preview (CI job log).")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-")
@_project_dir
@_stack
@_config_file
def summary(
    preview: IO[str],
    drift: bool,
    title: str | None,
    max_chars: int,
    details_url: str | None,
    output: IO[str],
    project_dir: Path | None,
    stack: str | None,
    config_file: Path | None,
) -> None:
    """Turn `pulumi preview --json` output (file or stdin) into a Markdown PR comment.

    Reasons name `file:line` when the project's mappings can be read (offline)."""
    from components.summary import PreviewParseError, summarize

    try:
        text = summarize(
            preview.read(),
            drift=drift,
            title=title,
            max_chars=max_chars,
            details_url=details_url,
            locate=_locator(project_dir, stack, config_file),
        )
    except PreviewParseError as exc:
        raise click.ClickException(str(exc)) from None
    output.write(text)


def _locator(project_dir: Path | None, stack: str | None, config_file: Path | None) -> Locate | None:
    """``plan.locate_provenance`` over the project's mappings; None when they cannot be read
    (the summary then shows reasons as state has them: file without line)."""
    from components.cli.context import build_context
    from components.cli.stackconfig import read_offline
    from components.mappings import MappingError
    from components.model import RoleType, Scope
    from components.plan import locate_provenance
    from components.settings import SettingsError

    try:
        root = find_project_root(project_dir or Path.cwd())
        ctx = build_context(root, read_offline(root, stack, config_file))
        mappings = ctx.load_mappings()
    except (StackConfigError, SettingsError, MappingError, OSError):
        return None
    settings = ctx.plan_settings()

    def locate(provenance: str, org: str, space: str | None, role: str, member: str) -> str:
        return locate_provenance(
            provenance, mappings, Scope(org, space), cast(RoleType, role), member, settings
        )

    return locate


# --------------------------------------------------------------------------- validate


@main.command()
@_project_dir
@_stack
@_config_file
@click.option(
    "--mappings",
    "mappings_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Mappings folder (default: the stack's mappingsDir).",
)
def validate(
    project_dir: Path | None, stack: str | None, config_file: Path | None, mappings_dir: Path | None
) -> None:
    """Check mappings, directory file and stack config offline (what preview would reject)."""
    from components.cli.validate import validate as run

    report = run(_root(project_dir), stack, config_file, mappings_dir)
    click.echo(report.render())
    sys.exit(0 if report.ok else 1)


# --------------------------------------------------------------------------- CF-reading commands


def _config(root: Path, stack: str | None, config_file: Path | None) -> StackConfig:
    from components.cli.stackconfig import read_decrypted, read_offline

    try:
        if stack:
            return read_decrypted(root, stack, config_file)
        return read_offline(root, None, config_file)
    except StackConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _deployed(root: Path, stack: str | None) -> Deployed | None:
    """What cf-access manages (the stack's state), when a stack is named; None otherwise."""
    from components.deployed import DeployedStateError, read_deployed_with_cli

    if not stack:
        return None
    try:
        return read_deployed_with_cli(root, stack)
    except DeployedStateError as exc:
        raise _fail(exc) from None


@main.command()
@_project_dir
@_stack
@_config_file
@click.option("--json", "as_json", is_flag=True, help="Findings as JSON lines.")
def doctor(project_dir: Path | None, stack: str | None, config_file: Path | None, as_json: bool) -> None:
    """Cross-check mappings, identity provider and Cloud Foundry; exit 1 on errors."""
    import json

    from components.cli.context import build_context
    from components.cli.doctor import Finding, diagnose, exit_code, gather_snapshot, guard_findings, render
    from components.cli.inventory import read_inventory
    from components.cloudfoundry.errors import CfApiError
    from components.cloudfoundry.preflight import check_scopes
    from components.cloudfoundry.scopes import MissingScopeError
    from components.mappings import MappingError
    from components.settings import SettingsError

    root = _root(project_dir)
    try:
        ctx = build_context(root, _config(root, stack, config_file))
    except SettingsError as exc:
        raise _fail(exc) from None
    findings: list[Finding] = []
    try:
        mappings = ctx.load_mappings()
    except MappingError as exc:
        findings = [
            Finding(
                f"{p.file}:{p.line}" if p.line else p.file, "error", "mapping", f"{p.key_path}: {p.message}"
            )
            for p in exc.problems
        ]
    else:
        today = ctx.today()
        snapshot, findings = gather_snapshot(mappings, ctx.sources, ctx.default_source, today)
        try:
            # Scopes first: without global read CC filters every list, and the
            # org/space/user checks below would report a wrong picture.
            check_scopes(ctx.settings.cf, "read")
            inventory = read_inventory(ctx.settings.cf)
        except MissingScopeError as exc:
            findings.append(Finding(ctx.settings.cf.api_url, "error", "cf-scope", str(exc)))
        except (CfApiError, OSError) as exc:
            findings.append(Finding(ctx.settings.cf.api_url, "error", "cf-unreachable", str(exc)))
        else:
            findings += diagnose(mappings, snapshot, ctx.plan_settings(), inventory, today)
            findings += guard_findings(
                mappings,
                snapshot,
                ctx.plan_settings(),
                ctx.settings.guards,
                inventory,
                _deployed(root, stack),
                today,
            )
    if as_json:
        for f in findings:
            click.echo(json.dumps({"where": f.where, "level": f.level, "code": f.code, "message": f.message}))
    else:
        click.echo(render(findings))
    sys.exit(exit_code(findings))


@main.command()
@click.argument("user")
@_project_dir
@_stack
@_config_file
@click.option("--no-cf", is_flag=True, help="Do not read CF (only what the mappings grant).")
def why(
    project_dir: Path | None, stack: str | None, config_file: Path | None, user: str, no_cf: bool
) -> None:
    """Every role USER ([origin/]username) should hold, why, and what CF holds now."""
    from components.cli.context import build_context
    from components.cli.inventory import read_inventory
    from components.cli.why import explain_user, render
    from components.cloudfoundry.errors import CfApiError
    from components.identity.base import IdentityReadError, read_snapshot
    from components.mappings import MappingError
    from components.plan import PlanError, build_plan
    from components.settings import SettingsError

    root = _root(project_dir)
    try:
        ctx = build_context(root, _config(root, stack, config_file))
        mappings = ctx.load_mappings()
        today = ctx.today()
        snapshot = read_snapshot(
            ctx.sources, mappings.group_refs(ctx.default_source, today), ctx.default_source
        )
        plan = build_plan(mappings, snapshot, ctx.plan_settings(), today)
        inventory = None if no_cf else read_inventory(ctx.settings.cf)
        deployed = _deployed(root, stack) if inventory is not None else None
    except (SettingsError, MappingError, IdentityReadError, PlanError, CfApiError) as exc:
        raise _fail(exc) from None
    result = explain_user(user, mappings, snapshot, plan, ctx.plan_settings(), inventory, today, deployed)
    people = {p.ref.key: p for group in snapshot.groups.values() for p in group}
    describe = {
        key: f"{p.display_name or p.username}, {'active' if p.active else 'INACTIVE'} in {p.source}"
        for key, p in people.items()
        if key in result
    }
    click.echo(render(user, result, describe))


@main.command()
@_project_dir
@_stack
@_config_file
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write <org>.yaml files into (e.g. mappings/).",
)
@click.option(
    "--org", "orgs", multiple=True, help="Only these orgs (repeatable; default: every org with roles)."
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def export(
    project_dir: Path | None,
    stack: str | None,
    config_file: Path | None,
    out_dir: Path,
    orgs: tuple[str, ...],
    force: bool,
) -> None:
    """Write starting mappings (additive, named users) from the roles CF holds now."""
    from components.cli.context import build_context
    from components.cli.export import ExportNameError, build_exports, write_exports
    from components.cli.inventory import read_inventory
    from components.cloudfoundry.errors import CfApiError
    from components.settings import SettingsError

    root = _root(project_dir)
    try:
        ctx = build_context(root, _config(root, stack, config_file))
        inventory = read_inventory(ctx.settings.cf)
    except (SettingsError, CfApiError) as exc:
        raise _fail(exc) from None
    default_origin = ctx.sources[ctx.default_source].origin
    exports = build_exports(inventory, ctx.plan_settings(), default_origin, set(orgs) if orgs else None)
    try:
        paths = write_exports(exports, out_dir, force=force)
    except (FileExistsError, ExportNameError) as exc:
        raise _fail(exc) from None
    for e, path in zip(exports, paths, strict=True):
        click.echo(f"wrote {path} ({e.assignments} role assignments)")
    click.echo(
        f"export: {len(paths)} org file(s), {sum(e.assignments for e in exports)} role assignments; "
        "next: cf-access validate, then pulumi preview (creates only) and pulumi up (no CF writes)"
    )


@main.command()
@_project_dir
@_stack
@_config_file
@click.option("--since", default=None, help="Start of the period (YYYY-MM-DD; default: 91 days ago).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(),
    show_default=True,
    help="Folder for access-review-<stack>-<date>.html, .csv and .json.",
)
def report(
    project_dir: Path | None, stack: str | None, config_file: Path | None, since: str | None, out_dir: Path
) -> None:
    """The access review: who holds which role and why, changes and leavers (HTML, CSV, JSON)."""
    import datetime as dt

    from components.cli.context import build_context
    from components.cli.report import ReportError, gather, parse_since
    from components.cloudfoundry.errors import CloudFoundryError
    from components.identity.base import IdentityReadError
    from components.mappings import MappingError
    from components.plan import PlanError
    from components.report.model import build_report
    from components.report.render import write_report
    from components.settings import SettingsError

    if not stack:
        raise click.UsageError("give --stack: what the next up does comes from that stack's deployed state")
    root = _root(project_dir)
    now = dt.datetime.now(dt.UTC)
    try:
        ctx = build_context(root, _config(root, stack, config_file))
        deployed = _deployed(root, stack)
        assert deployed is not None  # a stack is named
        inputs = gather(ctx, deployed, stack, parse_since(since, now), now)
    except (SettingsError, MappingError, IdentityReadError, PlanError, CloudFoundryError, ReportError) as exc:
        raise _fail(exc) from None
    built = build_report(inputs)
    for path in write_report(built, out_dir):
        click.echo(f"wrote {path}")
    click.echo(
        f"report: {built.counts['roles_held']} roles held, {built.counts['not_granted']} not granted by "
        f"a mapping, {built.counts['changes']} changes, {built.counts['leavers']} leavers"
    )


if __name__ == "__main__":
    main()
