"""The audit trail writer: format, configuration, and appends that never interleave
(threads in one provider process, and several processes on one file)."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from components.audit import (
    AuditTrail,
    AuditWriteError,
    audit_trail_from_config,
    detect_update_kind,
    read_events,
)

FIXED = dt.datetime(2026, 11, 29, 19, 20, 1, 123456, tzinfo=dt.UTC)


class Config(dict[str, str]):
    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key, default)


def test_one_json_line_per_change(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.jsonl", stack="prod", update="merge", clock=lambda: FIXED)
    trail.record(
        "add",
        "corp-sso/judy@corp.com",
        "payments/dev",
        "space_developer",
        "group directory:payments-dev (mappings/payments.yaml:13)",
        operation="update",
    )
    trail.record(
        "remove",
        "corp-sso/mallory@corp.com",
        "payments",
        "organization_user",
        "found in CF, not granted by any mapping",
        operation="update",
    )
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == {
        "time": "2026-11-29T19:20:01.123456Z",
        "stack": "prod",
        "update": "merge",
        "operation": "update",
        "action": "add",
        "user": "corp-sso/judy@corp.com",
        "scope": "payments/dev",
        "role": "space_developer",
        "reason": "group directory:payments-dev (mappings/payments.yaml:13)",
    }
    assert [e["action"] for e in read_events(tmp_path / "audit.jsonl")] == ["add", "remove"]


def test_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"earlier": true}\n')
    AuditTrail(path, stack="prod", update="up").record("create-user", "uaa/x", None, None, "named user")
    assert path.read_text().splitlines()[0] == '{"earlier": true}'
    assert len(path.read_text().splitlines()) == 2


def test_threads_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(path, stack="prod", update="up")
    reason = "r" * 5000  # longer than PIPE_BUF: atomicity must not depend on small writes

    def write(i: int) -> None:
        trail.record("add", f"uaa/user{i}@corp.com", "org/space", "space_developer", reason)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(write, range(400)))
    events = list(read_events(path))
    assert len(events) == 400
    assert sorted(e["user"] for e in events) == sorted(f"uaa/user{i}@corp.com" for i in range(400))
    assert all(e["reason"] == reason for e in events)


def _child(path: str, n: int, tag: str) -> None:
    trail = AuditTrail(Path(path), stack="prod", update="up")
    for i in range(n):
        trail.record("remove", f"uaa/{tag}-{i}", "org", "organization_user", "x" * 3000)


def test_processes_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child, args=(str(path), 100, f"p{k}")) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    events = list(read_events(path))
    assert len(events) == 400
    assert len({e["user"] for e in events}) == 400


def test_config_key(tmp_path: Path) -> None:
    assert audit_trail_from_config(Config(), stack="prod") is None
    assert audit_trail_from_config(Config(auditLog="  "), stack="prod") is None
    trail = audit_trail_from_config(Config(auditLog="logs/audit.jsonl"), stack="prod", project_root=tmp_path)
    assert trail is not None
    assert trail.path == tmp_path / "logs" / "audit.jsonl"
    assert trail.stack == "prod"
    trail.check()  # creates the folder and the file
    assert trail.path.is_file()
    absolute = audit_trail_from_config(Config(auditLog=str(tmp_path / "a.jsonl")), stack=None)
    assert absolute is not None and absolute.path == tmp_path / "a.jsonl"


def test_unwritable_path_fails_check_even_as_root(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    trail = AuditTrail(blocker / "audit.jsonl", stack="prod", update="up")
    with pytest.raises(AuditWriteError, match="not writable"):
        trail.check()
    with pytest.raises(AuditWriteError):
        trail.record("add", "uaa/x", "org", "organization_user", "r")


def test_update_kind(tmp_path: Path) -> None:
    assert detect_update_kind({"CF_ACCESS_UPDATE_KIND": "drift-repair"}) == "drift-repair"
    proc = tmp_path / "proc"
    (proc / str(os.getppid())).mkdir(parents=True)
    cmdline = proc / str(os.getppid()) / "cmdline"
    cmdline.write_bytes(b"/usr/bin/pulumi\0destroy\0--yes\0--stack\0prod\0")
    assert detect_update_kind({}, proc) == "destroy"
    cmdline.write_bytes(b"pulumi\0update\0--yes\0")
    assert detect_update_kind({}, proc) == "up"
    cmdline.write_bytes(b"python\0-m\0something\0")
    assert detect_update_kind({}, proc) == "unknown"
    assert detect_update_kind({}, tmp_path / "nowhere") == "unknown"
