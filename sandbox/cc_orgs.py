"""CC organizations and spaces: list, get, create."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from . import errors
from .auth import cc_auth
from .cc_common import (
    ORGS_SPEC,
    SPACES_SPEC,
    admin_write,
    base_url,
    filter_set,
    json_body,
    labels_match,
    list_request,
    list_response,
    order_items,
    org_or_404,
    space_or_404,
    state_of,
    unknown_fields,
)
from .presenters import org_dict, space_dict
from .responses import accepted, cc_json
from .store import Space

router = APIRouter()


# ---- organizations ------------------------------------------------------------------------------
@router.get("/v3/organizations")
async def list_orgs(request: Request) -> Response:
    state, caller, q = list_request(request, ORGS_SPEC)
    store = state.store
    names, guids = filter_set(q, "names"), filter_set(q, "guids")
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
        and labels_match(q)
        and q.time_ok(o)
    ]
    return list_response(request, q, "/v3/organizations", order_items(items, q, lambda o: o.name), org_dict)


@router.post("/v3/organizations")
async def create_org(request: Request) -> Response:
    state = admin_write(request)
    body = await json_body(request)
    msgs = unknown_fields(body, ("name", "suspended", "metadata"))
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
    return cc_json(org_dict(org, base_url(request)), 201)


@router.get("/v3/organizations/{guid}")
async def get_org(request: Request, guid: str) -> Response:
    state = state_of(request)
    org = org_or_404(state, cc_auth(state, request), guid)
    return cc_json(org_dict(org, base_url(request)))


# ---- spaces ----------------------------------------------------------------------------------------
@router.get("/v3/spaces")
async def list_spaces(request: Request) -> Response:
    state, caller, q = list_request(request, SPACES_SPEC)
    store = state.store
    names, guids, org_guids = (
        filter_set(q, "names"),
        filter_set(q, "guids"),
        filter_set(q, "organization_guids"),
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
        and labels_match(q)
        and q.time_ok(s)
    ]

    included = None
    if q.include:

        def included(page: list[Space], base: str) -> dict[str, Any]:
            org_guids_page = dict.fromkeys(s.org_guid for s in page)
            return {"organizations": [org_dict(store.orgs[g], base) for g in org_guids_page]}

    return list_response(
        request, q, "/v3/spaces", order_items(items, q, lambda s: s.name), space_dict, included
    )


@router.post("/v3/spaces")
async def create_space(request: Request) -> Response:
    state = state_of(request)
    caller = cc_auth(state, request, write=True)
    body = await json_body(request)
    msgs = unknown_fields(body, ("name", "relationships", "metadata"))
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
    return cc_json(space_dict(space, base_url(request)), 201)


@router.get("/v3/spaces/{guid}")
async def get_space(request: Request, guid: str) -> Response:
    state = state_of(request)
    space = space_or_404(state, cc_auth(state, request), guid)
    return cc_json(space_dict(space, base_url(request)))


@router.delete("/v3/spaces/{guid}")
async def delete_space(request: Request, guid: str) -> Response:
    """202 + a ``space.delete`` job; the job removes the space and its roles (as CC does
    for a space without apps or service instances, the only kind the sandbox has)."""
    state = state_of(request)
    caller = cc_auth(state, request, write=True)
    space_or_404(state, caller, guid)
    if not caller.admin:
        raise errors.not_authorized()
    job = state.start_job("space.delete", "space", guid)
    return accepted(f"{base_url(request)}/v3/jobs/{job.guid}")
