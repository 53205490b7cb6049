"""Who wrote each mapping line: ``git blame`` through git itself, once per file.

The access review asks who approved each grant and when. The mappings are reviewed
in pull requests, so the commit that last wrote a grant's line names its author and
date. ``git blame --line-porcelain`` over the whole file is one process per mapping
file (400 files at the L size) instead of one per grant line (tens of thousands).

A file outside a git work tree, or git missing, gives no blame: the report shows
"not in git" rather than failing (the access data is still right).
"""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

UNCOMMITTED = "0" * 40  # git's id for lines changed in the work tree and not committed yet


@dataclass(frozen=True)
class BlameLine:
    """The commit that last wrote one line."""

    commit: str  # full id; "" when the line is not committed yet
    author: str
    date: str  # author date, ISO (UTC)
    summary: str  # the commit's subject


NOT_COMMITTED = BlameLine("", "not committed yet", "", "")


def parse_line_porcelain(text: str) -> dict[int, BlameLine]:
    """``git blame --line-porcelain`` output -> {final line number: BlameLine}."""
    out: dict[int, BlameLine] = {}
    for header, fields in _records(text.splitlines()):
        parts = header.split()
        commit, line = parts[0], int(parts[2])
        if commit == UNCOMMITTED:
            out[line] = NOT_COMMITTED
            continue
        when = dt.datetime.fromtimestamp(int(fields.get("author-time", "0")), dt.UTC)
        out[line] = BlameLine(
            commit,
            fields.get("author", ""),
            when.isoformat().replace("+00:00", "Z"),
            fields.get("summary", ""),
        )
    return out


def _records(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """(header, {key: value}) per blamed line; each record ends with the tab-prefixed content."""
    header: str | None = None
    fields: dict[str, str] = {}
    for raw in lines:
        if header is None:
            header, fields = raw, {}
        elif raw.startswith("\t"):
            yield header, fields
            header = None
        else:
            key, _, value = raw.partition(" ")
            fields[key] = value


def blame_file(path: Path) -> dict[int, BlameLine]:
    """Blame of every line of ``path``; {} when it is not in a git work tree (or git fails)."""
    try:
        proc = subprocess.run(
            ["git", "blame", "--line-porcelain", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if proc.returncode != 0:
        return {}
    return parse_line_porcelain(proc.stdout)


class Blame:
    """Blame of mapping lines by ``file:line`` as provenance names them, each file blamed once."""

    def __init__(self, resolve: dict[str, Path]) -> None:
        self._resolve = resolve  # shown name ("mappings/payments.yaml") -> path on disk
        self._files: dict[str, dict[int, BlameLine]] = {}

    def at(self, file: str, line: int) -> BlameLine | None:
        lines = self._files.get(file)
        if lines is None:
            path = self._resolve.get(file)
            lines = self._files[file] = blame_file(path) if path is not None else {}
        return lines.get(line)
