"""What both IdP emulators share: fault knobs, counters, an ASGI wrapper and the server runner.

Faults are rules matched against ``"<METHOD> <path>?<query>"`` (a regex, searched):

* ``status``: answer with that status instead (429 carries the provider's rate-limit headers
  unless ``rate_limit_headers`` is False; 5xx carry ``Retry-After`` when ``retry_after`` is set),
* ``delay``: sleep that many seconds first (timeouts / slow responses),
* ``times``: how many matching requests the rule hits (None = all of them).

``latency`` (seconds) is added to every request. ``truncate`` cuts member paging: after
``after_pages`` pages the ``next`` link is dropped (``mode: drop-next``) or points to a
cursor the server then rejects (``mode: bad-next``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from .data import IdpData
from .tls import ServerTls, make_server_tls

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Fault:
    match: str = ""
    status: int | None = None
    delay: float = 0.0
    times: int | None = 1
    rate_limit_headers: bool = True
    retry_after: float | None = 1.0
    hits: int = 0


@dataclass
class Truncate:
    after_pages: int = 1
    mode: str = "drop-next"  # or "bad-next"
    match: str = ""  # regex on the group id or name; "" = every group


@dataclass
class Faults:
    latency: float = 0.0
    rules: list[Fault] = field(default_factory=list)
    truncate: Truncate | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, match: str = "", **kw: Any) -> Fault:
        rule = Fault(match=match, **kw)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.latency = 0.0
            self.truncate = None

    def take(self, line: str) -> Fault | None:
        with self._lock:
            for rule in self.rules:
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                if re.search(rule.match, line):
                    rule.hits += 1
                    return rule
        return None

    def truncation_for(self, *names: str) -> Truncate | None:
        t = self.truncate
        if t is None:
            return None
        if not t.match or any(re.search(t.match, n) for n in names):
            return t
        return None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency": self.latency,
                "rules": [asdict(r) for r in self.rules],
                "truncate": asdict(self.truncate) if self.truncate else None,
            }

    def configure(self, knobs: dict[str, Any]) -> None:
        if "latency" in knobs:
            self.latency = float(knobs["latency"])
        for rule in knobs.get("rules") or []:
            self.add(**rule)
        if "truncate" in knobs:
            self.truncate = Truncate(**knobs["truncate"]) if knobs["truncate"] else None


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def incr(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def enter(self) -> None:
        """A request started: tracks ``inflight`` and its high-water mark ``max_inflight``."""
        with self._lock:
            self._counts["inflight"] += 1
            self._counts["max_inflight"] = max(self._counts["max_inflight"], self._counts["inflight"])

    def leave(self) -> None:
        with self._lock:
            self._counts["inflight"] -= 1

    def get(self, key: str) -> int:
        with self._lock:
            return self._counts[key]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


class _QuietShutdown(logging.Filter):
    """Drop uvicorn's shutdown complaint about idle keep-alive clients (noise in test output)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Cancel ") and "graceful shutdown" in message)


logging.getLogger("uvicorn.error").addFilter(_QuietShutdown())

FaultResponder = Callable[[Fault], tuple[int, dict[str, str], dict[str, Any]]]


class EmulatorMiddleware:
    """Collapses ``//`` in paths (kiota sends ``/v1.0//groups``), counts, adds latency, injects faults."""

    def __init__(self, app: ASGIApp, emulator: EmulatorBase) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = re.sub("/{2,}", "/", scope["path"])
        scope["path"] = path
        scope["raw_path"] = path.encode("latin-1")
        em = self.emulator
        if path.startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        em.counters.incr("requests")
        em.counters.incr(f"{scope['method']} {em.route_key(path)}")
        query = scope.get("query_string", b"").decode("latin-1")
        line = f"{scope['method']} {path}?{query}"
        em.counters.enter()
        try:
            if em.faults.latency > 0:
                await asyncio.sleep(em.faults.latency)
            fault = em.faults.take(line)
            if fault is not None:
                em.counters.incr("faults")
                if fault.delay > 0:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    em.counters.incr(f"status:{fault.status}")
                    status, headers, body = em.fault_response(fault)
                    await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)
                    return
            await self.app(scope, receive, send)
        finally:
            em.counters.leave()


def control_router(emulator: EmulatorBase) -> APIRouter:
    router = APIRouter(prefix="/_emulator")

    @router.get("/counters")
    def counters() -> dict[str, int]:
        return emulator.counters.snapshot()

    @router.post("/counters/reset")
    def reset_counters() -> dict[str, str]:
        emulator.counters.reset()
        return {"status": "ok"}

    @router.get("/faults")
    def get_faults() -> dict[str, Any]:
        return emulator.faults.describe()

    @router.put("/faults")
    def put_faults(knobs: dict[str, Any]) -> dict[str, Any]:
        emulator.faults.configure(knobs)
        return emulator.faults.describe()

    @router.delete("/faults")
    def clear_faults() -> dict[str, str]:
        emulator.faults.clear()
        return {"status": "ok"}

    return router


class EmulatorBase:
    """An emulator app plus the thread running it (see ``start``)."""

    kind = "emulator"

    def __init__(
        self, data: IdpData | dict[str, Any] | str | Path | None = None, *, page_size: int = 200
    ) -> None:
        self.data = IdpData.from_obj(data)
        self.page_size = page_size
        self.faults = Faults()
        self.counters = Counters()
        self.host = "127.0.0.1"
        self.port = 0
        self.scheme = "http"
        self.tls: ServerTls | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.app = self.build_app()
        self.app.include_router(control_router(self))
        self.asgi: ASGIApp = EmulatorMiddleware(self.app, self)

    # -- hooks for subclasses -------------------------------------------------------------------
    def build_app(self) -> FastAPI:
        raise NotImplementedError

    def route_key(self, path: str) -> str:
        return path

    def fault_response(self, fault: Fault) -> tuple[int, dict[str, str], dict[str, Any]]:
        raise NotImplementedError

    # -- running ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path | None:
        return self.tls.ca_file if self.tls else None

    def launch(
        self, *, port: int = 0, host: str = "127.0.0.1", tls: bool = True, tls_dir: Path | None = None
    ) -> Self:
        self.host = host
        if tls:
            if tls_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix=f"{self.kind}-tls-")
                tls_dir = Path(self._tmp.name)
            self.tls = make_server_tls(tls_dir, (host, "localhost") if host != "localhost" else (host,))
            self.scheme = "https"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.asgi,
            host=host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=1,
            ssl_certfile=str(self.tls.cert_file) if self.tls else None,
            ssl_keyfile=str(self.tls.key_file) if self.tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"{self.kind}-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} emulator failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None and self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        data: IdpData | dict[str, Any] | str | Path | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        tls: bool = True,
        **kwargs: Any,
    ) -> Iterator[Self]:
        emulator = cls(data, **kwargs)
        emulator.launch(port=port, host=host, tls=tls)
        try:
            yield emulator
        finally:
            emulator.stop()


def json_dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
