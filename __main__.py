"""cf-access: Cloud Foundry roles from identity-provider groups.

settings → mappings → IdP snapshot → plan → resources. Every step before
``declare`` is read-only and fails closed: if anything cannot be read or
validated the program stops before registering a single resource, because
registering fewer resources would make Pulumi delete the missing ones.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pulumi

from components.identity.base import IdentityReadError, IdentitySource, read_snapshot
from components.identity.directory import DirectorySource
from components.mappings import MappingError, load_mappings
from components.plan import PlanSettings, build_plan
from components.resources import declare
from components.settings import Settings, SettingsError, load_settings

PROJECT_ROOT = Path(__file__).resolve().parent


def identity_sources(settings: Settings) -> dict[str, IdentitySource]:
    source = DirectorySource(
        settings.directory_file,
        name="directory",
        origin=settings.directory_origin,
        username_attribute="email" if settings.username_attribute == "email" else "username",
    )
    return {source.name: source}


def main() -> None:
    try:
        settings = load_settings(pulumi.Config(), PROJECT_ROOT)
        sources = identity_sources(settings)
        default_source = next(iter(sources))
        mappings = load_mappings(settings.mappings_dir, known_sources=sources.keys())
        snapshot = read_snapshot(sources, mappings.group_refs(default_source), default_source)
        plan = build_plan(
            mappings,
            snapshot,
            PlanSettings(
                protected_users=settings.protected_users,
                default_source=default_source,
                source_origins={name: source.origin for name, source in sources.items()},
            ),
            today=datetime.datetime.now(datetime.UTC).date(),
        )
    except (SettingsError, MappingError, IdentityReadError) as exc:
        # A clean message without a Python traceback; nothing was registered.
        raise pulumi.RunError(str(exc)) from None

    for warning in plan.warnings:
        pulumi.log.warn(warning)
    if plan.excluded_protected:
        pulumi.log.info(f"protected users left alone: {', '.join(plan.excluded_protected)}")

    declare(plan)
    summary = plan.summary()
    pulumi.export("summary", summary)


main()
