"""Stack configuration for the helper CLI, read the way the program sees it.

Two ways to read a stack's config:

* **offline** (``validate``): ``Pulumi.yaml`` defaults overlaid with
  ``Pulumi.<stack>.yaml`` (or ``--config-file``). Secrets stay encrypted and read
  as a placeholder: validation never needs them.
* **decrypted** (``doctor``, ``why``, ``export``): ``pulumi config --show-secrets
  --json``, which uses the stack's own secrets provider (passphrase or KMS) from
  the environment, exactly as ``pulumi preview`` would.

Either way the result is a ``ConfigReader`` (``get(key) -> str | None``, keys
without the ``cf-access:`` prefix, objects and lists as JSON) that
``components.settings.load_settings`` accepts. ``CF_API_URL``, ``CF_CLIENT_ID``
and ``CF_CLIENT_SECRET`` in the environment override the CF connection.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.settings import CF_ENV_OVERRIDES

PROJECT = "cf-access"
SECRET_PLACEHOLDER = "<secret: not decrypted offline>"
ENV_OVERRIDES = CF_ENV_OVERRIDES  # one list of variables for the program, providers and CLI


class StackConfigError(Exception):
    """The stack config file or ``pulumi config`` could not be read."""


def find_project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding ``Pulumi.yaml``."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    raise StackConfigError(f"no Pulumi.yaml in {here} or any parent folder (use --project-dir)")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _mask_secrets(value: Any) -> tuple[Any, bool]:
    """Replace ``{secure: ...}`` leaves by the placeholder; report whether any were found."""
    if isinstance(value, Mapping):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        found = False
        out: dict[str, Any] = {}
        for k, v in value.items():
            out[str(k)], hit = _mask_secrets(v)
            found = found or hit
        return out, found
    if isinstance(value, list):
        items = [_mask_secrets(v) for v in value]
        return [v for v, _ in items], any(hit for _, hit in items)
    return value, False


@dataclass
class StackConfig:
    """A ``ConfigReader`` over one stack's config values (see module docstring)."""

    values: dict[str, str] = field(default_factory=dict)
    secret_keys: set[str] = field(default_factory=set)
    source: str = "defaults"
    decrypted: bool = False

    def get(self, key: str) -> str | None:
        env_name = ENV_OVERRIDES.get(key)
        if env_name and os.environ.get(env_name):
            return os.environ[env_name]
        return self.values.get(key)

    def get_object(self, key: str) -> Any:
        raw = self.get(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw


def project_defaults(project_root: Path) -> dict[str, str]:
    try:
        project = yaml.safe_load((project_root / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise StackConfigError(f"cannot read {project_root / 'Pulumi.yaml'}: {exc}") from None
    out: dict[str, str] = {}
    for key, spec in (project.get("config") or {}).items():
        name = str(key).removeprefix(f"{PROJECT}:")
        if isinstance(spec, Mapping) and "default" in spec:
            out[name] = _as_text(spec["default"])
        elif not isinstance(spec, Mapping):
            out[name] = _as_text(spec)
    return out


def stack_file(project_root: Path, stack: str | None, config_file: Path | None) -> Path | None:
    if config_file is not None:
        return config_file
    if stack:
        return project_root / f"Pulumi.{stack}.yaml"
    return None


def read_offline(
    project_root: Path, stack: str | None = None, config_file: Path | None = None
) -> StackConfig:
    """Defaults from Pulumi.yaml, overlaid with the stack file; secrets as a placeholder."""
    config = StackConfig(values=project_defaults(project_root))
    path = stack_file(project_root, stack, config_file)
    if path is None:
        return config
    if not path.is_file():
        raise StackConfigError(f"stack config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise StackConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise StackConfigError(f"{path}: expected a mapping with 'config'")
    for key, value in (data.get("config") or {}).items():
        project, sep, name = str(key).partition(":")
        if not sep:
            project, name = PROJECT, str(key)
        if project != PROJECT:
            continue
        masked, secret = _mask_secrets(value)
        config.values[name] = _as_text(masked)
        if secret:
            config.secret_keys.add(name)
    config.source = str(path)
    return config


def read_decrypted(
    project_root: Path,
    stack: str,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> StackConfig:
    """``pulumi config --show-secrets --json`` for the stack (needs the stack's secrets provider)."""
    pulumi = shutil.which("pulumi", path=(env or os.environ).get("PATH"))
    if pulumi is None:
        raise StackConfigError("the pulumi CLI is not on PATH (source scripts/env.sh, or set CF_* variables)")
    cmd = [pulumi, "config", "--show-secrets", "--json", "--stack", stack]
    if config_file is not None:
        cmd += ["--config-file", str(config_file)]
    proc = subprocess.run(
        cmd,
        cwd=project_root,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise StackConfigError(
            f"`pulumi config --show-secrets --json --stack {stack}` failed: {proc.stderr.strip()}"
        )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise StackConfigError(f"unexpected output from pulumi config: {exc}") from None
    config = StackConfig(
        values=project_defaults(project_root), source=f"pulumi config (stack {stack})", decrypted=True
    )
    for key, entry in data.items():
        project, _, name = str(key).partition(":")
        if project != PROJECT or not isinstance(entry, Mapping):
            continue
        if "objectValue" in entry:
            config.values[name] = json.dumps(entry["objectValue"])
        elif "value" in entry:
            config.values[name] = _as_text(entry["value"])
        if entry.get("secret"):
            config.secret_keys.add(name)
    return config
