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
        # As __main__.py: identitySource names the default; else the first configured one.
        wanted = self.settings.identity_source
        return wanted if wanted in self.sources else next(iter(self.sources))

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
    if raw:
        light = _directory_only(raw, project_root)
        if light is not None:
            return light
        from components.identity.config import parse_identity_sources  # heavy: the IdP SDKs

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


_DIRECTORY_KEYS = frozenset({"type", "file", "origin", "usernameAttribute"})


def _directory_only(raw: object, project_root: Path) -> dict[str, IdentitySource] | None:
    """``identitySources`` made only of well-formed directory sources, built without importing
    the Okta and Graph SDKs (seconds of import time a pre-commit hook should not pay).
    Anything else returns None: the full parser validates it."""
    if not isinstance(raw, dict):
        return None
    out: dict[str, IdentitySource] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or entry.get("type") != "directory" or set(entry) - _DIRECTORY_KEYS:
            return None
        file, origin = entry.get("file", "directory/example.yaml"), entry.get("origin", "uaa")
        attribute = entry.get("usernameAttribute", "username")
        if not isinstance(file, str) or not isinstance(origin, str) or not origin:
            return None
        if attribute not in ("username", "email") or not (project_root / file).is_file():
            return None
        out[str(name)] = DirectorySource(
            project_root / file,
            name=str(name),
            origin=origin,
            username_attribute="email" if attribute == "email" else "username",
        )
    return out or None


def build_context(project_root: Path, config: StackConfig) -> Context:
    settings = load_settings(config, project_root)
    return Context(project_root, config, settings, identity_sources(config, settings, project_root))
