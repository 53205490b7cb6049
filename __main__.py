"""cf-access: Cloud Foundry roles from identity-provider groups.

settings → mappings → IdP snapshot → plan → guards (against what CF holds
now) → resources. Every step before ``declare`` is read-only and fails
closed: if anything cannot be read or validated, or a guard trips, the
program stops before registering a single resource, because registering
fewer resources would make Pulumi delete the missing ones.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

import pulumi

from components.changes import RunChanges, describe_changes, run_changes
from components.cloudfoundry.client import CloudFoundryClient, client_for
from components.cloudfoundry.errors import CfApiError
from components.cloudfoundry.preflight import check_scopes
from components.cloudfoundry.scopes import Access
from components.cloudfoundry.shared_read import FoundationRead, engine_of_program
from components.cloudfoundry.shared_read import take as take_refresh_read
from components.current import read_current_access
from components.deployed import DeployedStateError, read_deployed
from components.guards import check_groups, check_removals, missing_scopes
from components.identity.base import IdentityReadError, IdentitySource, read_snapshot
from components.identity.config import parse_identity_sources
from components.identity.directory import DirectorySource
from components.mappings import MappingError, load_mappings
from components.model import UserRef
from components.plan import AccessPlan, PlanError, PlanSettings, build_plan
from components.resources import declare
from components.settings import Settings, SettingsError, load_settings

PROJECT_ROOT = Path(__file__).resolve().parent


class GuardTripped(Exception):
    pass


class _PulumiLogHandler(logging.Handler):
    """Forwards identity-source progress (logged on a worker thread) to the
    Pulumi log, so long IdP reads show what they are doing."""

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        (pulumi.log.warn if record.levelno >= logging.WARNING else pulumi.log.info)(message)


def identity_sources(settings: Settings, config: pulumi.Config) -> dict[str, IdentitySource]:
    """The configured sources (cf-access:identitySources), or the single
    directory source described by the directory* keys."""
    configured = parse_identity_sources(config.get_object("identitySources"), PROJECT_ROOT)
    if configured:
        return configured
    source = DirectorySource(
        settings.directory_file,
        name="directory",
        origin=settings.directory_origin,
        username_attribute="email" if settings.username_attribute == "email" else "username",
    )
    return {source.name: source}


def plan_access() -> tuple[AccessPlan, RunChanges]:
    override = os.environ.get("CF_ACCESS_ALLOW_MASS_REMOVAL", "").lower() in ("1", "true", "yes")
    config = pulumi.Config()
    settings = load_settings(config, PROJECT_ROOT, override_mass_removal=override)
    for warning in settings.warnings:
        pulumi.log.warn(warning)
    # A run that refreshed first hands its read of CF over (shared_read.py); otherwise the
    # program reads CF itself, with one client for the scope check and the read.
    shared = take_refresh_read(engine_of_program(), settings.cf.api_url, settings.cf.client_id)
    with client_for(settings.cf) as client:
        return _plan_access(config, settings, shared, client)


def _plan_access(
    config: pulumi.Config, settings: Settings, shared: FoundationRead | None, client: CloudFoundryClient
) -> tuple[AccessPlan, RunChanges]:
    # Before the IdP, the reads and the guards: a client without global read would see a
    # filtered foundation, and `up` needs write scopes (components/cloudfoundry/scopes.py).
    access: Access = "read" if pulumi.runtime.is_dry_run() else "write"
    check_scopes(settings.cf, access, client=client, granted=frozenset(shared.scopes) if shared else None)
    identity_log = logging.getLogger("cf_access.identity")
    identity_log.setLevel(logging.INFO)
    identity_log.addHandler(_PulumiLogHandler())
    sources = identity_sources(settings, config)
    default_source = settings.identity_source
    today = datetime.datetime.now(datetime.UTC).date()
    mappings = load_mappings(settings.mappings_dir, known_sources=sources.keys())
    snapshot = read_snapshot(sources, mappings.group_refs(default_source, today), default_source)
    plan_settings = PlanSettings(
        protected_users=settings.protected_users,
        default_source=default_source,
        source_origins={name: source.origin for name, source in sources.items()},
    )
    plan = build_plan(mappings, snapshot, plan_settings, today=today)

    deployed = read_deployed()
    # The mapped orgs and the orgs of memberships that left the mappings (retired this run).
    orgs = sorted({org.name for org in plan.orgs} | {scope.org for scope, _ in deployed.memberships})
    try:
        current, source = read_current_access(settings.cf, orgs, shared, client)
    except CfApiError as exc:
        raise GuardTripped(
            f"could not read the current roles from Cloud Foundry at {settings.cf.api_url} "
            f"(needed for the safety checks; nothing was changed): {exc}"
        ) from None
    pulumi.log.info(f"what Cloud Foundry holds now: {source}")
    changes = run_changes(
        plan,
        current,
        deployed,
        lambda key: plan_settings.is_protected(UserRef.parse(key)),
        delete_users=settings.deprovision_policy == "delete-user",
    )
    problems = missing_scopes(plan, current, mappings)
    problems += check_groups(mappings, snapshot, current, plan_settings, settings.guards)
    if not problems:
        report = check_removals(changes, settings.guards)
        problems += report.problems
        for warning in report.warnings:
            pulumi.log.warn(warning)
        pulumi.log.info(describe_changes(changes))
    if problems:
        raise GuardTripped("\n".join(problems))
    return plan, changes


def main() -> None:
    try:
        plan, changes = plan_access()
    except (
        SettingsError,
        MappingError,
        IdentityReadError,
        PlanError,
        CfApiError,
        GuardTripped,
        DeployedStateError,
    ) as exc:
        # A clean message without a Python traceback; nothing was registered.
        raise pulumi.RunError(str(exc)) from None

    for warning in plan.warnings:
        pulumi.log.warn(warning)
    if plan.excluded_protected:
        pulumi.log.info(f"protected users left alone: {', '.join(plan.excluded_protected)}")
    declare(changes.declared, changes.retiring_user_sets, changes.adopted)
    pulumi.export("summary", plan.summary())
    # Per org: members per role (org roles) and per "space/role" — for dashboards.
    pulumi.export(
        "orgs",
        {
            org.name: {
                "ownership": org.ownership,
                **{m.role: len(m.members) for m in org.org_memberships},
                **{f"{s.name}/{m.role}": len(m.members) for s in org.spaces for m in s.memberships},
            }
            for org in plan.orgs
        },
    )


main()
