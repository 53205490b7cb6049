"""A Microsoft Graph + Entra ID (AAD v2 token endpoint) emulator for ``msgraph-sdk`` and ``azure-identity``.

Graph (``/v1.0``): ``GET /groups?$filter=displayName eq '…'`` (``''`` escapes a quote; ``eq`` is
case-insensitive like Graph's), ``GET /groups/{id}``, ``GET /groups/{id}/transitiveMembers`` (typed by
``@odata.type``) and ``…/transitiveMembers/graph.user`` + ``…/microsoft.graph.user`` (the SDK uses the
first, Graph's nextLinks the second): nested groups flattened, cycles tolerated, ``$select``, ``$top``,
``$count=true`` (needs ``ConsistencyLevel: eventual``), ``@odata.nextLink`` absolute with ``$skiptoken``.
Paths with ``//`` are collapsed (kiota sends ``/v1.0//groups``). Users come back with Graph's default
property set unless ``$select`` asks for more (``accountEnabled`` is not in the default set).

AAD: ``POST /{tenant}/oauth2/v2.0/token`` (client_credentials) with a client secret, a certificate
client assertion (``x5t#S256`` or ``x5t`` header, PS256/RS256, signature VERIFIED against the
registered certificate, ``aud`` = this token URL), or a federated OIDC assertion (workload identity:
signature VERIFIED against the registered issuer key, ``aud`` ``api://AzureADTokenExchange``, issuer +
subject must match one of the app's federated credentials). Graph calls need a token whose app roles
include ``GroupMember.Read.All`` (or Group/Directory.Read.All); without ``User.Read.All`` users come
back with limited properties.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote

import jwt
from cryptography import x509
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .common import EmulatorBase, Fault
from .data import IdpData, IdpGroup, IdpUser
from .tls import sha1_thumbprint, sha256_thumbprint

DEFAULT_TENANT = "11111111-2222-3333-4444-555555555555"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
READ_ROLES = ("GroupMember.Read.All", "User.Read.All")
GROUP_ROLES = {"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"}
USER_ROLES = {"User.Read.All", "Directory.Read.All"}
FILTER_RE = re.compile(r"^\s*displayName\s+eq\s+'((?:[^']|'')*)'\s*$")
DEFAULT_USER_PROPS = (
    "id",
    "displayName",
    "mail",
    "userPrincipalName",
    "businessPhones",
    "givenName",
    "jobTitle",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
)
LIMITED_USER_PROPS = ("id", "displayName")


@dataclass
class FederatedCredential:
    issuer: str
    subject: str
    audiences: tuple[str, ...] = (FEDERATION_AUDIENCE,)


@dataclass
class AadApp:
    client_id: str
    secrets: set[str] = field(default_factory=set)
    certificates: list[x509.Certificate] = field(default_factory=list)
    federated: list[FederatedCredential] = field(default_factory=list)
    roles: tuple[str, ...] = READ_ROLES


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4())},
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


class GraphEmulator(EmulatorBase):
    kind = "graph"

    def __init__(
        self,
        data: IdpData | dict[str, Any] | str | None = None,
        *,
        page_size: int = 999,
        tenant_id: str = DEFAULT_TENANT,
        static_tokens: tuple[str, ...] = (),
        token_lifetime: int = 3599,
    ) -> None:
        self.tenant_id = tenant_id
        self.apps: dict[str, AadApp] = {}
        self.issuers: dict[str, str] = {}  # OIDC issuer -> public key PEM
        self.access_tokens: dict[str, tuple[str, tuple[str, ...], float]] = {
            t: ("static", READ_ROLES, float("inf")) for t in static_tokens
        }
        self.token_lifetime = token_lifetime
        self.federated_jtis: list[str] = []
        self._lock = threading.Lock()
        super().__init__(data, page_size=page_size)

    # -- registration ----------------------------------------------------------------------------
    def register_app(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        certificate_pem: str | None = None,
        federated: list[FederatedCredential] | None = None,
        roles: tuple[str, ...] = READ_ROLES,
    ) -> AadApp:
        app = self.apps.setdefault(client_id, AadApp(client_id))
        if secret:
            app.secrets.add(secret)
        if certificate_pem:
            app.certificates.append(x509.load_pem_x509_certificate(certificate_pem.encode("ascii")))
        app.federated.extend(federated or [])
        app.roles = tuple(roles)
        return app

    def register_issuer(self, issuer: str, public_key_pem: str) -> None:
        self.issuers[issuer] = public_key_pem

    @property
    def authority(self) -> str:
        return self.url

    @property
    def graph_base_url(self) -> str:
        return f"{self.url}/v1.0"

    @property
    def token_url(self) -> str:
        return f"{self.url}/{self.tenant_id}/oauth2/v2.0/token"

    def route_key(self, path: str) -> str:
        path = re.sub(r"^/[^/]+/oauth2/v2.0/token$", "/{tenant}/oauth2/v2.0/token", path)
        path = re.sub(
            r"^/v1.0/groups/[^/]+/transitiveMembers/(microsoft\.)?graph\.user$",
            "/v1.0/groups/{id}/transitiveMembers/graph.user",
            path,
        )
        path = re.sub(r"^/v1.0/groups/[^/]+/transitiveMembers$", "/v1.0/groups/{id}/transitiveMembers", path)
        return re.sub(r"^/v1.0/groups/[^/]+$", "/v1.0/groups/{id}", path)

    def fault_response(self, fault: Fault) -> tuple[int, dict[str, str], dict[str, Any]]:
        status = fault.status or 500
        headers: dict[str, str] = {}
        if status in (429, 503, 504) and fault.rate_limit_headers and fault.retry_after is not None:
            headers["Retry-After"] = str(max(0, round(fault.retry_after)))
        code = {
            429: "TooManyRequests",
            503: "ServiceUnavailable",
            504: "GatewayTimeout",
            401: "InvalidAuthenticationToken",
            403: "Authorization_RequestDenied",
            404: "Request_ResourceNotFound",
        }.get(status, "UnknownError" if status >= 500 else "BadRequest")
        return (
            status,
            headers,
            {
                "error": {
                    "code": code,
                    "message": f"emulated fault {status}",
                    "innerError": {"request-id": str(uuid.uuid4())},
                }
            },
        )

    # -- AAD token endpoint ----------------------------------------------------------------------
    async def token(self, tenant: str, request: Request) -> JSONResponse:
        self.counters.incr("token")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}

        def fail(error: str, code: int, description: str, status: int = 401) -> JSONResponse:
            self.counters.incr("token:rejected")
            return JSONResponse(
                {
                    "error": error,
                    "error_description": f"AADSTS{code}: {description}",
                    "error_codes": [code],
                    "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ"),
                },
                status_code=status,
            )

        if tenant != self.tenant_id:
            return fail("invalid_request", 90002, f"Tenant '{tenant}' not found.", 400)
        if form.get("grant_type") != "client_credentials":
            return fail("unsupported_grant_type", 70003, "The app requested an unsupported grant type.", 400)
        if form.get("scope") != GRAPH_SCOPE:
            return fail(
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope')} is not valid.",
                400,
            )
        client_id = form.get("client_id", "")
        app = self.apps.get(client_id)
        if app is None:
            return fail(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found.",
                400,
            )
        if "client_secret" in form:
            if form["client_secret"] not in app.secrets:
                return fail("invalid_client", 7000215, "Invalid client secret provided.")
            self.counters.incr("token:secret")
        elif form.get("client_assertion_type") == JWT_BEARER and form.get("client_assertion"):
            problem = self._check_assertion(app, form["client_assertion"])
            if problem is not None:
                return fail("invalid_client", problem[0], problem[1])
        else:
            return fail(
                "invalid_client",
                7000218,
                "The request body must contain client_assertion or client_secret.",
                400,
            )
        access = f"graph-at-{secrets.token_urlsafe(24)}"
        with self._lock:
            self.access_tokens[access] = (client_id, app.roles, time.time() + self.token_lifetime)
        self.counters.incr("token:issued")
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": access,
            }
        )

    def _check_assertion(self, app: AadApp, assertion: str) -> tuple[int, str] | None:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return 50027, "Invalid JWT token."
        thumb_s256, thumb_sha1 = header.get("x5t#S256"), header.get("x5t")
        if thumb_s256 or thumb_sha1:

            def norm(t: str) -> str:
                return t.rstrip("=")

            cert = next(
                (
                    c
                    for c in app.certificates
                    if (thumb_s256 and norm(sha256_thumbprint(c)) == norm(thumb_s256))
                    or (thumb_sha1 and norm(sha1_thumbprint(c)) == norm(thumb_sha1))
                ),
                None,
            )
            if cert is None:
                return (
                    700027,
                    "Client assertion contains an invalid signature. [Reason - The key was not found.]",
                )
            try:
                verified = jwt.decode(
                    assertion,
                    key=cert.public_key(),  # type: ignore[arg-type]
                    algorithms=["PS256", "RS256"],
                    audience=self.token_url,
                    options={"require": ["exp", "aud", "iss", "sub"]},
                )
            except jwt.InvalidSignatureError:
                return 700027, "Client assertion contains an invalid signature."
            except jwt.PyJWTError as exc:
                return 700027, f"Client assertion failed validation: {exc}"
            if verified["iss"] != app.client_id or verified["sub"] != app.client_id:
                return 700023, "Client assertion issuer and subject must be the client id."
            self.counters.incr("token:certificate")
            return None
        issuer = str(claims.get("iss", ""))
        key = self.issuers.get(issuer)
        if key is None:
            return (
                700211,
                f"No matching federated identity record found for presented assertion issuer '{issuer}'.",
            )
        try:
            verified = jwt.decode(
                assertion,
                key=key,
                algorithms=["RS256"],
                audience=FEDERATION_AUDIENCE,
                issuer=issuer,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.InvalidSignatureError:
            return 700024, "Client assertion signature is invalid (federated)."
        except jwt.PyJWTError as exc:
            return 700024, f"Client assertion is not within its valid time range or invalid: {exc}"
        subject = verified["sub"]
        if not any(f.issuer == issuer and f.subject == subject for f in app.federated):
            return 70021, (
                f"No matching federated identity record found for presented assertion. "
                f"Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'."
            )
        self.counters.incr("token:federated")
        # Which CI token each exchange presented (its jti), so tests can check that a
        # token file rewritten during a run is re-read at the next exchange.
        self.federated_jtis.append(str(verified.get("jti", "")))
        return None

    # -- Graph helpers ---------------------------------------------------------------------------
    def authorize(self, request: Request) -> tuple[JSONResponse | None, tuple[str, ...]]:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty."), ()
        entry = self.access_tokens.get(header[7:].strip())
        if entry is None or entry[2] < time.time():
            return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure."), ()
        if not GROUP_ROLES & set(entry[1]):
            return graph_error(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            ), ()
        return None, entry[1]

    def user_json(
        self, u: IdpUser, select: list[str] | None, roles: tuple[str, ...], typed: bool
    ) -> dict[str, Any]:
        full: dict[str, Any] = {
            "id": u.id,
            "displayName": u.name,
            "mail": u.email,
            "userPrincipalName": u.login,
            "accountEnabled": u.account_enabled,
            "userType": "Member",
            "employeeId": None,
            "onPremisesImmutableId": None,
            "businessPhones": [],
            "givenName": None,
            "jobTitle": None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "surname": None,
        }
        allowed = set(full) if USER_ROLES & set(roles) else set(LIMITED_USER_PROPS)
        props = select or list(DEFAULT_USER_PROPS)
        out: dict[str, Any] = {"@odata.type": "#microsoft.graph.user"} if typed else {}
        for p in props:
            if p in full and p in allowed:
                out[p] = full[p]
        return out

    def group_json(self, g: IdpGroup, select: list[str] | None, typed: bool = False) -> dict[str, Any]:
        full: dict[str, Any] = {
            "id": g.id,
            "displayName": g.name,
            "description": None,
            "mailEnabled": False,
            "securityEnabled": True,
            "groupTypes": [],
        }
        out: dict[str, Any] = {"@odata.type": "#microsoft.graph.group"} if typed else {}
        out.update({k: v for k, v in full.items() if not select or k in select or k == "id"})
        return out

    # -- app -------------------------------------------------------------------------------------
    def build_app(self) -> FastAPI:
        app = FastAPI(title="Graph emulator", openapi_url=None, docs_url=None, redoc_url=None)
        em = self

        @app.get("/{tenant}/v2.0/.well-known/openid-configuration")
        def openid(tenant: str) -> JSONResponse:
            base = f"{em.url}/{tenant}"
            return JSONResponse(
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "issuer": f"{base}/v2.0",
                    "jwks_uri": f"{base}/discovery/v2.0/keys",
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                }
            )

        @app.post("/{tenant}/oauth2/v2.0/token")
        async def token(tenant: str, request: Request) -> JSONResponse:
            return await em.token(tenant, request)

        def select_of(request: Request) -> list[str] | None:
            raw = request.query_params.get("$select")
            return [s.strip() for s in raw.split(",") if s.strip()] if raw else None

        @app.get("/v1.0/groups")
        def list_groups(request: Request) -> JSONResponse:
            denied, _ = em.authorize(request)
            if denied:
                return denied
            flt = request.query_params.get("$filter")
            groups = list(em.data.groups.values())
            if flt is not None:
                m = FILTER_RE.match(flt)
                if not m:
                    return graph_error(400, "Request_UnsupportedQuery", f"Unsupported query: {flt}")
                groups = em.data.groups_named(m.group(1).replace("''", "'"), case_insensitive=True)
            sel = select_of(request)
            return JSONResponse(
                {
                    "@odata.context": f"{em.url}/v1.0/$metadata#groups",
                    "value": [em.group_json(g, sel) for g in groups],
                }
            )

        @app.get("/v1.0/groups/{gid}")
        def get_group(gid: str, request: Request) -> JSONResponse:
            denied, _ = em.authorize(request)
            if denied:
                return denied
            g = em.data.groups.get(gid)
            if g is None:
                return graph_error(
                    404,
                    "Request_ResourceNotFound",
                    f"Resource '{gid}' does not exist or one of its queried reference-property "
                    "objects are not present.",
                )
            return JSONResponse(em.group_json(g, select_of(request)))

        def members(gid: str, request: Request, cast: str | None) -> JSONResponse:
            denied, roles = em.authorize(request)
            if denied:
                return denied
            g = em.data.groups.get(gid)
            if g is None:
                return graph_error(404, "Request_ResourceNotFound", f"Resource '{gid}' does not exist.")
            params = request.query_params
            count = (params.get("$count") or "").lower() == "true"
            if count and request.headers.get("consistencylevel", "").lower() != "eventual":
                return graph_error(
                    400,
                    "Request_UnsupportedQuery",
                    "$count is only supported with the ConsistencyLevel:eventual header.",
                )
            items: list[tuple[str, Any]] = [("user", u) for u in em.data.transitive_users(gid)]
            if cast is None:
                items += [("group", x) for x in em.data.nested_groups(gid)]
            top = max(1, min(int(params.get("$top") or 100), 999, em.page_size))
            skip_raw = params.get("$skiptoken") or "0"
            if not skip_raw.isdigit():
                return graph_error(
                    400,
                    "Directory_ExpiredPageToken",
                    "The specified page token value has expired "
                    "and can no longer be included in your request.",
                )
            start = int(skip_raw)
            page = items[start : start + top]
            sel = select_of(request)
            body: dict[str, Any] = {"@odata.context": f"{em.url}/v1.0/$metadata#users"}
            if count:
                body["@odata.count"] = len(items)
            body["value"] = [
                em.user_json(x, sel, roles, typed=cast is None)
                if kind == "user"
                else em.group_json(x, sel, True)
                for kind, x in page
            ]
            if start + top < len(items):
                nxt: str | None = str(start + top)
                trunc = em.faults.truncation_for(g.id, g.name)
                if trunc is not None and start // top + 1 >= trunc.after_pages:
                    em.counters.incr("truncated")
                    nxt = None if trunc.mode == "drop-next" else f"X{start + top}"
                if nxt is not None:
                    q = {k: v for k, v in params.items() if k != "$skiptoken"}
                    q["$top"] = str(top)
                    q["$skiptoken"] = nxt
                    tail = "/microsoft.graph.user" if cast else ""
                    body["@odata.nextLink"] = (
                        f"{em.url}/v1.0/groups/{gid}/transitiveMembers{tail}?"
                        + "&".join(f"{quote(k)}={quote(v)}" for k, v in q.items())
                    )
            return JSONResponse(body)

        @app.get("/v1.0/groups/{gid}/transitiveMembers/graph.user")
        def transitive_users(gid: str, request: Request) -> JSONResponse:
            return members(gid, request, "user")

        @app.get("/v1.0/groups/{gid}/transitiveMembers/microsoft.graph.user")
        def transitive_users_long(gid: str, request: Request) -> JSONResponse:
            return members(gid, request, "user")

        @app.get("/v1.0/groups/{gid}/transitiveMembers")
        def transitive_members(gid: str, request: Request) -> JSONResponse:
            return members(gid, request, None)

        return app
