"""What cf-access manages: the stack's last deployed state, read through the engine.

The program asks the Pulumi engine for the outputs of every resource of its own
stack (the built-in invoke ``pulumi:pulumi:readStackResourceOutputs``, which reads
the stack's last checkpoint from whatever backend the CLI is logged in to). That
is the only place that knows which holders cf-access granted; the guards and the
"what will this run change" function (``components/changes.py``) need it to
count removals exactly and to retire scopes that left the mappings.

A stack that was never deployed has no checkpoint: nothing is managed yet.
A read failure stops the program (fail closed): counting removals without
knowing what is managed could let an unreviewed removal through.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pulumi
import pulumi.runtime

from components.changes import Deployed, DeployedMembership, DeployedUserSet
from components.model import ORG_ROLE_TYPES, SPACE_ROLE_TYPES, Ownership, RoleType, Scope, parse_role_key

ORG_ACCESS_TYPE = "pulumi-python:dynamic/cf:OrgAccess"
# One resource per (scope, role type): the model before cf:OrgAccess (upgraded on the next run).
MEMBERSHIP_TYPE = "pulumi-python:dynamic/cf:RoleMembership"
USER_SET_TYPE = "pulumi-python:dynamic/cf:UserSet"
_READ_OUTPUTS = "pulumi:pulumi:readStackResourceOutputs"


class DeployedStateError(RuntimeError):
    """The stack's deployed state could not be read."""


# The engine rewrites the checkpoint while the program starts (the root stack's step).
# On a file backend opened without ?metadata=skip, fileblob rewrites the checkpoint's
# `.attrs` sidecar in place, so a read can see it empty ("failed to load checkpoint:
# EOF"). That is a parse failure, never wrong data: retry. (scripts/env.sh and the
# tests use ?metadata=skip, which writes no sidecar; docs/operations.md.)
_RETRYABLE = "failed to load checkpoint"
_ATTEMPTS = 8


def read_deployed() -> Deployed:
    """The last deployment of this stack (empty for a stack never deployed)."""
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            result = pulumi.runtime.invoke(_READ_OUTPUTS, {"stackName": name})
            break
        except Exception as exc:  # the engine's error text is what the operator needs
            if _RETRYABLE in str(exc) and attempt < _ATTEMPTS:
                time.sleep(0.25 * attempt)
                continue
            raise DeployedStateError(_explain(name, str(exc))) from None
    outputs = (result.value or {}).get("outputs") or {}
    return parse_deployed(cast(Mapping[str, Any], outputs))


def _explain(name: str, reason: str) -> str:
    return (
        f"could not read what cf-access manages from the state of stack {name} ({reason}); "
        "nothing was changed. Check that the backend is reachable and retry."
    )


def parse_deployed(resources: Mapping[str, Any]) -> Deployed:
    """``{urn: {"type": ..., "outputs": {...}}}`` -> Deployed (pure).

    An org recorded by a ``cf:OrgAccess`` is read from it; an org recorded only by the
    per-scope ``cf:RoleMembership`` resources of earlier versions is a legacy org."""
    by_org: dict[tuple[Scope, str], DeployedMembership] = {}
    legacy: dict[tuple[Scope, str], DeployedMembership] = {}
    user_sets: dict[str, DeployedUserSet] = {}
    for urn in sorted(resources):
        entry = resources[urn] or {}
        kind = entry.get("type")
        outs = entry.get("outputs") or {}
        if kind == ORG_ACCESS_TYPE:
            for held in _org_access(outs):
                by_org[(held.scope, held.role)] = held
        elif kind == MEMBERSHIP_TYPE:
            old = _membership(outs)
            if old is not None:
                legacy[(old.scope, old.role)] = old
        elif kind == USER_SET_TYPE and isinstance(outs.get("origin"), str):
            users = frozenset(str(k) for k in (outs.get("users") or {}))
            created = frozenset(str(k) for k in (outs.get("created") or ()))
            user_sets[outs["origin"]] = DeployedUserSet(outs["origin"], users, created)
    orgs = _org_access_orgs(resources)
    legacy_only = {k: v for k, v in legacy.items() if k[0].org not in orgs}
    return Deployed(
        memberships={**legacy_only, **by_org},
        user_sets=user_sets,
        legacy_orgs=frozenset(scope.org for scope, _ in legacy_only),
        orgs=orgs,
    )


def _org_access_orgs(resources: Mapping[str, Any]) -> dict[str, Ownership]:
    """Orgs with a cf:OrgAccess (also those that manage nobody) -> ownership."""
    out: dict[str, Ownership] = {}
    for entry in resources.values():
        outs = (entry or {}).get("outputs") or {}
        if (entry or {}).get("type") == ORG_ACCESS_TYPE and isinstance(outs.get("org"), str):
            out[outs["org"]] = "authoritative" if outs.get("ownership") == "authoritative" else "additive"
    return out


def _org_access(outs: Mapping[str, Any]) -> list[DeployedMembership]:
    org = outs.get("org")
    if not isinstance(org, str):
        return []
    ownership: Ownership = "authoritative" if outs.get("ownership") == "authoritative" else "additive"
    out: list[DeployedMembership] = []
    for key, members in (outs.get("roles") or {}).items():
        scope, role = parse_role_key(org, str(key))
        if role not in (SPACE_ROLE_TYPES if scope.space else ORG_ROLE_TYPES):
            continue
        held = {str(k): str(v) for k, v in (members or {}).items()}
        out.append(DeployedMembership(scope, cast(RoleType, role), ownership, held))
    return out


def _membership(outs: Mapping[str, Any]) -> DeployedMembership | None:
    org, space, role = outs.get("org"), outs.get("space") or None, outs.get("role")
    if not isinstance(org, str) or not isinstance(role, str):
        return None
    if role not in (SPACE_ROLE_TYPES if space else ORG_ROLE_TYPES):
        return None
    ownership: Ownership = "authoritative" if outs.get("ownership") == "authoritative" else "additive"
    members = {str(k): str(v) for k, v in (outs.get("members") or {}).items()}
    return DeployedMembership(Scope(org, space), cast(RoleType, role), ownership, members)


def read_deployed_with_cli(project_root: Path, stack: str, env: Mapping[str, str] | None = None) -> Deployed:
    """The same, for the helper CLI (outside a Pulumi run): ``pulumi stack export``.

    Raises DeployedStateError with the CLI's message when the export fails."""
    command = ["pulumi", "stack", "export", "--stack", stack, "--non-interactive"]
    try:
        proc = subprocess.run(
            command,
            cwd=project_root,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except OSError as exc:
        raise DeployedStateError(_explain(stack, f"could not run pulumi: {exc}")) from None
    if proc.returncode != 0:
        raise DeployedStateError(_explain(stack, proc.stderr.strip() or f"exit {proc.returncode}"))
    try:
        deployment = json.loads(proc.stdout).get("deployment") or {}
    except ValueError as exc:
        raise DeployedStateError(_explain(stack, f"unreadable export: {exc}")) from None
    resources = {
        r["urn"]: {"type": r.get("type"), "outputs": r.get("outputs") or {}}
        for r in deployment.get("resources") or []
        if isinstance(r, dict) and "urn" in r and not r.get("delete")
    }
    return parse_deployed(resources)
