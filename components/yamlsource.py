"""Line-aware YAML loading shared by the mappings loader and the directory source.

PyYAML's ``safe_load`` throws away positions and silently keeps the last of two
duplicate keys. Here we only *compose* the document (nodes keep their marks) and
walk the node tree ourselves, so every problem can name file, line, column and
key path, and duplicate keys are caught.

Nothing here knows about mappings or directories: it reads bytes into a node
tree, and offers small helpers for the validators built on top of it.
"""

from __future__ import annotations

import datetime as dt
import difflib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

DEFAULT_MAX_FILE_BYTES = 1_000_000

STR_TAG = "tag:yaml.org,2002:str"
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
_TAG_NAMES = {
    "tag:yaml.org,2002:str": "string",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
    "tag:yaml.org,2002:bool": "boolean",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "date",
    "tag:yaml.org,2002:binary": "binary",
}


@dataclass(frozen=True, order=True)
class Problem:
    """One validation problem, located in a file (line and column are 1-based)."""

    file: str
    line: int | None
    column: int | None
    key_path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"


def _sort_key(p: Problem) -> tuple[str, int, int, str, str]:
    return (p.file, p.line or 0, p.column or 0, p.key_path, p.message)


class ProblemsError(Exception):
    """Raised with every problem found, one line per problem in ``str()``."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(sorted(set(problems), key=_sort_key))
        super().__init__("\n".join(str(p) for p in self.problems))


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else as given."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def read_limited(path: Path, file: str, max_bytes: int) -> tuple[bytes | None, list[Problem]]:
    """Read ``path`` unless it is larger than ``max_bytes`` (checked before reading)."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return None, [
                Problem(file, None, None, "", f"file is {size} bytes, over the {max_bytes} byte limit")
            ]
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        return None, [Problem(file, None, None, "", f"cannot read file: {exc.strerror or exc}")]
    if len(data) > max_bytes:  # grew between stat and read
        return None, [Problem(file, None, None, "", f"file is over the {max_bytes} byte limit")]
    return data, []


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader used only to compose nodes (which keep their start/end marks)."""


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


# libyaml's composer, when PyYAML has it: ~10x faster on a 10,000-person directory file (the
# pure-Python composer was a third of a no-op run's program CPU at M, docs/performance.md). Its
# marks carry line and column but no buffer, so only callers that need nothing else use it.
_FAST_LOADER: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)


def parse_yaml(
    data: bytes, file: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES, *, fast: bool = False
) -> tuple[Node | None, list[Problem]]:
    """Decode and compose one YAML document; return its root node or the problems found.

    ``fast``: compose with libyaml (marks without ``buffer``); a document it rejects is
    composed again by the pure-Python composer, so every error message is the same."""
    if len(data) > max_bytes:
        return None, [
            Problem(file, None, None, "", f"file is {len(data)} bytes, over the {max_bytes} byte limit")
        ]
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [Problem(file, line, col, "", f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})")]
    if fast and _FAST_LOADER is not None:
        try:
            fast_root: Node | None = yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            fast_root = None  # the pure-Python composer below says what is wrong, as always
        if fast_root is not None:
            return fast_root, []
    try:
        root = yaml.compose(text, Loader=_ComposeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            msg = f"{exc.context}: {exc.problem}"
        msg = " ".join(msg.split())
        if mark is None:
            return None, [Problem(file, None, None, "", f"YAML syntax error: {msg}")]
        return None, [Problem(file, mark.line + 1, mark.column + 1, "", f"YAML syntax error: {msg}")]
    except yaml.reader.ReaderError as exc:
        line, col = _line_col(text, exc.position)
        return None, [
            Problem(
                file,
                line,
                col,
                "",
                f"YAML syntax error: unacceptable character U+{exc.character:04X}"
                if isinstance(exc.character, int)
                else f"YAML syntax error: {exc.reason}",
            )
        ]
    except yaml.YAMLError as exc:  # pragma: no cover - any other PyYAML failure
        return None, [Problem(file, None, None, "", f"YAML syntax error: {exc}")]
    if root is None:
        return None, [Problem(file, None, None, "", "file is empty (no YAML document)")]
    return root, []


def pos(node: Node) -> tuple[int, int]:
    """1-based (line, column) where ``node`` starts."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def kind_name(node: Node) -> str:
    """Human name of a node's type: mapping, list, string, integer, null, ..."""
    if isinstance(node, MappingNode) and node.tag == MAP_TAG:
        return "mapping"
    if isinstance(node, SequenceNode) and node.tag == SEQ_TAG:
        return "list"
    return _TAG_NAMES.get(node.tag, f"a value tagged '{node.tag}'")


