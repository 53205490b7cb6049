"""UAA endpoints under ``/uaa``: client-credentials token, SCIM ``/Users`` and ``/ids/Users``."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from . import errors
from . import scim_filter as sf
from .auth import uaa_auth
from .presenters import scim_user_dict
from .responses import uaa_json
from .state import SandboxState
from .store import UAAUser, now_iso
from .tokens import Client

router = APIRouter(prefix="/uaa")

SCIM_SCHEMAS = ["urn:scim:schemas:core:1.0"]
MAX_COUNT = 500
_USERNAME_RE = re.compile(r"^[\w+\-.@'!]+$", re.UNICODE)


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _uaa_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/uaa"


# ---- token -------------------------------------------------------------------------------------
@router.post("/oauth/token")
async def token(request: Request) -> Response:
    state = _state(request)
    body = (await request.body()).decode("utf-8", "replace")
    form = dict(parse_qsl(body, keep_blank_values=True))
    client_id: str | None = None
    secret: str | None = None
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
            cid, _, sec = decoded.partition(":")
            client_id, secret = unquote(cid), unquote(sec)
        except (binascii.Error, UnicodeDecodeError):
            raise errors.uaa_bad_client_credentials() from None
    elif "client_id" in form:
        client_id, secret = form.get("client_id"), form.get("client_secret", "")
    if client_id is None:
        raise errors.uaa_unauthorized()
    client = state.tokens.authenticate(client_id, secret or "")
    if client is None:
        raise errors.uaa_bad_client_credentials()
    grant = form.get("grant_type", "")
    if grant in ("password", "refresh_token"):
        return _user_token(state, request, client, form)
    if grant != "client_credentials":
        raise errors.UAAError(
            400, {"error": "unsupported_grant_type", "error_description": f"Unsupported grant type: {grant}"}
        )
    requested = form.get("scope", "").split()
    if requested:
        invalid = [s for s in requested if s not in client.authorities]
        if invalid:
            raise errors.UAAError(
                400,
                {
                    "error": "invalid_scope",
                    "error_description": f"Invalid scope: {' '.join(invalid)}. Did you know that you can get "
                    "default scopes by simply sending no value?",
                    "scope": " ".join(client.authorities),
                },
            )
        scopes = requested
    else:
        scopes = list(client.authorities)
    access_token, validity, jti = state.tokens.issue(client, scopes, _uaa_base(request) + "/oauth/token")
    return uaa_json(
        {
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": validity,
            "scope": " ".join(scopes),
            "jti": jti,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _user_token(state: SandboxState, request: Request, client: Client, form: dict[str, str]) -> Response:
    """Password and refresh-token grants for the sandbox's login users (``cf login``).

    The token's scopes are the user's scopes that the client may request (UAA intersects the
    user's groups with the client's scopes); its ``user_id`` is the user's UAA id, so Cloud
    Controller sees a user, not a client."""
    if form.get("grant_type") == "refresh_token":
        claims = state.tokens.read_refresh_token(form.get("refresh_token", ""))
        login = state.tokens.logins.get(str((claims or {}).get("user_name", "")).casefold())
        if claims is None or login is None or claims.get("client_id") != client.client_id:
            raise errors.UAAError(
                401, {"error": "invalid_token", "error_description": "Invalid refresh token"}
            )
    else:
        login = state.tokens.check_password(form.get("username", ""), form.get("password", ""))
        if login is None:
            raise errors.UAAError(401, {"error": "unauthorized", "error_description": "Bad credentials"})
    user = state.store.uaa_lookup(login.username, login.origin)
    if user is None:  # created on first login: seeded logins stay out of SCIM lists until used
        user = state.store.add_uaa_user(
            login.username, login.origin, emails=[{"value": login.username, "primary": True}]
        )
        state.mark_dirty()
    scopes = [s for s in login.scopes if s in client.authorities]
    access, validity, jti, refresh = state.tokens.issue_for_user(
        client, user.id, login, scopes, _uaa_base(request) + "/oauth/token"
    )
    return uaa_json(
        {
            "access_token": access,
            "token_type": "bearer",
            "id_token": access if "openid" in scopes else None,
            "refresh_token": refresh,
            "expires_in": validity,
            "scope": " ".join(scopes),
            "jti": jti,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get("/login")
async def login_info(request: Request) -> Response:
    """What ``cf login`` reads first (Accept: application/json): the prompts and links."""
    return await info(request)


@router.get("/info")
async def info(request: Request) -> Response:
    base = _uaa_base(request)
    return uaa_json(
        {
            "app": {"version": "77.20.0"},
            "links": {
                "uaa": base,
                "passwd": "/forgot_password",
                "login": base,
                "register": "/create_account",
            },
            "zone_name": "uaa",
            "entityID": "sandbox",
            "commit_id": "sandbox",
            "idpDefinitions": {},
            "prompts": {"username": ["text", "Email"], "password": ["password", "Password"]},
            "timestamp": now_iso(),
        }
    )


# ---- SCIM helpers ------------------------------------------------------------------------------
def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.scim_error(400, "scim", f"Invalid {name}: {raw}") from None


def _filtered_users(state: SandboxState, filter_text: str) -> list[UAAUser]:
    store = state.store
    try:
        node = sf.parse(filter_text)
    except sf.FilterError:
        raise errors.scim_error(400, "scim", f"Invalid filter expression: [{filter_text}]") from None
    hint = sf.index_hint(node)
    ids = sf.id_eq_values(node)
    candidates: list[UAAUser]
    if hint is not None:
        username, origin = hint
        if origin is not None:
            u = store.uaa_lookup(username, origin)
            candidates = [u] if u is not None else []
        else:
            candidates = [store.uaa_users[i] for i in store.uaa_by_name.get(username.lower(), {})]
    elif ids is not None:
        wanted = set(ids)
        candidates = [store.uaa_users[i] for i in dict.fromkeys(ids) if i in store.uaa_users]
        if len(candidates) != len(wanted):  # ids compare case-insensitively
            low = {i.lower() for i in ids}
            candidates = [u for u in store.uaa_users.values() if u.id.lower() in low]
        return candidates
    else:
        candidates = list(store.uaa_users.values())
    try:
        return [u for u in candidates if sf.matches(node, u)]
    except sf.FilterError:
        raise errors.scim_error(400, "scim", f"Invalid filter expression: [{filter_text}]") from None


_SORT_KEYS: dict[str, Any] = {
    "created": None,
    "meta.created": None,
    "username": lambda u: u.username.lower(),
    "id": lambda u: u.id,
    "origin": lambda u: u.origin.lower(),
    "lastmodified": lambda u: u.last_modified,
    "meta.lastmodified": lambda u: u.last_modified,
}


def _select_attributes(resource: dict[str, Any], attributes: list[str]) -> dict[str, Any]:
    lower_map = {k.lower(): k for k in resource}
    out: dict[str, Any] = {}
    for attr in attributes:
        head, _, rest = attr.partition(".")
        key = lower_map.get(head.lower())
        if key is None:
            continue
        value = resource[key]
        if rest and isinstance(value, dict):
            sub = {k.lower(): k for k in value}
            sk = sub.get(rest.lower())
            if sk is not None:
                out.setdefault(key, {})[sk] = value[sk]
        elif rest and isinstance(value, list):
            out[key] = [
                {k: v for k, v in item.items() if k.lower() == rest.lower()}
                for item in value
                if isinstance(item, dict)
            ]
        else:
            out[key] = value
    return out


def _list_response(request: Request, users: list[UAAUser], render: Any) -> Response:
    start = max(1, _int_param(request, "startIndex", 1))
    count = min(max(0, _int_param(request, "count", 100)), MAX_COUNT)
    page = users[start - 1 : start - 1 + count]
    return uaa_json(
        {
            "resources": [render(u) for u in page],
            "startIndex": start,
            "itemsPerPage": count,
            "totalResults": len(users),
            "schemas": SCIM_SCHEMAS,
        }
    )


def _sorted(request: Request, users: list[UAAUser]) -> list[UAAUser]:
    sort_by = (request.query_params.get("sortBy") or "created").lower()
    key = _SORT_KEYS.get(sort_by)
    if sort_by not in _SORT_KEYS:
        raise errors.scim_error(400, "scim", f"Invalid sort field: {sort_by}")
    descending = (request.query_params.get("sortOrder") or "ascending").lower().startswith("desc")
    if key is not None:
        users = sorted(users, key=key, reverse=descending)
    elif descending:
        users = list(reversed(users))
    return users


# ---- SCIM /Users -------------------------------------------------------------------------------
@router.get("/Users")
async def list_users(request: Request) -> Response:
    state = _state(request)
    uaa_auth(state, request, ("scim.read",))
    filter_text = request.query_params.get("filter") or "id pr"
    users = _sorted(request, _filtered_users(state, filter_text))
    attrs_raw = request.query_params.get("attributes")
    if attrs_raw:
        attributes = [a.strip() for a in attrs_raw.split(",") if a.strip()]
        return _list_response(request, users, lambda u: _select_attributes(scim_user_dict(u), attributes))
    return _list_response(request, users, scim_user_dict)


@router.get("/ids/Users")
async def list_user_ids(request: Request) -> Response:
    state = _state(request)
    uaa_auth(state, request, ("scim.userids",))
    filter_text = request.query_params.get("filter") or "id pr"
    try:
        node = sf.parse(filter_text)
    except sf.FilterError:
        raise errors.scim_error(400, "scim", f"Invalid filter expression: [{filter_text}]") from None
    if not _only_attrs(node, {"id", "username", "origin"}):
        raise errors.scim_error(400, "scim", f"Invalid filter attribute. Filter: [{filter_text}]")
    users = _filtered_users(state, filter_text)
    if (request.query_params.get("includeInactive") or "false").lower() != "true":
        users = [u for u in users if u.active]
    users = _sorted(request, users)
    return _list_response(request, users, lambda u: {"id": u.id, "userName": u.username, "origin": u.origin})


def _only_attrs(node: sf.Node, allowed: set[str]) -> bool:
    if isinstance(node, sf.BoolOp):
        return _only_attrs(node.left, allowed) and _only_attrs(node.right, allowed)
    return node.attr in allowed


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise errors.UAAError(
            400, {"error": "invalid_scim_resource", "error_description": "Could not read JSON request body."}
        ) from None
    if not isinstance(body, dict):
        raise errors.scim_error(400, "invalid_scim_resource", "Request body must be a JSON object.")
    return body


def _validate_user_body(body: dict[str, Any], origin: str) -> tuple[str, list[dict[str, Any]]]:
    username = body.get("userName")
    if not isinstance(username, str) or not username.strip():
        raise errors.scim_error(400, "invalid_scim_resource", "A username must be provided.")
    emails = body.get("emails")
    if not isinstance(emails, list) or len(emails) != 1:
        raise errors.scim_error(400, "invalid_scim_resource", "Exactly one email must be provided.")
    if not isinstance(emails[0], dict) or not emails[0].get("value"):
        raise errors.scim_error(400, "invalid_scim_resource", "An email must be provided.")
    if origin == "uaa" and not _USERNAME_RE.match(username):
        raise errors.scim_error(
            400, "invalid_scim_resource", "Username must match pattern: [\\p{L}+0-9+\\-_.@'!]+"
        )
    return username, [{"value": e.get("value"), "primary": bool(e.get("primary", False))} for e in emails]


def _etag(user: UAAUser) -> dict[str, str]:
    return {"ETag": f'"{user.version}"'}


def _get_user(state: SandboxState, user_id: str) -> UAAUser:
    user = state.store.uaa_users.get(user_id)
    if user is None:
        raise errors.scim_error(404, "scim_resource_not_found", f"User {user_id} does not exist")
    return user


def _already_exists(existing: UAAUser) -> errors.UAAError:
    return errors.scim_error(
        409,
        "scim_resource_already_exists",
        f"Username already in use: {existing.username}",
        origin=existing.origin,
        user_id=existing.id,
    )


@router.post("/Users")
async def create_user(request: Request) -> Response:
    state = _state(request)
    uaa_auth(state, request, ("scim.write", "scim.create"))
    body = await _json_body(request)
    origin = body.get("origin") or "uaa"
    if not isinstance(origin, str):
        raise errors.scim_error(400, "invalid_scim_resource", "Origin must be a string.")
    username, emails = _validate_user_body(body, origin)
    if state.faults.rejects(username):  # the reject_usernames fault: UAA refuses this user
        raise errors.scim_error(
            400, "invalid_scim_resource", f"User '{username}' with origin '{origin}' was rejected."
        )
    existing = state.store.uaa_lookup(username, origin)
    if existing is not None:
        raise _already_exists(existing)
    name = body.get("name") if isinstance(body.get("name"), dict) else {}
    user = state.store.add_uaa_user(
        username,
        origin,
        emails=emails,
        name=name,
        active=bool(body.get("active", True)),
        verified=bool(body.get("verified", True)),
        external_id=body.get("externalId"),
        phone_numbers=body.get("phoneNumbers"),
    )
    state.mark_dirty()
    return uaa_json(scim_user_dict(user), 201, _etag(user))


@router.get("/Users/{user_id}")
async def get_user(request: Request, user_id: str) -> Response:
    state = _state(request)
    uaa_auth(state, request, ("scim.read",))
    user = _get_user(state, user_id)
    return uaa_json(scim_user_dict(user), headers=_etag(user))


def _check_version(request: Request, user: UAAUser, *, required: bool, stale_status: int) -> None:
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "":
        if required:
            raise errors.scim_error(400, "scim", "Missing If-Match for PUT")
        return
    value = raw.strip().removeprefix("W/").strip('"')
    if value == "*":
        return
    try:
        version = int(value)
    except ValueError:
        raise errors.scim_error(400, "scim", f"Invalid If-Match header value: {raw}") from None
    if version != user.version:
        if stale_status == 409:
            raise errors.scim_error(
                409,
                "scim_resource_conflict",
                f"Invalid version match, expected {user.version} but got {version}",
            )
        raise errors.scim_error(stale_status, "scim", "Attempt to update a user with a stale version")


@router.put("/Users/{user_id}")
async def update_user(request: Request, user_id: str) -> Response:
    state = _state(request)
    uaa_auth(state, request, ("scim.write",))
    user = _get_user(state, user_id)
    _check_version(request, user, required=True, stale_status=409)
    body = await _json_body(request)
    origin = body.get("origin") or user.origin
    if origin != user.origin:
        raise errors.scim_error(
            400, "invalid_scim_resource", "Cannot change user's origin in update operation."
        )
    username, emails = _validate_user_body(body, origin)
    if username.lower() != user.username.lower():
        clash = state.store.uaa_lookup(username, origin)
        if clash is not None and clash.id != user.id:
            raise _already_exists(clash)
    if username != user.username:
        state.store.rename_uaa_user(user, username)
    user.emails = emails
    if isinstance(body.get("name"), dict):
        user.name = body["name"]
    if "active" in body:
        user.active = bool(body["active"])
    if "verified" in body:
        user.verified = bool(body["verified"])
    if "externalId" in body:
        user.external_id = body["externalId"]
    if "phoneNumbers" in body:
        user.phone_numbers = body["phoneNumbers"]
    user.version += 1
    user.last_modified = now_iso()
    state.store.version += 1
    state.mark_dirty()
    return uaa_json(scim_user_dict(user), headers=_etag(user))


@router.delete("/Users/{user_id}")
async def delete_user(request: Request, user_id: str) -> Response:
    state = _state(request)
    uaa_auth(state, request, ("scim.write",))
    user = _get_user(state, user_id)
    _check_version(request, user, required=False, stale_status=422)
    if state.faults.refuses_uaa_delete(user.username):  # the refuse_uaa_user_deletes fault
        raise errors.scim_error(403, "access_denied", f"Deleting user '{user.username}' was refused.")
    state.store.delete_uaa_user(user_id)
    state.mark_dirty()
    return uaa_json(scim_user_dict(user), headers=_etag(user))
