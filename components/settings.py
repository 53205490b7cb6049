"""Stack configuration → validated settings.

Two readers share this module: the program (``pulumi.Config`` in
``__main__.py``) and the dynamic providers (``configure()`` receives the same
stack config with secrets decrypted). Both go through ``ConfigReader`` so the
keys, defaults and error messages are defined once, matching ``Pulumi.yaml``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, get_args

from pydantic import SecretStr

from components.guards import GuardSettings
from components.model import DeprovisionPolicy
from components.protection import ProtectedUsers, ProtectionError, unanchored_warning

PROJECT = "cf-access"
USERNAME_ATTRIBUTES = ("username", "email")
# CF connection keys that the environment overrides (the environment wins), so a stack file
# need hold no client secret and CI hands each job only the client it needs
# (docs/permissions.md). The provider process inherits the CLI's environment, so program and
# providers see the same values.
CF_ENV_OVERRIDES: dict[str, str] = {
    "cfApiUrl": "CF_API_URL",
    "cfClientId": "CF_CLIENT_ID",
    "cfClientSecret": "CF_CLIENT_SECRET",
    "cfUaaUrl": "CF_UAA_URL",
}

_log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """A stack config value is missing or invalid; the message names the key."""


class ConfigReader(Protocol):
    """The part of ``pulumi.Config`` we use (the provider gets the same type)."""

    def get(self, key: str) -> str | None: ...


@dataclass(frozen=True)
class CfConnection:
    """How to reach Cloud Foundry. The secret never leaves this object as text
    except when the client builds its token request."""

    api_url: str
    client_id: str
    client_secret: SecretStr
    skip_tls_verify: bool
    concurrency: int
    # None: discovered from the API root (``GET /``) once per process; set, that call is saved.
    uaa_url: str | None = None

    def __repr__(self) -> str:  # keep the secret out of tracebacks and logs
        return f"CfConnection(api_url={self.api_url!r}, client_id={self.client_id!r}, client_secret=***)"


@dataclass(frozen=True)
class Settings:
    cf: CfConnection
    guards: GuardSettings
    mappings_dir: Path
    identity_source: str
    directory_file: Path
    directory_origin: str
    username_attribute: str
    protected_users: tuple[str, ...]
    deprovision_policy: DeprovisionPolicy
    # Things worth telling the operator that do not stop the run (e.g. protectedUsers
    # patterns whose meaning widened when matching moved from full match to search).
    warnings: tuple[str, ...] = ()


def _key(name: str) -> str:
    return f"{PROJECT}:{name}"


def _string(config: ConfigReader, name: str, default: str | None = None) -> str:
    value = config.get(name)
    if value is None or value == "":
        if default is None:
            raise SettingsError(
                f"stack config {_key(name)} is required but not set; "
                f"set it with `pulumi config set {name} <value>` (see Pulumi.yaml for its description)"
            )
        return default
    return value


def _bool(config: ConfigReader, name: str, default: bool) -> bool:
    raw = config.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise SettingsError(f"stack config {_key(name)} must be true or false, got {raw!r}")


def _int(config: ConfigReader, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = config.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"stack config {_key(name)} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"stack config {_key(name)} must be between {minimum} and {maximum}, got {value}")
    return value


def _choice(config: ConfigReader, name: str, choices: tuple[str, ...], default: str) -> str:
    value = _string(config, name, default)
    if value not in choices:
        raise SettingsError(f"stack config {_key(name)} must be one of {', '.join(choices)}; got {value!r}")
    return value


def _string_list(config: ConfigReader, name: str) -> tuple[str, ...]:
    raw = config.get(name)
    if raw is None or raw == "":
        return ()
    try:
        values = json.loads(raw)
    except json.JSONDecodeError:
        raise SettingsError(f"stack config {_key(name)} must be a list of strings (YAML list)") from None
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise SettingsError(f"stack config {_key(name)} must be a list of non-empty strings (YAML list)")
    return tuple(values)


def _protected_users(config: ConfigReader, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The patterns (validated once, by the matcher itself) and migration warnings."""
    values = _string_list(config, name)
    try:
        ProtectedUsers.from_patterns(values, what=f"stack config {_key(name)}")
    except ProtectionError as exc:
        raise SettingsError(str(exc)) from None
    warnings = (unanchored_warning(p, i, what=f"stack config {_key(name)}") for i, p in enumerate(values))
    return values, tuple(w for w in warnings if w)


