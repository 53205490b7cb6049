"""Seeding: default clients plus orgs/spaces/clients/users/roles from a dict, JSON or YAML.

Seed format (all keys optional)::

    config:  {job_delay_ms: 20, job_polls: 0, token_validity_s: 43199, job_fail_rate: 0}
    faults:  {latency_ms: 5, error_rate: 0.01, ...}       (see faults.FaultConfig)
    rate_limit: {limit: 2000, reset_interval_s: 3600}     (see faults.RateLimiter; enabled by default here)
    clients: [{id: ci, secret: s, authorities: "cloud_controller.admin scim.read", access_token_validity: 60}]
    orgs:    [{name: payments, guid: optional, spaces: [dev, {name: prod, guid: optional}]}]
    users:   [{username: alice@corp.com, origin: okta, guid: optional, cc_user: true}]
    roles:   [{type: space_developer, username: alice@corp.com, origin: okta, org: payments, space: dev},
              {type: organization_user, user_guid: U, org: payments}]

Seeding writes the store directly (no API rules); users named by roles are created on demand
(UAA user + CC user). Applying a seed twice is harmless: existing names are reused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .faults import FaultConfig, RateLimiter
from .state import SandboxState
from .store import SPACE_ROLE_SET
from .tokens import Client, Login

DEFAULT_CLIENTS: tuple[dict[str, Any], ...] = (
    {
        "id": "cf-access",
        "secret": "sandbox-secret",
        "authorities": "cloud_controller.admin scim.read scim.write",
    },
    {"id": "auditor", "secret": "auditor-secret", "authorities": "cloud_controller.read scim.read"},
    # The read-only client CI previews with (docs/permissions.md): global read, no writes.
    {
        "id": "cf-access-read",
        "secret": "read-secret",
        "authorities": "cloud_controller.admin_read_only scim.read",
    },
    {"id": "global-auditor", "secret": "auditor-secret", "authorities": "cloud_controller.global_auditor"},
    # The cf CLI's public client (empty secret), for password logins (`cf login`); "authorities"
    # stand for its scopes: what a user token from it may carry.
    {
        "id": "cf",
        "secret": "",
        "authorities": "openid uaa.user cloud_controller.read cloud_controller.write cloud_controller.admin "
        "cloud_controller.admin_read_only cloud_controller.global_auditor scim.read scim.write "
        "password.write",
    },
)
# Users who can log in with a password. `reader` holds read-only scopes only: the sandbox as
# an operator with `cf login -u reader` sees it (docs/permissions.md).
DEFAULT_LOGINS: tuple[dict[str, Any], ...] = (
    {
        "username": "reader",
        "password": "reader-password",
        "scopes": "openid uaa.user cloud_controller.read cloud_controller.admin_read_only scim.read",
    },
)


class SeedError(ValueError):
    pass


def load_seed_text(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        data = yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SeedError("seed must be a mapping")
    return data


def load_seed_file(path: Path) -> dict[str, Any]:
    return load_seed_text(path.read_text())


def _authorities(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, list):
        return [str(v) for v in value]
    raise SeedError("client authorities must be a string or list")


def apply_default_clients(state: SandboxState) -> None:
    for c in DEFAULT_CLIENTS:
        state.tokens.add_client(Client(c["id"], c["secret"], _authorities(c["authorities"])))
    for u in DEFAULT_LOGINS:
        state.tokens.add_login(Login(u["username"], u["password"], _authorities(u["scopes"])))


def apply_seed(state: SandboxState, seed: dict[str, Any]) -> dict[str, Any]:
    store = state.store
    if "config" in seed:
        state.apply_config(dict(seed["config"]))
    if "faults" in seed:
        state.faults = FaultConfig.from_knobs(dict(seed["faults"]))
    if "rate_limit" in seed:
        knobs = {"enabled": True, **dict(seed["rate_limit"])}
        unknown = set(knobs) - set(RateLimiter.KNOBS)
        if unknown:
            raise SeedError(f"unknown rate_limit knob(s): {sorted(unknown)}")
        state.limiter = RateLimiter(**knobs)
    for c in seed.get("clients") or []:
        cid = c.get("id") or c.get("client_id")
        if not cid:
            raise SeedError("client needs an id")
        state.tokens.add_client(
            Client(
                str(cid),
                str(c.get("secret", "")),
                _authorities(c.get("authorities", "")),
                c.get("access_token_validity"),
            )
        )

    orgs_out: dict[str, Any] = {}
    for o in seed.get("orgs") or seed.get("organizations") or []:
        if isinstance(o, str):
            o = {"name": o}
        name = str(o["name"])
        og = store.org_by_name.get(name)
        org = store.orgs[og] if og is not None else store.add_org(name, o.get("guid"))
        spaces_out: dict[str, str] = {}
        for s in o.get("spaces") or []:
            if isinstance(s, str):
                s = {"name": s}
            space = store.space_by_name(org.guid, str(s["name"])) or store.add_space(
                org.guid, str(s["name"]), s.get("guid")
            )
            spaces_out[space.name] = space.guid
        orgs_out[name] = {"guid": org.guid, "spaces": spaces_out}

    users_out: dict[str, str] = {}

    def ensure_user(username: str, origin: str, guid: str | None = None, cc_user: bool = True) -> str:
        uaa = store.uaa_lookup(username, origin) or store.add_uaa_user(username, origin, user_id=guid)
        if cc_user:
            store.ensure_cc_user(uaa.id)
        users_out[f"{origin}/{username}"] = uaa.id
        return uaa.id

    for u in seed.get("users") or []:
        ensure_user(
            str(u["username"]), str(u.get("origin", "uaa")), u.get("guid"), bool(u.get("cc_user", True))
        )

    created = 0
    for r in seed.get("roles") or []:
        role_type = str(r["type"])
        if r.get("user_guid"):
            user_guid = str(r["user_guid"])
            store.ensure_cc_user(user_guid)
        else:
            user_guid = ensure_user(str(r["username"]), str(r.get("origin", "uaa")))
        og = r.get("org_guid") or store.org_by_name.get(str(r.get("org")))
        if og is None or og not in store.orgs:
            raise SeedError(f"role {r}: unknown org")
        scope = og
        if role_type in SPACE_ROLE_SET:
            found = store.spaces.get(r.get("space_guid", "")) or store.space_by_name(og, str(r.get("space")))
            if found is None:
                raise SeedError(f"role {r}: unknown space")
            scope = found.guid
        if store.find_role(user_guid, scope, role_type) is None:
            store.add_role(role_type, user_guid, scope)
            created += 1
    state.mark_dirty()
    return {"orgs": orgs_out, "users": users_out, "roles_created": created}
