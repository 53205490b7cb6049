"""Run the sandbox in-process (tests) or standalone (``python -m sandbox``)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from .app import create_app
from .seed import load_seed_file
from .state import SandboxState


def _load_seed(seed: dict[str, Any] | Path | str | None) -> dict[str, Any] | None:
    if seed is None or isinstance(seed, dict):
        return seed
    return load_seed_file(Path(seed))


def make_uvicorn_config(app: Any, host: str, port: int, *, access_log: bool = False) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=access_log,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=30,
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """Listening socket with TCP_NODELAY (inherited by accepted sockets on Linux).

    Without it, uvicorn's separate header/body writes meet the client's delayed ACK and every
    keep-alive request takes ~40 ms.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


class SandboxServer:
    """A sandbox running on a background thread with its own event loop."""

    def __init__(
        self, server: uvicorn.Server, thread: threading.Thread, state: SandboxState, host: str, port: int
    ) -> None:
        self._server = server
        self._thread = thread
        self.state = state  # for debugging only; tests should go through the HTTP API
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def launch(
        cls,
        seed: dict[str, Any] | Path | str | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        state_file: Path | str | None = None,
    ) -> SandboxServer:
        app, state = create_app(_load_seed(seed), Path(state_file) if state_file else None)
        sock = bind_socket(host, port)
        actual_port = sock.getsockname()[1]
        server = uvicorn.Server(make_uvicorn_config(app, host, actual_port))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{actual_port}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox server failed to start")
            time.sleep(0.005)
        return cls(server, thread, state, host, actual_port)

    @classmethod
    @contextlib.contextmanager
    def start(
        cls,
        seed: dict[str, Any] | Path | str | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        state_file: Path | str | None = None,
    ) -> Iterator[SandboxServer]:
        srv = cls.launch(seed, port, host, state_file)
        try:
            yield srv
        finally:
            srv.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self.state.save()
