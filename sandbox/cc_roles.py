"""CC roles (list, get, create with CC's membership rules, async delete) and jobs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from . import errors
from .auth import Caller, cc_auth
from .cc_common import (
    ROLES_SPEC,
    base_url,
    json_body,
    list_request,
    ruby_list,
    state_of,
    unknown_fields,
    user_readable,
)
from .pagination import paginate
from .params import ListQuery, list_spec
from .presenters import job_dict, org_dict, role_json_text, space_dict, store_user_dict
from .responses import accepted, cc_json, encode, rails_escape, raw_json
from .state import SandboxState
from .store import ALL_ROLE_TYPES, ORG_ROLE_SET, SPACE_ROLE_SET, Org, Role, Space, Store

router = APIRouter()
ScopeT = TypeVar("ScopeT", Org, Space)


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
    state, caller, q = list_request(request, ROLES_SPEC)
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

    base = base_url(request)
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
    state = state_of(request)
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
    base = base_url(request)
    text = role_json_text(role, base)
    if include:
        inc = rails_escape(encode(_role_included(store, [role], include, base)))
        text = text[:-1] + ',"included":' + inc + "}"
    return raw_json(text)


def _validate_role_create(body: dict[str, Any]) -> list[str]:
    msgs = unknown_fields(body, ("type", "relationships"))
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
        if not has_username and not has_guid:
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
            elif has_guid and not 1 <= len(user_data["guid"]) <= 200:
                rmsgs.append("User guid must be between 1 and 200 characters")
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
        msgs.append(f"Type must be one of the allowed types {ruby_list(ALL_ROLE_TYPES)}")
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


def _writable_scope(
    store: Store, caller: Caller, role_type: str, scopes: Mapping[str, ScopeT], guid: str, kind: str
) -> ScopeT:
    """The org or space (``kind``) a new role goes in: 422 if it does not exist, 403 if the
    caller may not give roles there."""
    scope = scopes.get(guid)
    if scope is None:
        raise errors.unprocessable(
            f"Invalid {kind}. Ensure that the {kind} exists and you have access to it."
        )
    if not _role_writable(store, caller, role_type, guid):
        raise errors.not_authorized()
    return scope


def _refuse_duplicate_role(
    store: Store, user_guid: str, role_type: str, scope: Org | Space, kind: str
) -> None:
    if store.find_role(user_guid, scope.guid, role_type) is not None:
        raise errors.unprocessable(
            f"User '{store.presentation_name(user_guid)}' already has '{role_type}' role in {kind} "
            f"'{scope.name}'."
        )


def _refuse_rejected_user(
    state: SandboxState, user_guid: str | None, username: str | None, origin: str | None
) -> None:
    """The ``reject_usernames`` fault, checked before anything (shadow user, CC user, role) is stored."""
    if user_guid is not None:
        uaa = state.store.uaa_users.get(user_guid)
        username, origin = (uaa.username, uaa.origin) if uaa is not None else (None, None)
    if username is not None and state.faults.rejects(username):
        raise errors.user_rejected(username, origin, "Role")


@router.post("/v3/roles")
async def create_role(request: Request) -> Response:
    state = state_of(request)
    caller = cc_auth(state, request, write=True)
    body = await json_body(request)
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
    _refuse_rejected_user(state, user_guid, username, origin)

    if role_type in SPACE_ROLE_SET:
        space_guid: str = rel["space"]["data"]["guid"]
        space = _writable_scope(store, caller, role_type, store.spaces, space_guid, "space")
        if user_guid is None:
            assert username is not None
            user_guid = _lookup_uaa_guid(store, username, origin, space_role=True)
        if not user_readable(state, caller, user_guid):
            raise errors.unprocessable(SPACE_USER_MSG)
        if not store.has_org_user(user_guid, space.org_guid):
            raise errors.unprocessable(SPACE_USER_MSG)
        _refuse_duplicate_role(store, user_guid, role_type, space, "space")
        role = store.add_role(role_type, user_guid, space_guid)
    else:
        org_guid: str = rel["organization"]["data"]["guid"]
        org = _writable_scope(store, caller, role_type, store.orgs, org_guid, "organization")
        if user_guid is None:
            assert username is not None
            if origin is not None and origin != "uaa" and state.config.allow_user_creation_by_org_manager:
                existing = store.uaa_lookup(username, origin)
                if existing is None:
                    retry_after = state.faults.uaa_rate_limited()
                    if retry_after is not None:
                        raise errors.uaa_rate_limited(retry_after)
                    existing = store.add_uaa_user(username, origin)
                user_guid = existing.id
            else:
                user_guid = _lookup_uaa_guid(store, username, origin, space_role=False)
        store.ensure_cc_user(user_guid)
        _refuse_duplicate_role(store, user_guid, role_type, org, "organization")
        role = store.add_role(role_type, user_guid, org_guid)
    state.mark_dirty()
    return raw_json(role_json_text(role, base_url(request)), 201)


@router.delete("/v3/roles/{guid}")
async def delete_role(request: Request, guid: str) -> Response:
    state = state_of(request)
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
    return accepted(f"{base_url(request)}/v3/jobs/{job.guid}")


# ---- jobs ------------------------------------------------------------------------------------------
@router.get("/v3/jobs/{guid}")
async def get_job(request: Request, guid: str) -> Response:
    state = state_of(request)
    cc_auth(state, request)
    job = state.store.jobs.get(guid)
    if job is None:
        raise errors.resource_not_found("Job")
    state.poll_job(job)
    return cc_json(job_dict(job, base_url(request), state.job_resource_exists(job)))
