"""What the CLI commands share: settings, identity sources, mappings and the plan,
built the same way ``__main__.py`` builds them, plus the CF client.

Heavy imports (the Okta and Microsoft Graph SDKs behind ``identitySources``)
happen only when the stack config asks for those sources, so ``validate`` on a
directory-backed stack starts fast enough for a pre-commit hook.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from components.cli.stackconfig import StackConfig
from components.identity.base import IdentitySource
from components.identity.directory import DirectorySource
from components.mappings import Mappings, load_mappings
from components.plan import PlanSettings
from components.settings import Settings, load_settings


@dataclass
class Context:
    project_root: Path
    config: StackConfig
    settings: Settings
    sources: dict[str, IdentitySource]

    @property
    def default_source(self) -> str:
        return next(iter(self.sources))

    def plan_settings(self) -> PlanSettings:
        return PlanSettings(
            protected_users=self.settings.protected_users,
            default_source=self.default_source,
            source_origins={name: s.origin for name, s in self.sources.items()},
        )

    def load_mappings(self) -> Mappings:
        return load_mappings(self.settings.mappings_dir, known_sources=self.sources.keys())

    @staticmethod
    def today() -> dt.date:
        return dt.datetime.now(dt.UTC).date()


def identity_sources(
    config: StackConfig, settings: Settings, project_root: Path
) -> dict[str, IdentitySource]:
    """``identitySources`` when set, else the single directory source of the flat keys
    (what ``__main__.py`` does)."""
    raw = config.get_object("identitySources")
    if raw is not None:
        from components.identity.config import parse_identity_sources  # heavy: IdP SDKs

        sources = parse_identity_sources(raw, project_root)
        if sources:
            return sources
    source = DirectorySource(
        settings.directory_file,
        name="directory",
        origin=settings.directory_origin,
        username_attribute="email" if settings.username_attribute == "email" else "username",
    )
    return {source.name: source}


def build_context(project_root: Path, config: StackConfig) -> Context:
    settings = load_settings(config, project_root)
    return Context(project_root, config, settings, identity_sources(config, settings, project_root))
