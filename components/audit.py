"""Audit trail: every change cf-access applies to Cloud Foundry, one JSON line each.

The dynamic providers call :meth:`AuditTrail.record` right after each write CF
accepted (role created or deleted, user created or deleted). Lines are appended
to the file named by the stack config key ``cf-access:auditLog`` (unset = no
trail)::

    {"time": "2026-11-29T19:20:01.123456Z", "stack": "prod", "update": "merge",
     "operation": "update", "action": "add", "user": "corp-sso/judy@corp.com",
     "scope": "payments/dev", "role": "space_developer",
     "reason": "group directory:payments-dev (mappings/payments.yaml)"}

``action`` is ``add`` / ``remove`` (roles) or ``create-user`` / ``delete-user``.
``reason`` is the member's provenance for an add; for a remove what granted it
before (``no longer granted (was: ...)``), ``found in CF, not granted by any
mapping`` for an authoritative sweep, or why a space role went with
``organization_user``.

Where the fields come from, inside the provider process:

* ``stack`` - the provider process does not know the stack (the engine does not
  pass it to dynamic providers), so the program hands it over: the provider
  objects carry it and it is pickled with them (``pulumi.get_stack()``).
* ``update`` - ``CF_ACCESS_UPDATE_KIND`` when set (CI sets ``merge``,
  ``drift-repair``, ...), else the Pulumi command that started the provider
  (``up``, ``destroy``, ``refresh``, ``preview``), else ``unknown``. The provider's
  parent is not the ``pulumi`` CLI but the SDK's launcher script
  (``pulumi-resource-pulumi-python`` runs python under ``/bin/sh``, without
  ``exec``), so on Linux we walk up the process ancestry (``/proc/<pid>/stat``
  ppid) to the first ``pulumi`` process whose argv names a command.
* ``operation`` - the resource operation that wrote (create, update, delete).

Safety: the provider serves up to four gRPC calls at once and fans member
writes out to a thread pool, and two ``pulumi`` processes may share one file.
Each record is one ``os.write`` of a complete line on an ``O_APPEND`` file
descriptor, under a per-file lock in the process and an exclusive ``flock``
across processes, so lines never interleave or tear. ``check()`` (called from
``configure()``) opens the file before any CF write, so a bad path fails the
run before anything is changed. A failed append after a CF write raises
``AuditWriteError`` and *latches*: from then on every ``record``, ``check`` and
``ensure_writable`` of that trail raises ``AuditWriteError`` naming the file, so
a provider that calls ``ensure_writable()`` before each CF write stops before
its next change instead of changing CF with nothing recorded. The next run
starts a new provider process and re-checks the file.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

CONFIG_KEY = "auditLog"
UPDATE_KIND_ENV = "CF_ACCESS_UPDATE_KIND"
PULUMI_COMMANDS = ("up", "update", "destroy", "refresh", "preview", "import")

AuditAction = Literal["add", "remove", "create-user", "delete-user"]


class AuditWriteError(OSError):
    """The audit line could not be written (the CF change it describes did happen)."""


class _ConfigReader(Protocol):
    def get(self, key: str) -> str | None: ...


@dataclass(frozen=True)
class AuditEvent:
    time: str
    stack: str
    update: str
    operation: str | None
    action: str
    user: str
    scope: str | None
    role: str | None
    reason: str

    def line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(", ", ": ")) + "\n"


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    key = str(path.resolve())
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = threading.Lock()
        return lock


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


MAX_ANCESTRY = 32  # provider <- launcher script <- pulumi: a few levels; bounded against loops


def _parent_pid(pid: int, proc: Path) -> int | None:
    """ppid from ``/proc/<pid>/stat``: the 4th field, counted after the ``(comm)`` (which may
    contain spaces and parentheses, hence the last ``)``)."""
    try:
        stat = (proc / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[1])
    except (IndexError, ValueError):
        return None


def _pulumi_command(pid: int, proc: Path) -> str | None:
    """The command of ``pid`` when it is a ``pulumi <command>`` process, else None."""
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    if not args or Path(args[0]).name not in ("pulumi", "pulumi.exe"):
        return None
    for arg in args[1:]:
        if arg in PULUMI_COMMANDS:
            return "up" if arg == "update" else arg
    return None


def detect_update_kind(
    environ: dict[str, str] | None = None, proc: Path = Path("/proc"), pid: int | None = None
) -> str:
    """``CF_ACCESS_UPDATE_KIND``, else the command of the nearest ``pulumi <command>``
    ancestor of ``pid`` (default: this process), else ``unknown``."""
    env = os.environ if environ is None else environ
    if env.get(UPDATE_KIND_ENV):
        return env[UPDATE_KIND_ENV]
    current: int | None = os.getpid() if pid is None else pid
    seen: set[int] = set()
    while current is not None and current > 0 and current not in seen and len(seen) < MAX_ANCESTRY:
        seen.add(current)
        command = _pulumi_command(current, proc)
        if command is not None:
            return command
        current = _parent_pid(current, proc)
    return "unknown"


class AuditTrail:
    """Appends :class:`AuditEvent` lines to one file; safe across threads and processes."""

    def __init__(
        self,
        path: Path,
        *,
        stack: str,
        update: str | None = None,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self.path = path
        self.stack = stack
        self.update = update if update is not None else detect_update_kind()
        self._clock = clock
        self._lock = _lock_for(path)
        self._failure: AuditWriteError | None = None  # latched by the first failed append
        self._checked = False

    def __repr__(self) -> str:
        return f"AuditTrail({str(self.path)!r}, stack={self.stack!r}, update={self.update!r})"

    def check(self) -> None:
        """Create the folder and file if needed and make sure we can append (before any write).

        Raises the latched failure when an earlier append failed, even if the file
        would open now: lines are already missing, so this run must not go on.
        """
        self._raise_latched()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            os.close(fd)
        except OSError as exc:
            raise AuditWriteError(
                exc.errno, f"audit log {self.path} is not writable: {exc.strerror}"
            ) from None
        self._checked = True

    def ensure_writable(self) -> None:
        """Call before each CF write: raises once any append failed (cheap: no I/O after the
        first successful ``check``)."""
        self._raise_latched()
        if not self._checked:
            self.check()

    @property
    def failed(self) -> bool:
        return self._failure is not None

    def _raise_latched(self) -> None:
        failure = self._failure
        if failure is not None:
            raise AuditWriteError(
                failure.errno,
                f"audit log {self.path}: an earlier change could not be recorded "
                f"({str(failure.strerror).removeprefix(f'audit log {self.path}: ')}); "
                "no further change is made in this run - fix the file (disk space, permissions, "
                "the auditLog path) and run again",
            )

    def record(
        self,
        action: AuditAction,
        user: str,
        scope: str | None,
        role: str | None,
        reason: str,
        *,
        operation: str | None = None,
    ) -> AuditEvent:
        event = AuditEvent(
            time=self._clock().astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            stack=self.stack,
            update=self.update,
            operation=operation,
            action=action,
            user=user,
            scope=scope,
            role=role,
            reason=reason,
        )
        self._raise_latched()
        try:
            self._append(event.line().encode("utf-8"))
        except AuditWriteError as exc:
            self._failure = self._failure or exc
            raise
        return event

    def _append(self, data: bytes) -> None:
        with self._lock:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            except OSError as exc:
                raise AuditWriteError(exc.errno, f"audit log {self.path}: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            except OSError as exc:
                raise AuditWriteError(exc.errno, f"audit log {self.path}: {exc.strerror}") from None
            finally:
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)


def audit_trail_from_config(
    config: _ConfigReader, *, stack: str | None, project_root: Path | None = None
) -> AuditTrail | None:
    """The trail configured by ``cf-access:auditLog`` (None when unset). A relative path is
    relative to ``project_root`` (default: the current directory, i.e. the project folder
    the engine runs the provider in)."""
    raw = config.get(CONFIG_KEY)
    if raw is None or not raw.strip():
        return None
    path = Path(raw.strip()).expanduser()
    if not path.is_absolute():
        path = (project_root or Path.cwd()) / path
    return AuditTrail(path, stack=stack or os.environ.get("PULUMI_STACK") or "unknown")


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """Every event of a trail file (for tooling and tests)."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                event: dict[str, Any] = json.loads(line)
                yield event
