"""Start the AD-like LDAP server (``python -m sandbox.ldap_ad``) in a child process for a test."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.idp.tls import ServerTls, make_server_tls
from sandbox.slapd.server import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class AdServer:
    port: int
    tls: ServerTls
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def url(self) -> str:
        return f"ldaps://127.0.0.1:{self.port}"


def ad_entry(dn: str, **attrs: list[str] | str) -> dict[str, Any]:
    return {"dn": dn, "attrs": {k: v if isinstance(v, list) else [v] for k, v in attrs.items()}}


@contextlib.contextmanager
def ad_server(
    workdir: Path,
    entries: list[dict[str, Any]],
    *,
    bind_dn: str,
    bind_password: str,
    max_values: int = 1500,
    drop_paging_after: int | None = None,
    max_tls: str | None = None,
) -> Iterator[AdServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    tls = make_server_tls(workdir / "tls")
    data = workdir / "directory.json"
    payload = {
        "bind_dn": bind_dn,
        "bind_password": bind_password,
        "max_values": max_values,
        "entries": entries,
    }
    data.write_text(json.dumps(payload), encoding="utf-8")
    port = free_port()
    cmd = [sys.executable, "-m", "sandbox.ldap_ad", "--port", str(port), "--data", str(data)]
    cmd += ["--cert", str(tls.cert_file), "--key", str(tls.key_file)]
    if drop_paging_after is not None:
        cmd += ["--drop-paging-after", str(drop_paging_after)]
    if max_tls is not None:
        cmd += ["--max-tls", max_tls]
    log_file = workdir / "ad.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = AdServer(port, tls, process, log_file)
    try:
        _wait(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait(server: AdServer, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"AD-like server exited:\n{server.log_file.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"AD-like server did not listen on {server.port}:\n{server.log_file.read_text()[-3000:]}"
    )
