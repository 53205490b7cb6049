"""The audit trail writer: format, configuration, and appends that never interleave
(threads in one provider process, and several processes on one file)."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
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


def _fake_process(proc: Path, pid: int, ppid: int, comm: str, *argv: str) -> None:
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 1 0\n")
    (proc / str(pid) / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in argv))


def test_update_kind_walks_up_to_the_pulumi_cli(tmp_path: Path) -> None:
    """The provider's parent is the SDK's launcher script (``/bin/sh``), not the CLI: the old
    code looked only at the parent and said ``unknown`` for every ``pulumi up``."""
    proc = tmp_path / "proc"
    _fake_process(proc, 1, 0, "init", "/sbin/init")
    _fake_process(
        proc, 300, 1, "pulumi", "/opt/pulumi/bin/pulumi", "--cwd", "/p", "up", "--yes", "--stack", "prod"
    )
    # the SDK's provider launcher is a shell script that runs python without exec
    _fake_process(
        proc, 450, 300, "pulumi-resource", "/bin/sh", "/opt/pulumi/bin/pulumi-resource-pulumi-python"
    )
    _fake_process(proc, 500, 450, "python3 (x) y", "/p/venv/bin/python", "-m", "pulumi.dynamic")
    assert detect_update_kind({}, proc, pid=500) == "up"
    (proc / "300" / "cmdline").write_bytes(b"pulumi\0update\0--yes\0")
    assert detect_update_kind({}, proc, pid=500) == "up"
    for command in ("destroy", "refresh", "preview"):
        (proc / "300" / "cmdline").write_bytes(f"/usr/bin/pulumi\0{command}\0--yes\0".encode())
        assert detect_update_kind({}, proc, pid=500) == command


def test_update_kind_unknown_without_a_pulumi_ancestor(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _fake_process(proc, 1, 0, "init", "/sbin/init")
    _fake_process(proc, 7, 1, "python", "python", "-m", "pytest", "up")  # 'up' but not pulumi
    _fake_process(proc, 8, 7, "pulumi-language", "pulumi-language-python", "up")  # a plugin, not the CLI
    assert detect_update_kind({}, proc, pid=8) == "unknown"
    _fake_process(proc, 20, 21, "loop", "a")
    _fake_process(proc, 21, 20, "loop", "b")
    assert detect_update_kind({}, proc, pid=20) == "unknown"  # a cycle ends the walk
    assert detect_update_kind({}, tmp_path / "nowhere", pid=5) == "unknown"


def test_update_kind_env_wins(tmp_path: Path) -> None:
    assert detect_update_kind({"CF_ACCESS_UPDATE_KIND": "drift-repair"}, tmp_path) == "drift-repair"


def test_update_kind_of_this_process_is_found_on_real_proc() -> None:
    """Our own ancestry is real (Linux /proc, as in CI): pytest is not under ``pulumi``, so
    ``unknown``, without error."""
    assert Path("/proc/self/stat").exists()
    assert detect_update_kind({}) == "unknown"


def _break(path: Path) -> None:
    """Make appends to ``path`` fail even as root: a directory where the file was."""
    path.unlink()
    path.mkdir()


def test_failed_append_latches_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail(path, stack="prod", update="up", clock=lambda: FIXED)
    trail.ensure_writable()
    trail.record("add", "uaa/a", "org", "organization_user", "r")
    _break(path)
    with pytest.raises(AuditWriteError, match=str(path)):
        trail.record("add", "uaa/b", "org", "organization_user", "r")
    assert trail.failed
    path.rmdir()  # the file could be written again now, but a line is already missing
    for call in (
        trail.ensure_writable,
        trail.check,
        lambda: trail.record("add", "uaa/c", "org", "organization_user", "r"),
    ):
        with pytest.raises(
            AuditWriteError, match=f"audit log {path}: an earlier change could not be recorded"
        ):
            call()
    assert not path.exists()  # nothing was appended after the failure


def test_ensure_writable_checks_once_then_is_cheap(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(AuditWriteError, match="not writable"):
        AuditTrail(blocker / "audit.jsonl", stack="prod", update="up").ensure_writable()
    path = tmp_path / "ok" / "audit.jsonl"
    trail = AuditTrail(path, stack="prod", update="up")
    trail.ensure_writable()
    assert path.is_file()
    path.unlink()
    trail.ensure_writable()  # no I/O after the first check: only a latched failure stops it
    assert not path.exists()