def did_you_mean(word: str, options: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or an empty string."""
    folded = {o.replace("-", "_").replace(" ", "_").casefold(): o for o in options}
    key = word.replace("-", "_").replace(" ", "_").casefold()
    if key in folded:
        return f" (did you mean '{folded[key]}'?)"
    squashed = {k.replace("_", ""): v for k, v in folded.items()}
    if key.replace("_", "") in squashed:
        return f" (did you mean '{squashed[key.replace('_', '')]}'?)"
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def name_problem(value: str, what: str = "name") -> str | None:
    """Why ``value`` is not acceptable as a name, or None when it is fine."""
    if value == "" or value.isspace():
        return f"empty {what}"
    for ch in value:
        if ch in "\n\r\u2028\u2029":
            return f"{what} {value!r} contains a line break"
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return f"{what} {value!r} contains a control or invisible character (U+{ord(ch):04X})"
    if value != value.strip():
        return f"{what} {value!r} has leading or trailing whitespace"
    return None


class NodeReader:
    """Walks composed nodes of one file and collects problems with positions."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, node: Node | None, path: str, message: str) -> None:
        if node is None:
            self.problems.append(Problem(self.file, None, None, path, message))
        else:
            line, col = pos(node)
            self.problems.append(Problem(self.file, line, col, path, message))

    def mapping(self, node: Node, path: str, what: str = "a mapping") -> list[tuple[str, ScalarNode, Node]]:
        """Items of a mapping node as (key, key node, value node); reports duplicates.

        Returns [] (after reporting) when ``node`` is not a mapping. Duplicate keys are
        reported at the later occurrence, and only the first occurrence is returned.
        """
        if not isinstance(node, MappingNode) or node.tag != MAP_TAG:
            self.problem(node, path, f"expected {what}, got {kind_name(node)}")
            return []
        seen: dict[str, ScalarNode] = {}
        items: list[tuple[str, ScalarNode, Node]] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, path, f"keys must be plain text, got a {kind_name(key_node)}")
                continue
            key = str(key_node.value)
            child = join(path, key)
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problem(key_node, path, "merge keys ('<<') are not supported; write the entries out")
                continue
            if key in seen:
                first_line = seen[key].start_mark.line + 1
                self.problem(key_node, child, f"duplicate key '{key}' (first defined at line {first_line})")
                continue
            seen[key] = key_node
            items.append((key, key_node, value_node))
        return items

    def sequence(self, node: Node, path: str, hint: str = "") -> list[Node]:
        if not isinstance(node, SequenceNode) or node.tag != SEQ_TAG:
            self.problem(node, path, f"expected a list, got {kind_name(node)}{hint}")
            return []
        return list(node.value)

    def string(self, node: Node, path: str, what: str = "name") -> str | None:
        """A string scalar that passes ``name_problem``; None (after reporting) otherwise."""
        if not isinstance(node, ScalarNode) or node.tag != STR_TAG:
            self.problem(node, path, f"expected a string, got {kind_name(node)}")
            return None
        value = str(node.value)
        why = name_problem(value, what)
        if why:
            self.problem(node, path, why)
            return None
        return value

    def date(self, node: Node, path: str) -> dt.date | None:
        """A calendar date: unquoted ``2026-12-31`` or the same as a quoted string."""
        if isinstance(node, ScalarNode) and node.tag in (STR_TAG, "tag:yaml.org,2002:timestamp"):
            text = str(node.value).strip()
            if len(text) == 10:  # YYYY-MM-DD only: no times, no week dates
                try:
                    return dt.date.fromisoformat(text)
                except ValueError:
                    pass
            self.problem(node, path, f"expected a date as YYYY-MM-DD, got '{text}'")
            return None
        self.problem(node, path, f"expected a date as YYYY-MM-DD, got {kind_name(node)}")
        return None

    def unknown_key(
        self, key: str, key_node: Node, path: str, allowed: Sequence[str], what: str = "key"
    ) -> None:
        self.problem(key_node, join(path, key), f"unknown {what} '{key}'{did_you_mean(key, allowed)}")


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key
