"""Shared pieces of the Cloud Controller routes: request helpers, list specs, visibility."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import errors
from .auth import Caller, cc_auth
from .pagination import paginate
from .params import ListQuery, ListSpec, list_spec, parse_list
from .responses import cc_json
from .state import SandboxState
from .store import Org, Space

API_VERSION = "3.228.0"


def state_of(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise errors.message_parse_error() from None
    if not isinstance(body, dict):
        raise errors.message_parse_error()
    return body


def unknown_fields(body: dict[str, Any], allowed: Iterable[str]) -> list[str]:
    extra = [k for k in body if k not in allowed]
    return ["Unknown field(s): '" + "', '".join(extra) + "'"] if extra else []


def ruby_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


# ---- list helpers --------------------------------------------------------------------------------
def order_items(items: list[Any], q: ListQuery, key_name: Callable[[Any], str] | None = None) -> list[Any]:
    """Items arrive in creation order; apply ``order_by`` (name sorts are stable on creation order)."""
    if q.order_by == "name" and key_name is not None:
        return sorted(items, key=key_name, reverse=q.descending)
    return items[::-1] if q.descending else items


def list_response(
    request: Request,
    q: ListQuery,
    path: str,
    items: list[Any],
    render: Callable[[Any, str], dict[str, Any]],
    included: Callable[[list[Any], str], dict[str, Any]] | None = None,
) -> Response:
    base = base_url(request)
    pagination, page = paginate(items, q, base, path)
    body: dict[str, Any] = {"pagination": pagination, "resources": [render(x, base) for x in page]}
    if included is not None:
        body["included"] = included(list(page), base)
    return cc_json(body)


def filter_set(q: ListQuery, key: str) -> set[str] | None:
    values = q.filters.get(key)
    return set(values) if values is not None else None


def param_error(messages: list[str]) -> errors.CFError:
    return errors.bad_query_parameter(messages)


ORGS_SPEC: ListSpec = list_spec(
    ("names", "isolation_segment_guid"),
    param_error,
    metadata=True,
    order_by_values=("created_at", "updated_at", "name"),
)
SPACES_SPEC: ListSpec = list_spec(
    ("names", "organization_guids", "include"),
    param_error,
    metadata=True,
    order_by_values=("created_at", "updated_at", "name"),
    include_values=("org", "organization"),
)


def users_extra(filters: dict[str, list[str]]) -> list[str]:
    msgs = []
    if "origins" in filters and "usernames" not in filters and "partial_usernames" not in filters:
        msgs.append("Origins filter cannot be provided without usernames or partial_usernames filter.")
    if "usernames" in filters and "partial_usernames" in filters:
        msgs.append("Usernames filter cannot be provided with both usernames and partial_usernames filter.")
    return msgs


USERS_SPEC: ListSpec = list_spec(
    ("usernames", "partial_usernames", "origins"),
    errors.unprocessable,
    metadata=True,
    extra_validate=users_extra,
)
ROLES_SPEC: ListSpec = list_spec(
    ("organization_guids", "space_guids", "user_guids", "types", "include"),
    errors.unprocessable,
    metadata=False,
    include_values=("user", "organization", "space"),
    default_order_by="created_at",
)


# ---- visibility ------------------------------------------------------------------------------------
def org_or_404(state: SandboxState, caller: Caller, guid: str) -> Org:
    """The org, if it exists and the caller can see it; else CC's 404."""
    org = state.store.orgs.get(guid)
    if org is None or not (caller.global_read or guid in caller.visible_orgs(state.store)):
        raise errors.resource_not_found("Organization")
    return org


def space_or_404(state: SandboxState, caller: Caller, guid: str) -> Space:
    """The space, if it exists and the caller can see it; else CC's 404."""
    space = state.store.spaces.get(guid)
    if space is None or not (caller.global_read or guid in caller.visible_spaces(state.store)):
        raise errors.resource_not_found("Space")
    return space


def admin_write(request: Request) -> SandboxState:
    """The state, once the caller is authenticated for writing and is an admin (else 401/403)."""
    state = state_of(request)
    if not cc_auth(state, request, write=True).admin:
        raise errors.not_authorized()
    return state


def list_request(request: Request, spec: ListSpec) -> tuple[SandboxState, Caller, ListQuery]:
    """A CC list endpoint's state, authenticated caller and parsed query (401 before 400)."""
    state = state_of(request)
    caller = cc_auth(state, request)
    return state, caller, parse_list(request.query_params, spec)


def readable_user_guids(state: SandboxState, caller: Caller) -> set[str]:
    """Non-global readers: users with a role in the caller's orgs (or their spaces), plus themselves."""
    store = state.store
    orgs = caller.visible_orgs(store)
    out = {caller.user_guid}
    for og in orgs:
        for rg in store.roles_by_scope.get(og, {}):
            out.add(store.roles[rg].user_guid)
        for sg in store.spaces_by_org.get(og, {}):
            for rg in store.roles_by_scope.get(sg, {}):
                out.add(store.roles[rg].user_guid)
    return out


def user_readable(state: SandboxState, caller: Caller, guid: str) -> bool:
    if guid not in state.store.cc_users:
        return False
    return caller.global_read or guid in readable_user_guids(state, caller)


def labels_match(q: ListQuery) -> bool:
    """The sandbox stores no labels: only negative requirements (``!k``, ``k!=v``, ``k notin (..)``) match."""
    selector = q.filters.get("label_selector")
    if not selector:
        return True
    requirements = re.split(r",(?![^(]*\))", selector[0])
    return all(r.strip().startswith("!") or "!=" in r or " notin " in r for r in requirements if r.strip())
