"""Cloud Controller V3 endpoints: root, info, organizations, spaces, users, roles, jobs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from . import errors
from .auth import Caller, cc_auth
from .pagination import paginate
from .params import ListQuery, ListSpec, list_spec, parse_list
from .presenters import job_dict, org_dict, role_json_text, space_dict, store_user_dict
from .responses import accepted, cc_json, encode, rails_escape, raw_json
from .state import SandboxState
from .store import ALL_ROLE_TYPES, ORG_ROLE_SET, SPACE_ROLE_SET, Org, Role, Space, Store

router = APIRouter()

API_VERSION = "3.228.0"


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _json_body(request: Request) -> dict[str, Any]:
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


def _unknown_fields(body: dict[str, Any], allowed: Iterable[str]) -> list[str]:
    extra = [k for k in body if k not in allowed]
    return ["Unknown field(s): '" + "', '".join(extra) + "'"] if extra else []


def _ruby_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


# ---- root ----------------------------------------------------------------------------------------
@router.get("/")
async def root(request: Request) -> Response:
    base = _base(request)
    host = request.url.hostname or "127.0.0.1"
    return cc_json(
        {
            "links": {
                "self": {"href": base},
                "bits_service": None,
                "cloud_controller_v2": None,
                "cloud_controller_v3": {"href": f"{base}/v3", "meta": {"version": API_VERSION}},
                "network_policy_v0": {"href": f"{base}/networking/v0/external"},
                "network_policy_v1": {"href": f"{base}/networking/v1/external"},
                "login": {"href": f"{base}/uaa"},
                "uaa": {"href": f"{base}/uaa"},
                "credhub": None,
                "routing": {"href": f"{base}/routing"},
                "logging": None,
                "log_cache": {"href": f"{base}/log-cache"},
                "log_stream": None,
                "app_ssh": {
                    "href": f"{host}:2222",
                    "meta": {"host_key_fingerprint": "sandbox", "oauth_client": "ssh-proxy"},
                },
            }
        }
    )


@router.get("/v3")
async def v3_root(request: Request) -> Response:
    base = _base(request)
    names = [
        "app_usage_events",
        "audit_events",
        "buildpacks",
        "builds",
        "deployments",
        "domains",
        "droplets",
        "environment_variable_groups",
        "feature_flags",
        "info",
        "isolation_segments",
        "organizations",
        "organization_quotas",
        "packages",
        "processes",
        "resource_matches",
        "roles",
        "routes",
        "security_groups",
        "service_brokers",
        "service_instances",
        "service_credential_bindings",
        "service_offerings",
        "service_plans",
        "service_route_bindings",
        "service_usage_events",
        "spaces",
        "space_quotas",
        "stacks",
        "tasks",
        "users",
    ]
    links: dict[str, Any] = {"self": {"href": f"{base}/v3"}}
    links.update({n: {"href": f"{base}/v3/{n}"} for n in names})
    links["apps"] = {"href": f"{base}/v3/apps"}
    return cc_json({"links": dict(sorted(links.items()))})


@router.get("/v3/info")
async def v3_info(request: Request) -> Response:
    base = _base(request)
    return cc_json(
        {
            "build": "sandbox",
            "cli_version": {"minimum": "", "recommended": ""},
            "custom": {},
            "description": "cf-access local sandbox",
            "name": "sandbox",
            "version": 0,
            "osbapi_version": "2.15",
            "rate_limits": {
                "enabled": _state(request).limiter.enabled,
                "general_limit": _state(request).limiter.limit,
                "reset_interval_in_minutes": _state(request).limiter.reset_interval_s // 60,
            },
            "links": {"self": {"href": f"{base}/v3/info"}, "support": {"href": ""}},
        }
    )


@router.get("/v2/info")
async def v2_info(request: Request) -> Response:
    base = _base(request)
    return cc_json(
        {
            "name": "sandbox",
            "build": "sandbox",
            "support": "",
            "version": 0,
            "description": "cf-access local sandbox",
            "authorization_endpoint": f"{base}/uaa",
            "token_endpoint": f"{base}/uaa",
            "min_cli_version": None,
            "min_recommended_cli_version": None,
            "app_ssh_endpoint": "",
            "app_ssh_host_key_fingerprint": "",
            "app_ssh_oauth_client": "ssh-proxy",
            "doppler_logging_endpoint": "",
            "api_version": "2.250.0",
            "osbapi_version": "2.15",
        }
    )


# ---- list helpers --------------------------------------------------------------------------------
def _order(items: list[Any], q: ListQuery, key_name: Callable[[Any], str] | None = None) -> list[Any]:
    """Items arrive in creation order; apply ``order_by`` (name sorts are stable on creation order)."""
    if q.order_by == "name" and key_name is not None:
        return sorted(items, key=key_name, reverse=q.descending)
    return items[::-1] if q.descending else items


def _list_response(
    request: Request,
    q: ListQuery,
    path: str,
    items: list[Any],
    render: Callable[[Any, str], dict[str, Any]],
    included: Callable[[list[Any], str], dict[str, Any]] | None = None,
) -> Response:
    base = _base(request)
    pagination, page = paginate(items, q, base, path)
    body: dict[str, Any] = {"pagination": pagination, "resources": [render(x, base) for x in page]}
    if included is not None:
        body["included"] = included(list(page), base)
    return cc_json(body)


def _filter_set(q: ListQuery, key: str) -> set[str] | None:
    values = q.filters.get(key)
    return set(values) if values is not None else None


def _param_error(messages: list[str]) -> errors.CFError:
    return errors.bad_query_parameter(messages)


ORGS_SPEC: ListSpec = list_spec(
    ("names", "isolation_segment_guid"),
    _param_error,
    metadata=True,
    order_by_values=("created_at", "updated_at", "name"),
)
SPACES_SPEC: ListSpec = list_spec(
    ("names", "organization_guids", "include"),
    _param_error,
    metadata=True,
    order_by_values=("created_at", "updated_at", "name"),
    include_values=("org", "organization"),
)


def _users_extra(filters: dict[str, list[str]]) -> list[str]:
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
    extra_validate=_users_extra,
)
ROLES_SPEC: ListSpec = list_spec(
    ("organization_guids", "space_guids", "user_guids", "types", "include"),
    errors.unprocessable,
    metadata=False,
    include_values=("user", "organization", "space"),
    default_order_by="created_at",
)


# ---- organizations ------------------------------------------------------------------------------
def _readable_org(state: SandboxState, caller: Caller, guid: str) -> Org | None:
    org = state.store.orgs.get(guid)
    if org is None or not (caller.global_read or guid in caller.visible_orgs(state.store)):
        return None
    return org


@router.get("/v3/organizations")
async def list_orgs(request: Request) -> Response:
    state = _state(request)
    caller = cc_auth(state, request)
    q = parse_list(request.query_params, ORGS_SPEC)
    store = state.store
    names, guids = _filter_set(q, "names"), _filter_set(q, "guids")
    if names is not None and guids is None:
        wanted = {g for g in (store.org_by_name.get(n) for n in names) if g is not None}
        cands = (
            [store.orgs[g] for g in store.orgs if g in wanted]
            if len(wanted) > 1
            else [store.orgs[g] for g in wanted]
        )
    else:
        cands = list(store.orgs.values())
    visible = None if caller.global_read else caller.visible_orgs(store)
    items = [
        o
        for o in cands
        if (names is None or o.name in names)
        and (guids is None or o.guid in guids)
        and (visible is None or o.guid in visible)
        and _labels_match(q)
        and q.time_ok(o)
    ]
    return _list_response(request, q, "/v3/organizations", _order(items, q, lambda o: o.name), org_dict)


@router.post("/v3/organizations")
async def create_org(request: Request) -> Response:
    state = _state(request)
    caller = cc_auth(state, request, write=True)
    if not caller.admin:
        raise errors.not_authorized()
    body = await _json_body(request)
    msgs = _unknown_fields(body, ("name", "suspended", "metadata"))
    name = body.get("name")
    if name is None:
        msgs.append("Name can't be blank")
    elif not isinstance(name, str):
        msgs.append("Name must be a string")
    elif len(name) > 255:
        msgs.append("Name is too long (maximum is 255 characters)")
    if msgs:
        raise errors.unprocessable(msgs)
    assert isinstance(name, str)
    if name in state.store.org_by_name:
        raise errors.unprocessable(f"Organization '{name}' already exists.")
    org = state.store.add_org(name)
    org.suspended = bool(body.get("suspended", False))
    state.mark_dirty()
    return cc_json(org_dict(org, _base(request)), 201)


@router.get("/v3/organizations/{guid}")
async def get_org(request: Request, guid: str) -> Response:
    state = _state(request)
    caller = cc_auth(state, request)
    org = _readable_org(state, caller, guid)
    if org is None:
        raise errors.resource_not_found("Organization")
    return cc_json(org_dict(org, _base(request)))


# ---- spaces ----------------------------------------------------------------------------------------
def _readable_space(state: SandboxState, caller: Caller, guid: str) -> Space | None:
    space = state.store.spaces.get(guid)
    if space is None or not (caller.global_read or guid in caller.visible_spaces(state.store)):
        return None
    return space


@router.get("/v3/spaces")
async def list_spaces(request: Request) -> Response:
    state = _state(request)
    caller = cc_auth(state, request)
    q = parse_list(request.query_params, SPACES_SPEC)
    store = state.store
    names, guids, org_guids = (
        _filter_set(q, "names"),
        _filter_set(q, "guids"),
        _filter_set(q, "organization_guids"),
    )
    if org_guids is not None:
        wanted: set[str] = set()
        for og in org_guids:
            wanted.update(store.spaces_by_org.get(og, {}))
        cands = [store.spaces[g] for g in store.spaces if g in wanted]
    else:
        cands = list(store.spaces.values())
    visible = None if caller.global_read else caller.visible_spaces(store)
    items = [
        s
        for s in cands
        if (names is None or s.name in names)
        and (guids is None or s.guid in guids)
        and (visible is None or s.guid in visible)
        and _labels_match(q)
        and q.time_ok(s)
    ]

    included = None
    if q.include:

        def included(page: list[Space], base: str) -> dict[str, Any]:
            org_guids_page = dict.fromkeys(s.org_guid for s in page)
            return {"organizations": [org_dict(store.orgs[g], base) for g in org_guids_page]}

    return _list_response(request, q, "/v3/spaces", _order(items, q, lambda s: s.name), space_dict, included)


@router.post("/v3/spaces")
async def create_space(request: Request) -> Response:
    state = _state(request)
    caller = cc_auth(state, request, write=True)
    body = await _json_body(request)
    msgs = _unknown_fields(body, ("name", "relationships", "metadata"))
    name = body.get("name")
    if name is None:
        msgs.append("Name can't be blank")
    elif not isinstance(name, str):
        msgs.append("Name must be a string")
    rel = body.get("relationships")
    org_guid = None
    if not isinstance(rel, dict):
        msgs.append("Relationships 'relationships' is not an object")
    else:
        data = (
            (rel.get("organization") or {}).get("data") if isinstance(rel.get("organization"), dict) else None
        )
        org_guid = data.get("guid") if isinstance(data, dict) else None
        if not isinstance(org_guid, str):
            msgs.append(
                "Relationships Organization must be structured like this: "
                '"organization: {"data": {"guid": "valid-guid"}}"'
            )
    if msgs:
        raise errors.unprocessable(msgs)
    assert isinstance(name, str) and isinstance(org_guid, str)
    store = state.store
    org = store.orgs.get(org_guid)
    if org is None or not (caller.global_read or org_guid in caller.visible_orgs(store)):
        raise errors.unprocessable(
            "Invalid organization. Ensure the organization exists and you have access to it."
        )
    if not caller.admin and not caller.has_role(store, org_guid, "organization_manager"):
        raise errors.not_authorized()
    if store.space_by_name(org_guid, name) is not None:
        raise errors.unprocessable(f"Space '{name}' already exists.")
    space = store.add_space(org_guid, name)
    state.mark_dirty()
    return cc_json(space_dict(space, _base(request)), 201)


@router.get("/v3/spaces/{guid}")
async def get_space(request: Request, guid: str) -> Response:
    state = _state(request)
    caller = cc_auth(state, request)
    space = _readable_space(state, caller, guid)
    if space is None:
        raise errors.resource_not_found("Space")
    return cc_json(space_dict(space, _base(request)))


# ---- users -----------------------------------------------------------------------------------------
def _readable_user_guids(state: SandboxState, caller: Caller) -> set[str]:
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


def _user_readable(state: SandboxState, caller: Caller, guid: str) -> bool:
    if guid not in state.store.cc_users:
        return False
    return caller.global_read or guid in _readable_user_guids(state, caller)


def _matching_users(
    state: SandboxState, q: ListQuery, readable: set[str] | None, members: set[str] | None = None
) -> list[str]:
    """CC user guids (creation order) matching a UsersListMessage; UAA supplies the name filters."""
    store = state.store
    f = q.filters
    uaa_ids: set[str] | None = None
    origins = {o.lower() for o in f["origins"]} if "origins" in f else None
    if "usernames" in f:
        uaa_ids = set()
        for name in f["usernames"]:
            uaa_ids.update(store.uaa_by_name.get(name.lower(), {}))
    elif "partial_usernames" in f:
        parts = [p.lower() for p in f["partial_usernames"]]
        uaa_ids = {u.id for u in store.uaa_users.values() if any(p in u.username.lower() for p in parts)}
    if uaa_ids is not None and origins is not None:
        uaa_ids = {i for i in uaa_ids if store.uaa_users[i].origin.lower() in origins}
    guids = _filter_set(q, "guids")
    smallest = min((s for s in (uaa_ids, members, guids) if s is not None), key=len, default=None)
    if smallest is not None and len(smallest) <= 1:
        cands = [g for g in smallest if g in store.cc_users]
    else:
        cands = list(store.cc_users)
    return [
        g
        for g in cands
        if (uaa_ids is None or g in uaa_ids)
        and (guids is None or g in guids)
        and (members is None or g in members)
        and (readable is None or g in readable)
        and _labels_match(q)
        and q.time_ok(store.cc_users[g])
    ]


def _labels_match(q: ListQuery) -> bool:
    """The sandbox stores no labels: only negative requirements (``!k``, ``k!=v``, ``k notin (..)``) match."""
    selector = q.filters.get("label_selector")
    if not selector:
        return True
    requirements = re.split(r",(?![^(]*\))", selector[0])
    return all(r.strip().startswith("!") or "!=" in r or " notin " in r for r in requirements if r.strip())


@router.get("/v3/users")
async def list_users(request: Request) -> Response:
    state = _state(request)
    caller = cc_auth(state, request)
    q = parse_list(request.query_params, USERS_SPEC)
    readable = None if caller.global_read else _readable_user_guids(state, caller)
    items = _matching_users(state, q, readable)
    store = state.store
    return _list_response(
        request, q, "/v3/users", _order(items, q), lambda g, base: store_user_dict(store, g, base)
    )


MEMBERS_SPEC: ListSpec = list_spec(
    ("usernames", "partial_usernames", "origins"), _param_error, metadata=True, extra_validate=_users_extra
)


def _scope_members(store: Store, scope_guid: str) -> set[str]:
    return {store.roles[rg].user_guid for rg in store.roles_by_scope.get(scope_guid, {})}


@router.get("/v3/organizations/{guid}/users")
async def list_org_users(request: Request, guid: str) -> Response:
    state = _state(request)
    caller = cc_auth(state, request)
    q = parse_list(request.query_params, MEMBERS_SPEC)
    if _readable_org(state, caller, guid) is None:
        raise errors.resource_not_found("Organization")
    store = state.store
    items = _matching_users(state, q, None, _scope_members(store, guid))
    return _list_response(
        request,
        q,
        f"/v3/organizations/{guid}/users",
        _order(items, q),
        lambda g, base: store_user_dict(store, g, base),
    )


@router.get("/v3/spaces/{guid}/users")
async def list_space_users(request: Request, guid: str) -> Response:
    state = _state(request)
    caller = cc_auth(state, request)
    q = parse_list(request.query_params, MEMBERS_SPEC)
    if _readable_space(state, caller, guid) is None:
        raise errors.resource_not_found("Space")
    store = state.store
    items = _matching_users(state, q, None, _scope_members(store, guid))
    return _list_response(
        request,
        q,
        f"/v3/spaces/{guid}/users",
        _order(items, q),
        lambda g, base: store_user_dict(store, g, base),
    )


@router.patch("/v3/users/{guid}")
async def update_user(request: Request, guid: str) -> Response:
    """Metadata update (labels/annotations are accepted but not stored by the sandbox)."""
    state = _state(request)
    caller = cc_auth(state, request, write=True)
    if not _user_readable(state, caller, guid):
        raise errors.resource_not_found("User")
    if not caller.admin:
        raise errors.not_authorized()
    body = await _json_body(request)
    msgs = _unknown_fields(body, ("metadata",))
    if msgs:
        raise errors.unprocessable(msgs)
    return cc_json(store_user_dict(state.store, guid, _base(request)))


@router.get("/v3/users/{guid}")
async def get_user(request: Request, guid: str) -> Response:
    state = _state(request)
    caller = cc_auth(state, request)
    if not _user_readable(state, caller, guid):
        raise errors.resource_not_found("User")
    return cc_json(store_user_dict(state.store, guid, _base(request)))


@router.post("/v3/users")
async def create_user(request: Request) -> Response:
    state = _state(request)
    caller = cc_auth(state, request, write=True)
    if not caller.admin:
        raise errors.not_authorized()
    body = await _json_body(request)
    msgs = _unknown_fields(body, ("guid", "origin", "username", "metadata"))
    guid, origin, username = body.get("guid"), body.get("origin"), body.get("username")
    if guid is not None:
        if not isinstance(guid, str):
            msgs.append("Guid must be a string")
        if not (isinstance(guid, str) and 1 <= len(guid) <= 200):
            msgs.append("Guid must be between 1 and 200 characters")
    if origin is not None and not isinstance(origin, str):
        msgs.append("Origin must be a string")
    if username is not None and not isinstance(username, str):
        msgs.append("Username must be a string")
    if guid:
        if username:
            msgs.append("Username cannot be provided with 'guid'")
        if origin:
            msgs.append("Origin cannot be provided with 'guid'")
    elif username or origin:
        if not username:
            msgs.append("Origin can only be provided together with 'username'")
        if not origin:
            msgs.append("Username can only be provided together with 'origin'")
        if origin == "uaa":
            msgs.append("Origin cannot be 'uaa' when creating a user by username")
    else:
        msgs.append("Guid or 'username' and 'origin' must be provided")
    if msgs:
        raise errors.unprocessable(msgs)
    store = state.store
    if guid:
        assert isinstance(guid, str)
        if guid in store.cc_users:
            raise errors.unprocessable(f"User with guid '{guid}' already exists.")
        store.add_cc_user(guid)
        state.mark_dirty()
        return cc_json(store_user_dict(store, guid, _base(request)), 201)
    assert isinstance(username, str) and isinstance(origin, str)
    uaa = store.uaa_lookup(username, origin) or store.add_uaa_user(username, origin)
    if uaa.id in store.cc_users:
        raise errors.unprocessable(f"User with username '{username}' and origin '{origin}' already exists.")
    store.add_cc_user(uaa.id)
    state.mark_dirty()
    body_out = store_user_dict(store, uaa.id, _base(request))
    body_out["username"], body_out["presentation_name"], body_out["origin"] = username, username, origin
    return cc_json(body_out, 201)


@router.delete("/v3/users/{guid}")
async def delete_user(request: Request, guid: str) -> Response:
    state = _state(request)
    caller = cc_auth(state, request, write=True)
    if not _user_readable(state, caller, guid):
        raise errors.resource_not_found("User")
    if not caller.admin:
        raise errors.not_authorized()
    job = state.start_job("user.delete", "user", guid)
    return accepted(f"{_base(request)}/v3/jobs/{job.guid}")


# ---- roles -----------------------------------------------------------------------------------------
def _role_readable(store: Store, caller: Caller, role: Role) -> bool:
    if caller.global_read:
        return True
    if role.space_guid is not None:
        return role.space_guid in caller.visible_spaces(store)
    return role.org_guid in caller.visible_orgs(store)


def _role_writable(store: Store, caller: Caller, role_type: str, scope_guid: str) -> bool:
    if caller.admin:
        return True
    if role_type in SPACE_ROLE_SET:
        org_guid = store.spaces[scope_guid].org_guid
        return caller.has_role(store, org_guid, "organization_manager") or caller.has_role(
            store, scope_guid, "space_manager"
        )
    return caller.has_role(store, scope_guid, "organization_manager")


def _role_candidates(store: Store, q: ListQuery) -> tuple[list[Role], bool]:
    """Pick the most selective index; returns (roles, already_in_creation_order)."""
    f = q.filters
    roles = store.roles
    if "guids" in f:
        return [roles[g] for g in dict.fromkeys(f["guids"]) if g in roles], False
    index: dict[str, dict[str, None]] | None = None
    keys: list[str] = []
    for name, idx in (
        ("user_guids", store.roles_by_user),
        ("space_guids", store.roles_by_scope),
        ("organization_guids", store.roles_by_scope),
    ):
        if name in f:
            index, keys = idx, f[name]
            break
    if index is None:
        return list(roles.values()), True
    out: list[Role] = []
    for k in dict.fromkeys(keys):
        bucket = index.get(k)
        if bucket:
            out.extend(roles[g] for g in bucket)
    return out, len(keys) == 1


@router.get("/v3/roles")
async def list_roles(request: Request) -> Response:
    state = _state(request)
    caller = cc_auth(state, request)
    q = parse_list(request.query_params, ROLES_SPEC)
    store = state.store
    cands, ordered = _role_candidates(store, q)
    f = q.filters
    preds: list[Callable[[Role], bool]] = []
    if "types" in f:
        types = set(f["types"])
        preds.append(lambda r: r.type in types)
    if "user_guids" in f:
        users = set(f["user_guids"])
        preds.append(lambda r: r.user_guid in users)
    if "space_guids" in f:
        spaces = set(f["space_guids"])
        preds.append(lambda r: r.space_guid in spaces)
    if "organization_guids" in f:
        orgs = set(f["organization_guids"])
        preds.append(lambda r: r.org_guid in orgs)
    if "guids" in f:
        guids = set(f["guids"])
        preds.append(lambda r: r.guid in guids)
    if q.time_filters:
        preds.append(q.time_ok)
    if not caller.global_read:
        preds.append(lambda r: _role_readable(store, caller, r))
    items = [r for r in cands if all(p(r) for p in preds)] if preds else cands
    if not ordered:
        items.sort(key=lambda r: r.seq)
    if q.descending:
        items.reverse()

    base = _base(request)
    pagination, page = paginate(items, q, base, "/v3/roles")
    parts = [
        '{"pagination":',
        rails_escape(encode(pagination)),
        ',"resources":[',
        ",".join(role_json_text(r, base) for r in page),
        "]",
    ]
    if q.include:
        parts += [',"included":', rails_escape(encode(_role_included(store, list(page), q.include, base)))]
    parts.append("}")
    return raw_json("".join(parts))


def _role_included(store: Store, page: list[Role], include: list[str], base: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "user" in include:
        users = dict.fromkeys(r.user_guid for r in page)
        out["users"] = [store_user_dict(store, g, base) for g in users if g in store.cc_users]
    if "organization" in include:
        orgs = dict.fromkeys(r.org_guid for r in page if r.org_guid is not None)
        out["organizations"] = [org_dict(store.orgs[g], base) for g in orgs if g in store.orgs]
    if "space" in include:
        spaces = dict.fromkeys(r.space_guid for r in page if r.space_guid is not None)
        out["spaces"] = [space_dict(store.spaces[g], base) for g in spaces if g in store.spaces]
    return out


ROLE_SHOW_SPEC = list_spec(
    ("include",), errors.unprocessable, metadata=False, include_values=("user", "organization", "space")
)


@router.get("/v3/roles/{guid}")
async def get_role(request: Request, guid: str) -> Response:
    state = _state(request)
    caller = cc_auth(state, request)
    include: list[str] = []
    if request.query_params:
        msgs = []
        extra = [k for k in request.query_params if k != "include"]
        if extra:
            msgs.append(
                "Unknown query parameter(s): '" + "', '".join(extra) + "'. Valid parameters are: 'include'"
            )
        if "include" in request.query_params:
            include = [i for i in request.query_params["include"].split(",") if i]
            for inc in include:
                if inc not in ("user", "organization", "space"):
                    msgs.append(
                        f"Invalid included resource: '{inc}'. Valid included resources are: "
                        "'user', 'organization', 'space'"
                    )
        if msgs:
            raise errors.unprocessable(msgs)
    store = state.store
    role = store.roles.get(guid)
    if role is None or not _role_readable(store, caller, role):
        raise errors.resource_not_found("Role")
    base = _base(request)
    text = role_json_text(role, base)
    if include:
        inc = rails_escape(encode(_role_included(store, [role], include, base)))
        text = text[:-1] + ',"included":' + inc + "}"
    return raw_json(text)


def _validate_role_create(body: dict[str, Any]) -> list[str]:
    msgs = _unknown_fields(body, ("type", "relationships"))
    role_type = body.get("type")
    rel = body.get("relationships")
    if not isinstance(rel, dict):
        msgs.append("Relationships 'relationships' is not an object")
    elif not rel:
        msgs.append("Relationships 'relationships' must include one or more valid relationships")
    else:
        rmsgs: list[str] = []
        extra = [k for k in rel if k not in ("space", "user", "organization")]
        if extra:
            rmsgs.append("Unknown field(s): '" + "', '".join(extra) + "'")
        user = rel.get("user")
        if not user:
            rmsgs.append("User can't be blank")
        user_data = user.get("data") if isinstance(user, dict) else None
        has_guid = isinstance(user_data, dict) and "guid" in user_data
        has_username = isinstance(user_data, dict) and "username" in user_data
        has_origin = isinstance(user_data, dict) and "origin" in user_data
        user_errors = len(rmsgs)
        if has_guid and has_username:
            rmsgs.append("Username cannot be specified when identifying user by guid")
        if has_guid and has_origin:
            rmsgs.append("User origin cannot be specified when identifying user by guid")
        if not has_username and has_origin:
            rmsgs.append("User origin cannot be specified without specifying the username")
        if not has_username and not has_guid and user:
            rmsgs.append("User must have a username or guid specified")
        user_errors = len(rmsgs) - user_errors
        space, org = rel.get("space"), rel.get("organization")
        space_data = space.get("data") if isinstance(space, dict) else None
        org_data = org.get("data") if isinstance(org, dict) else None
        scope_errors = len(rmsgs)
        if space_data is None and org_data is None:
            rmsgs.append("must specify either a space or an organization.")
        if space_data and role_type in ORG_ROLE_SET:
            rmsgs.append(f"Space cannot be provided with the organization role type: '{role_type}'.")
        if org_data and role_type in SPACE_ROLE_SET:
            rmsgs.append(f"Organization cannot be provided with the space role type: '{role_type}'.")
        if space_data and org_data:
            rmsgs.append("cannot specify both an organization and a space.")
        if len(rmsgs) == scope_errors:
            for label, rel_obj, name in (("Space", space, "space"), ("Organization", org, "organization")):
                if rel_obj is None:
                    continue
                data = rel_obj.get("data") if isinstance(rel_obj, dict) else None
                if not isinstance(data, dict) or not isinstance(data.get("guid"), str):
                    rmsgs.append(
                        f"{label} must be structured like this: "
                        f'"{name}: {{"data": {{"guid": "valid-guid"}}}}"'
                    )
                elif not 1 <= len(data["guid"]) <= 200:
                    rmsgs.append(f"{label} guid must be between 1 and 200 characters")
        if user_errors == 0 and isinstance(user_data, dict):
            if has_guid and not isinstance(user_data.get("guid"), str):
                rmsgs.append("User guid must be a string")
            if has_username and not isinstance(user_data.get("username"), str):
                rmsgs.append("Username must be a string")
            if (
                has_origin
                and user_data.get("origin") is not None
                and not isinstance(user_data.get("origin"), str)
            ):
                rmsgs.append("User origin must be a string")
        msgs.extend(f"Relationships {m}" for m in rmsgs)
    if role_type not in ALL_ROLE_TYPES:
        msgs.append(f"Type must be one of the allowed types {_ruby_list(ALL_ROLE_TYPES)}")
    return msgs


SPACE_USER_MSG = (
    "Users cannot be assigned roles in a space if they do not have a role in that space's organization."
)


def _lookup_uaa_guid(store: Store, username: str, origin: str | None, *, space_role: bool) -> str:
    if origin is None:
        origins = store.uaa_origins_for(username)
        if len(origins) > 1:
            raise errors.unprocessable(
                f"Ambiguous user. User with username '{username}' exists in the following origins: "
                f"{', '.join(origins)}. Specify an origin to disambiguate."
            )
        found = store.uaa_lookup(username, origins[0]) if origins else None
    else:
        found = store.uaa_lookup(username, origin)
    if found is not None:
        return found.id
    if space_role:
        raise errors.unprocessable(SPACE_USER_MSG)
    if origin is not None:
        raise errors.unprocessable(f"No user exists with the username '{username}' and origin '{origin}'.")
    raise errors.unprocessable(f"No user exists with the username '{username}'.")


@router.post("/v3/roles")
async def create_role(request: Request) -> Response:
    state = _state(request)
    caller = cc_auth(state, request, write=True)
    body = await _json_body(request)
    msgs = _validate_role_create(body)
    if msgs:
        raise errors.unprocessable(msgs)
    store = state.store
    role_type: str = body["type"]
    rel = body["relationships"]
    user_data: dict[str, Any] = rel["user"]["data"]
    user_guid: str | None = user_data.get("guid")
    username: str | None = user_data.get("username")
    origin: str | None = user_data.get("origin")

    if role_type in SPACE_ROLE_SET:
        space_guid: str = rel["space"]["data"]["guid"]
        space = store.spaces.get(space_guid)
        if space is None:
            raise errors.unprocessable(
                "Invalid space. Ensure that the space exists and you have access to it."
            )
        if not _role_writable(store, caller, role_type, space_guid):
            raise errors.not_authorized()
        if user_guid is None:
            assert username is not None
            user_guid = _lookup_uaa_guid(store, username, origin, space_role=True)
        if not _user_readable(state, caller, user_guid):
            raise errors.unprocessable(SPACE_USER_MSG)
        if not store.has_org_user(user_guid, space.org_guid):
            raise errors.unprocessable(SPACE_USER_MSG)
        if store.find_role(user_guid, space_guid, role_type) is not None:
            raise errors.unprocessable(
                f"User '{store.presentation_name(user_guid)}' already has '{role_type}' role in space "
                f"'{space.name}'."
            )
        role = store.add_role(role_type, user_guid, space_guid)
    else:
        org_guid: str = rel["organization"]["data"]["guid"]
        org = store.orgs.get(org_guid)
        if org is None:
            raise errors.unprocessable(
                "Invalid organization. Ensure that the organization exists and you have access to it."
            )
        if not _role_writable(store, caller, role_type, org_guid):
            raise errors.not_authorized()
        if user_guid is None:
            assert username is not None
            if origin is not None and origin != "uaa":
                existing = store.uaa_lookup(username, origin)
                user_guid = existing.id if existing is not None else store.add_uaa_user(username, origin).id
            else:
                user_guid = _lookup_uaa_guid(store, username, origin, space_role=False)
        store.ensure_cc_user(user_guid)
        if store.find_role(user_guid, org_guid, role_type) is not None:
            raise errors.unprocessable(
                f"User '{store.presentation_name(user_guid)}' already has '{role_type}' role in organization "
                f"'{org.name}'."
            )
        role = store.add_role(role_type, user_guid, org_guid)
    state.mark_dirty()
    return raw_json(role_json_text(role, _base(request)), 201)


@router.delete("/v3/roles/{guid}")
async def delete_role(request: Request, guid: str) -> Response:
    state = _state(request)
    caller = cc_auth(state, request, write=True)
    store = state.store
    role = store.roles.get(guid)
    if role is None or not _role_readable(store, caller, role):
        raise errors.resource_not_found("Role")
    if not _role_writable(store, caller, role.type, role.scope_guid):
        raise errors.not_authorized()
    if (
        role.type == "organization_user"
        and role.org_guid is not None
        and store.has_space_roles_in_org(role.user_guid, role.org_guid)
    ):
        raise errors.unprocessable(
            "Cannot delete organization_user role while user has roles in spaces in that organization."
        )
    job = state.start_job("role.delete", "role", guid)
    return accepted(f"{_base(request)}/v3/jobs/{job.guid}")


# ---- jobs ------------------------------------------------------------------------------------------
@router.get("/v3/jobs/{guid}")
async def get_job(request: Request, guid: str) -> Response:
    state = _state(request)
    cc_auth(state, request)
    job = state.store.jobs.get(guid)
    if job is None:
        raise errors.resource_not_found("Job")
    state.poll_job(job)
    return cc_json(job_dict(job, _base(request), state.job_resource_exists(job)))