def load_guard_settings(config: ConfigReader, *, override_mass_removal: bool = False) -> GuardSettings:
    """The safety brakes; ``override_mass_removal`` comes from the one-run
    environment override (CF_ACCESS_ALLOW_MASS_REMOVAL)."""
    return GuardSettings(
        max_removals=_int(config, "brakeMaxRemovals", 100, 0, 10_000_000),
        max_removal_percent=_int(config, "brakeMaxRemovalPercent", 25, 0, 100),
        org_min_removals=_int(config, "brakeOrgMinRemovals", 10, 1, 10_000_000),
        allow_mass_removal=override_mass_removal or _bool(config, "allowMassRemoval", False),
        group_shrink_percent=_int(config, "groupShrinkPercent", 50, 1, 100),
        group_shrink_minimum=_int(config, "groupShrinkMinimum", 5, 1, 10_000_000),
        allow_empty_groups=frozenset(_string_list(config, "allowEmptyGroups")),
        allow_shrunk_groups=frozenset(_string_list(config, "allowShrunkGroups")),
    )


class _EnvOverlay:
    """A ConfigReader where set, non-empty CF_ENV_OVERRIDES variables win over the stack config."""

    def __init__(self, config: ConfigReader, environ: Mapping[str, str]) -> None:
        self._config = config
        self._environ = environ

    def get(self, key: str) -> str | None:
        name = CF_ENV_OVERRIDES.get(key)
        if name and self._environ.get(name):
            return self._environ[name]
        return self._config.get(key)


def load_cf_connection(config: ConfigReader, environ: Mapping[str, str] | None = None) -> CfConnection:
    config = _EnvOverlay(config, os.environ if environ is None else environ)
    api_url = _string(config, "cfApiUrl").rstrip("/")
    if not re.match(r"^https?://[^/\s]+", api_url):
        raise SettingsError(f"stack config {_key('cfApiUrl')} must be an http(s) URL, got {api_url!r}")
    uaa_url = (config.get("cfUaaUrl") or "").rstrip("/") or None
    if uaa_url is not None and not re.match(r"^https?://[^/\s]+", uaa_url):
        raise SettingsError(
            f"stack config {_key('cfUaaUrl')} must be an http(s) URL (the links.uaa.href of "
            f"`curl {api_url}/`), got {uaa_url!r}; or unset it to discover UAA from the API root"
        )
    if not config.get("cfClientSecret"):
        raise SettingsError(
            f"the CF client secret is not set: export CF_CLIENT_SECRET (wins) or set stack config "
            f"{_key('cfClientSecret')} with `pulumi config set --secret cfClientSecret <value>`"
        )
    return CfConnection(
        api_url=api_url,
        client_id=_string(config, "cfClientId", "cf-access"),
        client_secret=SecretStr(_string(config, "cfClientSecret")),
        skip_tls_verify=_bool(config, "cfSkipTlsVerify", False),
        concurrency=_int(config, "concurrency", 8, 1, 64),
        uaa_url=uaa_url,
    )


def load_deprovision_policy(config: ConfigReader) -> DeprovisionPolicy:
    value = _choice(config, "deprovisionPolicy", get_args(DeprovisionPolicy), "roles-only")
    return "delete-user" if value == "delete-user" else "roles-only"


def load_settings(
    config: ConfigReader, project_root: Path, *, override_mass_removal: bool = False
) -> Settings:
    """Read and validate the whole stack config; raise SettingsError naming the key.

    Non-fatal findings are in ``Settings.warnings`` (and logged here, so a caller
    that ignores them still leaves a trace).
    """
    protected_users, warnings = _protected_users(config, "protectedUsers")
    for warning in warnings:
        _log.warning("%s", warning)
    return Settings(
        cf=load_cf_connection(config),
        guards=load_guard_settings(config, override_mass_removal=override_mass_removal),
        mappings_dir=project_root / _string(config, "mappingsDir", "mappings"),
        identity_source=_string(config, "identitySource", "directory"),
        directory_file=project_root / _string(config, "directoryFile", "directory/example.yaml"),
        directory_origin=_string(config, "directoryOrigin", "uaa"),
        username_attribute=_choice(config, "usernameAttribute", USERNAME_ATTRIBUTES, "username"),
        protected_users=protected_users,
        deprovision_policy=load_deprovision_policy(config),
        warnings=warnings,
    )
