"""An Okta emulator: the Management API paths the ``okta`` SDK calls, and its OAuth token endpoint.

* ``GET /api/v1/groups`` (``search=profile.name eq "…"``, ``q=``, ``limit``, ``after``, ``expand=stats``),
  ``GET /api/v1/groups/{id}``, ``GET /api/v1/groups/{id}/users`` (cursor paging with ``Link`` headers:
  ``rel="self"`` first, ``rel="next"`` last, as the SDK keeps only the last ``Link`` header).
* Auth: ``SSWS <token>`` (the SDK really sends ``SSWS<token>`` with no space: both accepted) or
  ``Bearer <access token>`` from ``POST /oauth2/v1/token`` (client_credentials with a private_key_jwt
  client assertion, whose RS256 signature is VERIFIED against the client's registered public key,
  with ``aud`` = this server's token URL, ``iss`` = ``sub`` = client id, and no replayed ``jti``).
* Search ``eq`` is case-insensitive (like Okta's), so clients must compare names exactly themselves.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .common import EmulatorBase, Fault
from .data import IdpData, IdpGroup, IdpUser

DEFAULT_API_TOKEN = "okta-emulator-api-token"
READ_SCOPES = ("okta.groups.read", "okta.users.read")
TIMESTAMP = "2024-01-02T03:04:05.000Z"
SEARCH_RE = re.compile(r'^\s*profile\.name\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$')


@dataclass
class OAuthClient:
    client_id: str
    public_key_pem: str
    scopes: tuple[str, ...] = READ_SCOPES


def okta_error(status: int, code: str, summary: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": f"oae{uuid.uuid4().hex[:20]}",
        "errorCauses": [],
    }
    return JSONResponse(body, status_code=status, headers=headers)


class OktaEmulator(EmulatorBase):
    kind = "okta"

    def __init__(
        self,
        data: IdpData | dict[str, Any] | str | None = None,
        *,
        page_size: int = 200,
        api_tokens: tuple[str, ...] = (DEFAULT_API_TOKEN,),
        token_lifetime: int = 3600,
    ) -> None:
        self.api_tokens = set(api_tokens)
        self.clients: dict[str, OAuthClient] = {}
        self.access_tokens: dict[str, tuple[str, tuple[str, ...], float]] = {}
        self.seen_jti: set[str] = set()
        self.token_lifetime = token_lifetime
        self._lock = threading.Lock()
        super().__init__(data, page_size=page_size)
        for g in self.data.groups.values():
            if g.groups:
                raise ValueError(f"Okta groups cannot contain groups (group {g.name!r})")

    def register_client(
        self, client_id: str, public_key_pem: str, scopes: tuple[str, ...] = READ_SCOPES
    ) -> None:
        self.clients[client_id] = OAuthClient(client_id, public_key_pem, tuple(scopes))

    def route_key(self, path: str) -> str:
        path = re.sub(r"^/api/v1/groups/[^/]+/users$", "/api/v1/groups/{id}/users", path)
        return re.sub(r"^/api/v1/groups/[^/]+$", "/api/v1/groups/{id}", path)

    def fault_response(self, fault: Fault) -> tuple[int, dict[str, str], dict[str, Any]]:
        status = fault.status or 500
        headers: dict[str, str] = {}
        if status in (429, 503, 504) and fault.rate_limit_headers:
            # The SDK waits X-Rate-Limit-Reset - Date + 1 seconds (on a 429).
            wait = fault.retry_after if fault.retry_after is not None else 1.0
            headers = {
                "X-Rate-Limit-Limit": "600",
                "X-Rate-Limit-Remaining": "0",
                "X-Rate-Limit-Reset": str(int(time.time() + wait - 1)),
            }
        if status == 429:
            code, summary = "E0000047", "API call exceeded rate limit due to too many requests."
        elif status == 401:
            code, summary = "E0000011", "Invalid token provided"
        elif status == 404:
            code, summary = "E0000007", "Not found: Resource not found"
        elif status >= 500:
            code, summary = "E0000009", "Internal Server Error"
        else:
            code, summary = "E0000001", "Api validation failed"
        return (
            status,
            headers,
            {
                "errorCode": code,
                "errorSummary": summary,
                "errorLink": code,
                "errorId": "oae-fault",
                "errorCauses": [],
            },
        )

    # -- representations -------------------------------------------------------------------------
    def group_json(self, g: IdpGroup, expand: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": g.id,
            "created": TIMESTAMP,
            "lastUpdated": TIMESTAMP,
            "lastMembershipUpdated": TIMESTAMP,
            "objectClass": ["okta:user_group"],
            "type": "OKTA_GROUP",
            "profile": {"name": g.name, "description": None},
            "_links": {"users": {"href": f"{self.url}/api/v1/groups/{g.id}/users"}},
        }
        if expand and "stats" in expand.split(","):
            out["_embedded"] = {"stats": {"usersCount": len(g.users)}}
        return out

    def user_json(self, u: IdpUser) -> dict[str, Any]:
        first, _, last = (u.name or "").partition(" ")
        profile: dict[str, Any] = {
            "login": u.login,
            "email": u.email,
            "firstName": first or None,
            "lastName": last or None,
            "displayName": u.name,
        }
        return {
            "id": u.id,
            "status": u.status,
            "created": TIMESTAMP,
            "activated": None,
            "statusChanged": None,
            "lastLogin": None,
            "lastUpdated": TIMESTAMP,
            "passwordChanged": None,
            "type": {"id": "oty000000000000000000"},
            "profile": profile,
            "_links": {"self": {"href": f"{self.url}/api/v1/users/{u.id}"}},
        }

    # -- auth ------------------------------------------------------------------------------------
    def check_auth(self, request: Request, scope: str) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        if header.startswith("SSWS"):
            if header[4:].strip() in self.api_tokens:
                self.counters.incr("auth:ssws")
                return None
            return okta_error(401, "E0000011", "Invalid token provided")
        if header.startswith("Bearer "):
            entry = self.access_tokens.get(header[7:].strip())
            if entry is None or entry[2] < time.time():
                return okta_error(401, "E0000011", "Invalid token provided")
            if scope not in entry[1]:
                return okta_error(
                    403, "E0000006", "You do not have permission to perform the requested action"
                )
            self.counters.incr("auth:bearer")
            return None
        return okta_error(401, "E0000005", "Invalid session")

    def readable_group(self, request: Request, gid: str) -> IdpGroup | JSONResponse:
        """Group ``gid`` for a caller allowed to read groups, or the error response (401/403/404)."""
        denied = self.check_auth(request, "okta.groups.read")
        if denied:
            return denied
        g = self.data.groups.get(gid)
        if g is None:
            return okta_error(404, "E0000007", f"Not found: Resource not found: {gid} (UserGroup)")
        return g

    async def token(self, request: Request) -> JSONResponse:
        self.counters.incr("token")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}

        def fail(error: str, description: str, status: int = 401) -> JSONResponse:
            self.counters.incr("token:rejected")
            return JSONResponse({"error": error, "error_description": description}, status_code=status)

        if form.get("grant_type") != "client_credentials":
            return fail("unsupported_grant_type", "grant_type must be client_credentials", 400)
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return fail("invalid_client", "client_assertion_type must be jwt-bearer")
        assertion = form.get("client_assertion", "")
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return fail("invalid_client", "The client_assertion is not a JWT.")
        client = self.clients.get(str(claims.get("iss", "")))
        if client is None:
            return fail("invalid_client", "The client_id is not registered.")
        if header.get("alg") != "RS256":
            return fail("invalid_client", "The client_assertion must be signed with RS256.")
        try:
            verified = jwt.decode(
                assertion,
                key=client.public_key_pem,
                algorithms=["RS256"],
                audience=f"{self.url}/oauth2/v1/token",
                issuer=client.client_id,
                options={"require": ["exp", "iat", "jti", "sub", "aud", "iss"]},
            )
        except jwt.InvalidSignatureError:
            return fail("invalid_client", "The client_assertion signature is invalid.")
        except jwt.PyJWTError as exc:
            return fail("invalid_client", f"The client_assertion is invalid: {exc}")
        if verified["sub"] != client.client_id:
            return fail("invalid_client", "The client_assertion sub must be the client id.")
        with self._lock:
            if verified["jti"] in self.seen_jti:
                return fail("invalid_client", "The client_assertion jti was already used.")
            self.seen_jti.add(verified["jti"])
        scopes = tuple(form.get("scope", "").split())
        if not scopes or not set(scopes) <= set(client.scopes):
            return fail("invalid_scope", "The requested scope is invalid, unknown, or malformed.", 400)
        access = f"okta-at-{secrets.token_urlsafe(24)}"
        with self._lock:
            self.access_tokens[access] = (client.client_id, scopes, time.time() + self.token_lifetime)
        self.counters.incr("token:issued")
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "access_token": access,
                "scope": " ".join(scopes),
            }
        )

    # -- app -------------------------------------------------------------------------------------
    def build_app(self) -> FastAPI:
        app = FastAPI(title="Okta emulator", openapi_url=None, docs_url=None, redoc_url=None)
        em = self

        @app.post("/oauth2/v1/token")
        async def token(request: Request) -> JSONResponse:
            return await em.token(request)

        @app.get("/api/v1/groups")
        def list_groups(request: Request) -> JSONResponse:
            denied = em.check_auth(request, "okta.groups.read")
            if denied:
                return denied
            params = request.query_params
            search, q = params.get("search"), params.get("q")
            groups = list(em.data.groups.values())
            if search is not None:
                m = SEARCH_RE.match(search)
                if not m:
                    return okta_error(400, "E0000031", f"Invalid search criteria: {search}")
                name = re.sub(r"\\(.)", r"\1", m.group(1))
                groups = em.data.groups_named(name, case_insensitive=True)
            elif q is not None:
                groups = [g for g in groups if g.name.casefold().startswith(q.casefold())]
            limit = min(int(params.get("limit") or 10000), 10000)
            start = 0
            after = params.get("after")
            if after:
                ids = [g.id for g in groups]
                if after not in ids:
                    return okta_error(400, "E0000031", "Invalid after cursor")
                start = ids.index(after) + 1
            page = groups[start : start + limit]
            resp = JSONResponse([em.group_json(g, params.get("expand")) for g in page])
            if start + limit < len(groups) and page:
                base = f"{em.url}/api/v1/groups?" + "&".join(
                    f"{k}={quote(v)}" for k, v in params.items() if k != "after"
                )
                resp.headers.append("Link", f'<{base}>; rel="self"')
                resp.headers.append("Link", f'<{base}&after={page[-1].id}>; rel="next"')
            return resp

        @app.get("/api/v1/groups/{gid}")
        def get_group(gid: str, request: Request) -> JSONResponse:
            g = em.readable_group(request, gid)
            if isinstance(g, JSONResponse):
                return g
            return JSONResponse(em.group_json(g, request.query_params.get("expand")))

        @app.get("/api/v1/groups/{gid}/users")
        def list_group_users(gid: str, request: Request) -> JSONResponse:
            g = em.readable_group(request, gid)
            if isinstance(g, JSONResponse):
                return g
            users = em.data.direct_users(gid)
            params = request.query_params
            limit = max(1, min(int(params.get("limit") or 1000), em.page_size))
            after = params.get("after")
            start = 0
            if after:
                ids = [u.id for u in users]
                if after not in ids:
                    return okta_error(400, "E0000031", f"Invalid after cursor: {after}")
                start = ids.index(after) + 1
            page = users[start : start + limit]
            page_number = start // limit + 1
            resp = JSONResponse([em.user_json(u) for u in page])
            base = f"{em.url}/api/v1/groups/{gid}/users?limit={limit}"
            resp.headers.append("Link", f'<{base}{"&after=" + after if after else ""}>; rel="self"')
            if start + limit < len(users) and page:
                cursor: str | None = page[-1].id
                trunc = em.faults.truncation_for(g.id, g.name)
                if trunc is not None and page_number >= trunc.after_pages:
                    em.counters.incr("truncated")
                    cursor = None if trunc.mode == "drop-next" else f"bogus-{page[-1].id}"
                if cursor is not None:
                    resp.headers.append("Link", f'<{base}&after={cursor}>; rel="next"')
            return resp

        return app


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
