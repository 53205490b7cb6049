"""A YAML file as the identity provider: for offline use, tests and the demo stack.

::

    users:
      - {username: Alice@Corp.com, email: alice@corp.com, status: ACTIVE}
      - {username: bob@corp.com, status: SUSPENDED, display_name: Bob B, id: 00u2}
    groups:
      payments-dev: [alice@corp.com, bob@corp.com]   # members by username, case-insensitive

``status: ACTIVE`` (any case) is active; anything else (SUSPENDED, DEPROVISIONED,
LOCKED_OUT, ...) is a leaver and gets no roles. The file is read and validated on
every ``read_groups`` call; any problem fails the whole read (fail closed).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from yaml.nodes import Node

from components.identity.base import IdentityReadError, Person, normalise_username
from components.yamlsource import (
    NodeReader,
    Problem,
    did_you_mean,
    display_path,
    join,
    kind_name,
    name_problem,
    parse_yaml,
    read_limited,
)

UsernameAttribute = Literal["username", "email"]
USER_KEYS = ("username", "email", "status", "display_name", "id")
TOP_KEYS = ("users", "groups")


# A directory file is a whole IdP export (10,000 people take about 1 MB), unlike a
# mapping file (one org, capped at 1 MB): allow 64 MB before refusing to parse it.
DIRECTORY_MAX_FILE_BYTES = 64 * 1024 * 1024


class DirectoryError(IdentityReadError):
    """The directory file is invalid; ``problems`` names file:line for each."""

    def __init__(self, source: str, problems: Collection[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (p.file, p.line or 0, p.column or 0)))
        lines = "\n".join(str(p) for p in self.problems)
        super().__init__(source, None, f"invalid directory file:\n{lines}")


@dataclass(frozen=True)
class Directory:
    """A validated directory: people by normalised username, groups as member usernames."""

    people: dict[str, Person]
    groups: dict[str, tuple[str, ...]]


class DirectorySource:
    """Identity source backed by a YAML directory file (see module docstring)."""

    def __init__(
        self,
        path: str | Path,
        name: str = "directory",
        origin: str = "uaa",
        username_attribute: UsernameAttribute = "username",
        max_file_bytes: int = DIRECTORY_MAX_FILE_BYTES,
    ) -> None:
        if username_attribute not in ("username", "email"):
            raise ValueError(f"username_attribute must be 'username' or 'email', not {username_attribute!r}")
        self.path = Path(path)
        self.name = name
        self.origin = origin
        self.username_attribute: UsernameAttribute = username_attribute
        self.max_file_bytes = max_file_bytes

    def __repr__(self) -> str:
        return f"DirectorySource({str(self.path)!r}, name={self.name!r}, origin={self.origin!r})"

    def load(self) -> Directory:
        """Read and validate the whole file; raises DirectoryError listing every problem."""
        shown = display_path(self.path)
        data, problems = read_limited(self.path, shown, self.max_file_bytes)
        if data is None:
            raise DirectoryError(self.name, problems)
        return parse_directory(
            data, shown, source=self.name, origin=self.origin, username_attribute=self.username_attribute
        )

    def read_groups(self, names: Collection[str]) -> dict[str, tuple[Person, ...]]:
        directory = self.load()
        result: dict[str, tuple[Person, ...]] = {}
        for name in names:
            if name not in directory.groups:
                hint = did_you_mean(name, sorted(directory.groups))
                raise IdentityReadError(
                    self.name, name, f"group not found in {display_path(self.path)}{hint}"
                )
            members = (directory.people[u] for u in directory.groups[name])
            result[name] = tuple(sorted(members, key=lambda p: p.username))
        return result


def parse_directory(
    data: bytes | str,
    file: str,
    *,
    source: str = "directory",
    origin: str = "uaa",
    username_attribute: UsernameAttribute = "username",
    max_file_bytes: int = DIRECTORY_MAX_FILE_BYTES,
) -> Directory:
    """Validate directory content (pure); raises DirectoryError listing every problem."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    root, problems = parse_yaml(raw, file, max_file_bytes, fast=True)
    if root is None:
        raise DirectoryError(source, problems)
    reader = _DirectoryReader(file, source, origin, username_attribute)
    directory = reader.read(root)
    if reader.problems:
        raise DirectoryError(source, reader.problems)
    return directory


