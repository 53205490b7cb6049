"""One Cloud Foundry read per drift check: the providers' refresh read, handed to the program.

``pulumi preview --refresh`` (the drift check, and every shipped workflow) first
refreshes every resource: the dynamic provider process reads the foundation in bulk
(orgs, spaces, users, roles at ``per_page=5000``; session.py). Then the program
runs and, for its guards, would read the same lists again - twice the minimum.
Instead, the provider publishes what it read, and the program of the *same run*
takes it instead of reading again.

Why this cannot cause a wrong write: the program uses the foundation only to
count and describe what the run will change (the guards, the log line) and to
declare kept organization_users and adopted holders, which only ever keep access.
Every write is decided by the provider against its own view of CF, read in its
own process (never from this file). And the snapshot is seconds old: taken by
this run's refresh, which ends right before the program starts. It also carries
the scopes of the provider's token (same client), so the program's scope check
needs no token of its own: a drift check then makes the bulk read, one token
request and one UAA discovery, all in the provider.

"Same run" is the engine's gRPC address, which both processes are given by the
CLI (the provider as its argument, the program as ``--engine``) and which no other
live run can hold. A snapshot is taken at most once, deleted when taken, and
ignored when older than ``MAX_AGE_S`` (a run that died before its program ran
left it behind, and a later run got the same port). Without a refresh there is
no snapshot and the program reads CF itself.

Hand-written, not a library: a one-file hand-off between two processes of one
run, in a directory only this user can read (no secrets: names and role guids).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from components.cloudfoundry.models import CfUser, Org, Role, Space

log = logging.getLogger("cf_access.shared_read")

MAX_AGE_S = 120.0
_ENV_DIR = "CF_ACCESS_SHARED_READ_DIR"  # tests point it elsewhere


@dataclass(frozen=True)
class FoundationRead:
    """Everything a bulk read of the foundation returns."""

    orgs: Sequence[Org]
    spaces: Sequence[Space]
    users: Sequence[CfUser]
    roles: Sequence[Role]
    taken_at: float
    scopes: Sequence[str] = ()  # of the token the provider read with (same client id)


def _folder() -> Path:
    folder = Path(os.environ.get(_ENV_DIR) or Path(tempfile.gettempdir()) / f"cf-access-{os.getuid()}")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def _path(engine: str, api_url: str, client_id: str) -> Path:
    digest = hashlib.sha256(f"{engine}\n{api_url.rstrip('/')}\n{client_id}".encode()).hexdigest()[:32]
    return _folder() / f"read-{digest}.json"


def engine_of_program(cmdline: Sequence[str] | None = None) -> str | None:
    """The engine address the language host gave this program (``--engine ADDR``)."""
    if cmdline is None:
        try:
            raw = Path("/proc/self/cmdline").read_bytes()
        except OSError:
            return None
        cmdline = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    for i, part in enumerate(cmdline[:-1]):
        if part == "--engine":
            return cmdline[i + 1] or None
    return None


def publish(read: FoundationRead, engine: str, api_url: str, client_id: str) -> None:
    """Write the read for the program of this run (atomic: temporary file, then rename)."""
    path = _path(engine, api_url, client_id)
    data = {
        "taken_at": read.taken_at,
        "orgs": [asdict(o) for o in read.orgs],
        "spaces": [asdict(s) for s in read.spaces],
        "users": [asdict(u) for u in read.users],
        "roles": [asdict(r) for r in read.roles],
        "scopes": sorted(read.scopes),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".read-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, separators=(",", ":"))
        Path(tmp).replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        log.warning("could not share the refresh read with the program (%s); it will read CF itself", exc)


def take(engine: str | None, api_url: str, client_id: str, now: float | None = None) -> FoundationRead | None:
    """This run's refresh read, once (the file is deleted), or None."""
    if not engine:
        return None
    path = _path(engine, api_url, client_id)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    with contextlib.suppress(OSError):
        path.unlink()
    try:
        data = json.loads(text)
        read = FoundationRead(
            orgs=[Org(**o) for o in data["orgs"]],
            spaces=[Space(**s) for s in data["spaces"]],
            users=[CfUser(**u) for u in data["users"]],
            roles=[Role(**r) for r in data["roles"]],
            taken_at=float(data["taken_at"]),
            scopes=[str(x) for x in data.get("scopes") or ()],
        )
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring an unreadable shared read (%s)", exc)
        return None
    age = (time.time() if now is None else now) - read.taken_at
    if not 0 <= age <= MAX_AGE_S:
        return None
    return read
