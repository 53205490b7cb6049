"""Outermost ASGI layer: request counting, fault injection and the CC-style rate limiter.

``/_sandbox/*`` (the operations API) is neither counted nor faulted.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import errors
from .responses import encode
from .state import SandboxState
from .tokens import InvalidToken

_RATE_EXEMPT = frozenset({"/", "/v3", "/v2/info", "/healthz"})
_ADMIN_SCOPES = frozenset({"cloud_controller.admin", "cloud_controller.admin_read_only"})


class SandboxMiddleware:
    def __init__(self, app: ASGIApp, state: SandboxState, routes: list[BaseRoute]) -> None:
        self.app = app
        self.state = state
        self.routes = routes

    def _template(self, scope: Scope) -> str:
        partial: str | None = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", scope["path"]))
            if match is Match.PARTIAL and partial is None:
                partial = str(getattr(route, "path", scope["path"]))
        return partial or "(unmatched)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        state = self.state
        path: str = scope["path"]
        if scope["method"] == "HEAD":  # Rails answers HEAD like GET without a body
            scope = {**scope, "method": "GET"}
            state.counters.count("HEAD", self._template(scope))
            send = _without_body(send)
        else:
            state.counters.count(scope["method"], self._template(scope))
        send = _with_request_id(send)

        faults = state.faults
        if faults.active and faults.applies_to(path):
            delay = faults.delay_s()
            if delay:
                await asyncio.sleep(delay)
            outcome = faults.pick()
            if outcome is not None:
                state.counters.fault(outcome)
            if outcome in ("drop_after", "502_after"):
                await self._process_then_lose(scope, receive, send, outcome)
                return
            if outcome == "drop":
                await _drop(receive, send)
                return
            if outcome == "429":
                await _send_rate_limited(
                    send,
                    {
                        "Retry-After": str(faults.retry_after_s),
                        "X-RateLimit-Limit": str(state.limiter.limit),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(int(time.time()) + faults.retry_after_s),
                    },
                )
                return
            if outcome is not None:
                await _send_error(send, int(outcome))
                return

        limiter = state.limiter
        if limiter.enabled and path not in _RATE_EXEMPT and not path.startswith(("/uaa", "/internal")):
            key, kind = self._limiter_key(scope)
            if kind is not None and limiter.applies(kind):
                allowed, headers = limiter.hit(key, kind)
                if not allowed:
                    err = (
                        errors.rate_limit_exceeded()
                        if kind != "unauthenticated"
                        else errors.ip_rate_limit_exceeded()
                    )
                    await _send_rate_limited(send, headers, err, v2=path.startswith("/v2"))
                    return
                raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

                async def send_with_headers(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        message = dict(message)
                        message["headers"] = list(message.get("headers", [])) + raw
                    await send(message)

                await self.app(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send)

    async def _process_then_lose(self, scope: Scope, receive: Receive, send: Send, outcome: str) -> None:
        """Run the request through the API, discard its response, then drop or answer 502."""

        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        if outcome == "drop_after":
            await _drop(receive, send)
        else:
            await _send_error(send, 502)

    def _limiter_key(self, scope: Scope) -> tuple[str, str | None]:
        """(counter key, kind): the token's user for valid tokens, else the client IP.

        kind is "admin", "user" or "unauthenticated"; None means exempt (basic auth).
        """
        auth = ""
        for k, v in scope.get("headers", []):
            if k == b"authorization":
                auth = v.decode("latin-1")
                break
        if auth[:6].lower() == "basic ":
            return "", None
        if auth[:7].lower() == "bearer ":
            try:
                info = self.state.tokens.validate(auth[7:].strip())
            except InvalidToken:
                pass
            else:
                admin = not info.scopes.isdisjoint(_ADMIN_SCOPES)
                return info.cc_user_guid, "admin" if admin else "user"
        client = scope.get("client") or ("unknown", 0)
        return str(client[0]), "unauthenticated"


def _without_body(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return wrapped


def _with_request_id(send: Send) -> Send:
    """Add ``X-Vcap-Request-Id`` (gorouter/CC set it on every response; clients log it)."""
    header = (b"x-vcap-request-id", uuid.uuid4().hex.encode())

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", []), header]
        await send(message)

    return wrapped


async def _drop(receive: Receive, send: Send) -> None:
    """Close the TCP connection without any response (uvicorn: abort the transport)."""
    cycle: Any = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox fault: drop")
    transport.abort()
    cycle.disconnected = True


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str], content_type: str) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _send_rate_limited(
    send: Send, headers: dict[str, str], err: errors.CFError | None = None, *, v2: bool = False
) -> None:
    err = err or errors.rate_limit_exceeded()
    body_obj = (
        {"description": err.detail, "error_code": err.title, "code": err.code} if v2 else err.envelope()
    )
    # CC's rate limiter really sends its JSON body as text/plain
    await _send(send, 429, encode(body_obj).encode(), headers, "text/plain; charset=utf-8")


async def _send_error(send: Send, status: int) -> None:
    if status == 502:
        await _send(
            send,
            502,
            b"502 Bad Gateway: Registered endpoint failed to handle the request.\n",
            {},
            "text/plain; charset=utf-8",
        )
        return
    err = errors.unknown_error() if status == 500 else errors.service_unavailable()
    await _send(send, status, encode(err.envelope()).encode(), {}, "application/json; charset=utf-8")
