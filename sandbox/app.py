"""Builds the sandbox ASGI app: CC at ``/``, UAA under ``/uaa``, operations under ``/_sandbox``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from . import cc_extras, cc_orgs, cc_roles, cc_root, cc_users, errors, ops_routes, uaa_clients, uaa_routes
from .middleware import SandboxMiddleware
from .responses import cc_json, uaa_json
from .seed import apply_default_clients, apply_seed
from .state import SandboxState

log = logging.getLogger("sandbox")


def _cf_error_response(exc: errors.CFError) -> Response:
    resp = cc_json(exc.envelope(), exc.status, exc.headers)
    if exc.content_type:
        resp.headers["content-type"] = exc.content_type
    return resp


async def _on_cf_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.CFError)
    return _cf_error_response(exc)


async def _on_uaa_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.UAAError)
    return uaa_json(exc.body, exc.status, exc.headers)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if request.url.path.startswith("/uaa"):
        if exc.status_code in (404, 405):
            return uaa_json({"error": "not_found", "error_description": "Not Found"}, 404)
        return uaa_json({"error": "invalid_request", "error_description": str(exc.detail)}, exc.status_code)
    if exc.status_code in (404, 405):  # Rails answers unknown routes (any method) with CF-NotFound
        return _cf_error_response(errors.unknown_request())
    return _cf_error_response(errors.CFError(exc.status_code, "CF-UnknownError", 10001, str(exc.detail)))


async def _on_unhandled(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return _cf_error_response(errors.unknown_error())


def create_app(
    seed: dict[str, Any] | None = None, state_file: Path | None = None, state: SandboxState | None = None
) -> tuple[ASGIApp, SandboxState]:
    """Returns (asgi_app, state). The ASGI app is the middleware-wrapped FastAPI app."""
    state = state or SandboxState(state_file)
    apply_default_clients(state)
    state.load()
    if seed:
        apply_seed(state, seed)

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.sandbox = state
    app.include_router(ops_routes.router)
    app.include_router(uaa_routes.router)
    app.include_router(uaa_clients.router)
    cc_routers = [cc_root.router, cc_orgs.router, cc_users.router, cc_roles.router, cc_extras.router]
    for r in cc_routers:
        app.include_router(r)
    app.add_exception_handler(errors.CFError, _on_cf_error)
    app.add_exception_handler(errors.UAAError, _on_uaa_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unhandled)
    # route templates for the counters come from the routers' own routes (with prefixes)
    routes = [
        *ops_routes.router.routes,
        *uaa_routes.router.routes,
        *uaa_clients.router.routes,
        *(rt for r in cc_routers for rt in r.routes),
    ]
    wrapped = SandboxMiddleware(app, state, routes)
    return wrapped, state
