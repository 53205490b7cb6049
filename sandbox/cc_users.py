"""CC users: list (incl. org/space member lists), get, create, update, delete."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from . import errors
from .auth import Caller, cc_auth
from .cc_common import (
    USERS_SPEC,
    admin_write,
    base_url,
    filter_set,
    json_body,
    labels_match,
    list_request,
    list_response,
    order_items,
    org_or_404,
    param_error,
    readable_user_guids,
    space_or_404,
    state_of,
    unknown_fields,
    user_readable,
    users_extra,
)
from .params import ListQuery, ListSpec, list_spec
from .presenters import store_user_dict
from .responses import accepted, cc_json
from .state import SandboxState
from .store import Store

router = APIRouter()


# ---- users -----------------------------------------------------------------------------------------
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
    guids = filter_set(q, "guids")
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
        and labels_match(q)
        and q.time_ok(store.cc_users[g])
    ]


@router.get("/v3/users")
async def list_users(request: Request) -> Response:
    state, caller, q = list_request(request, USERS_SPEC)
    readable = None if caller.global_read else readable_user_guids(state, caller)
    items = _matching_users(state, q, readable)
    store = state.store
    return list_response(
        request, q, "/v3/users", order_items(items, q), lambda g, base: store_user_dict(store, g, base)
    )


MEMBERS_SPEC: ListSpec = list_spec(
    ("usernames", "partial_usernames", "origins"), param_error, metadata=True, extra_validate=users_extra
)


def _scope_members(store: Store, scope_guid: str) -> set[str]:
    return {store.roles[rg].user_guid for rg in store.roles_by_scope.get(scope_guid, {})}


def _list_scope_users(
    request: Request, guid: str, path: str, check: Callable[[SandboxState, Caller, str], object]
) -> Response:
    """Users with a role in org/space ``guid`` (``check`` raises 404 unless the caller sees it)."""
    state, caller, q = list_request(request, MEMBERS_SPEC)
    check(state, caller, guid)
    store = state.store
    items = _matching_users(state, q, None, _scope_members(store, guid))
    return list_response(
        request, q, path, order_items(items, q), lambda g, base: store_user_dict(store, g, base)
    )


@router.get("/v3/organizations/{guid}/users")
async def list_org_users(request: Request, guid: str) -> Response:
    return _list_scope_users(request, guid, f"/v3/organizations/{guid}/users", org_or_404)


@router.get("/v3/spaces/{guid}/users")
async def list_space_users(request: Request, guid: str) -> Response:
    return _list_scope_users(request, guid, f"/v3/spaces/{guid}/users", space_or_404)


def _admin_on_user(request: Request, guid: str) -> SandboxState:
    """The state, for a writing caller who can see user ``guid`` (else 404) and is an admin (else 403)."""
    state = state_of(request)
    caller = cc_auth(state, request, write=True)
    if not user_readable(state, caller, guid):
        raise errors.resource_not_found("User")
    if not caller.admin:
        raise errors.not_authorized()
    return state


@router.patch("/v3/users/{guid}")
async def update_user(request: Request, guid: str) -> Response:
    """Metadata update (labels/annotations are accepted but not stored by the sandbox)."""
    state = _admin_on_user(request, guid)
    body = await json_body(request)
    msgs = unknown_fields(body, ("metadata",))
    if msgs:
        raise errors.unprocessable(msgs)
    return cc_json(store_user_dict(state.store, guid, base_url(request)))


@router.get("/v3/users/{guid}")
async def get_user(request: Request, guid: str) -> Response:
    state = state_of(request)
    caller = cc_auth(state, request)
    if not user_readable(state, caller, guid):
        raise errors.resource_not_found("User")
    return cc_json(store_user_dict(state.store, guid, base_url(request)))


@router.post("/v3/users")
async def create_user(request: Request) -> Response:
    state = admin_write(request)
    body = await json_body(request)
    msgs = unknown_fields(body, ("guid", "origin", "username", "metadata"))
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
        known = store.uaa_users.get(guid)
        if known is not None and state.faults.rejects(known.username):
            raise errors.user_rejected(known.username, known.origin, "User")
        if guid in store.cc_users:
            raise errors.unprocessable(f"User with guid '{guid}' already exists.")
        store.add_cc_user(guid)
        state.mark_dirty()
        return cc_json(store_user_dict(store, guid, base_url(request)), 201)
    assert isinstance(username, str) and isinstance(origin, str)
    if state.faults.rejects(username):
        raise errors.user_rejected(username, origin, "User")
    uaa = store.uaa_lookup(username, origin)
    if uaa is None:
        retry_after = state.faults.uaa_rate_limited()
        if retry_after is not None:
            raise errors.uaa_rate_limited(retry_after)
        uaa = store.add_uaa_user(username, origin)
    if uaa.id in store.cc_users:
        raise errors.unprocessable(f"User with username '{username}' and origin '{origin}' already exists.")
    store.add_cc_user(uaa.id)
    state.mark_dirty()
    body_out = store_user_dict(store, uaa.id, base_url(request))
    body_out["username"], body_out["presentation_name"], body_out["origin"] = username, username, origin
    return cc_json(body_out, 201)


@router.delete("/v3/users/{guid}")
async def delete_user(request: Request, guid: str) -> Response:
    state = _admin_on_user(request, guid)
    job = state.start_job("user.delete", "user", guid)
    return accepted(f"{base_url(request)}/v3/jobs/{job.guid}")