class _DirectoryReader(NodeReader):
    def __init__(self, file: str, source: str, origin: str, username_attribute: UsernameAttribute) -> None:
        super().__init__(file)
        self.source = source
        self.origin = origin
        self.username_attribute = username_attribute

    def read(self, root: Node) -> Directory:
        items = {k: (kn, vn) for k, kn, vn in self.mapping(root, "", "a mapping with 'users' and 'groups'")}
        for key, (kn, _) in items.items():
            if key not in TOP_KEYS:
                self.unknown_key(key, kn, "", TOP_KEYS)
        if kind_name(root) == "mapping":
            for key in TOP_KEYS:
                if key not in items:
                    self.problem(root, key, f"missing required key '{key}'")
        people: dict[str, Person] = {}
        by_lookup: dict[str, str] = {}  # normalised directory username -> people key
        lines: dict[str, int] = {}
        if "users" in items:
            for i, node in enumerate(self.sequence(items["users"][1], "users")):
                self.user(node, join("users", i), people, by_lookup, lines)
        groups: dict[str, tuple[str, ...]] = {}
        if "groups" in items:
            for gname, gkey, gnode in self.mapping(
                items["groups"][1], "groups", "a mapping of group to members"
            ):
                path = join("groups", gname)
                why = name_problem(gname, "group name")
                if why:
                    self.problem(gkey, path, why)
                    continue
                members: list[str] = []
                seen: set[str] = set()
                for i, m in enumerate(self.sequence(gnode, path)):
                    mpath = join(path, i)
                    text = self.string(m, mpath, "member")
                    if text is None:
                        continue
                    key = normalise_username(text)
                    if key not in by_lookup:
                        self.problem(m, mpath, f"unknown user '{text}'{did_you_mean(key, sorted(by_lookup))}")
                        continue
                    target = by_lookup[key]
                    if target in seen:
                        self.problem(m, mpath, f"user '{text}' is listed twice in group '{gname}'")
                        continue
                    seen.add(target)
                    members.append(target)
                groups[gname] = tuple(members)
        return Directory(people, groups)

    def user(
        self,
        node: Node,
        path: str,
        people: dict[str, Person],
        by_lookup: dict[str, str],
        lines: dict[str, int],
    ) -> None:
        fields = {k: (kn, vn) for k, kn, vn in self.mapping(node, path, "a user mapping")}
        if kind_name(node) != "mapping":
            return
        for key, (kn, _) in fields.items():
            if key not in USER_KEYS:
                self.unknown_key(key, kn, path, USER_KEYS)
        for key in ("username", "status"):
            if key not in fields:
                self.problem(node, path, f"missing required key '{key}'")
        values: dict[str, str | None] = {}
        for key, (_, vn) in fields.items():
            if key in USER_KEYS:
                values[key] = self.string(vn, join(path, key), key.replace("_", " "))
        raw_username, raw_status, raw_email = (
            values.get("username"),
            values.get("status"),
            values.get("email"),
        )
        if raw_username is None or raw_status is None or ("email" in values and raw_email is None):
            return
        username = normalise_username(raw_username)
        email = normalise_username(raw_email) if raw_email else None
        status = raw_status.upper()
        line = node.start_mark.line + 1
        if username in by_lookup:
            self.problem(
                node, join(path, "username"), f"duplicate user '{username}' (first at line {lines[username]})"
            )
            return
        cf_name = username
        if self.username_attribute == "email":
            if email is None:
                self.problem(node, path, "missing 'email' (this source uses email as the CF username)")
                return
            cf_name = email
            if cf_name in people:
                self.problem(
                    node, join(path, "email"), f"duplicate email '{email}' (first at line {lines[cf_name]})"
                )
                return
        lines[username] = line
        lines.setdefault(cf_name, line)
        by_lookup[username] = cf_name
        people[cf_name] = Person(
            username=cf_name,
            origin=self.origin,
            active=status == "ACTIVE",
            source=self.source,
            external_id=values.get("id") or username,
            email=email,
            display_name=values.get("display_name"),
        )
