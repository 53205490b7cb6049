"""Load and validate the access mappings (``mappings/*.yaml``).

One file per org. Everything is validated before anything else runs, and every
problem in every file is reported at once, each with file, line, column and key
path (see docs/mappings.md for the format)::

    mappings/payments.yaml:12:7: spaces.dev.space_develper: unknown role type 'space_develper'
    (did you mean 'space_developer'?)

``load_mappings`` does the file I/O; ``parse_mappings`` is the pure part (named
bytes in, ``Mappings`` out) and is what most tests drive.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from yaml.nodes import MappingNode, Node, ScalarNode

from components.identity.base import normalise_username
from components.model import (
    ORG_ROLE_TYPES,
    SPACE_ROLE_TYPES,
    Ownership,
    RoleType,
)
from components.yamlsource import (
    DEFAULT_MAX_FILE_BYTES,
    STR_TAG,
    NodeReader,
    Problem,
    ProblemsError,
    did_you_mean,
    display_path,
    join,
    kind_name,
    name_problem,
    parse_yaml,
    read_limited,
)

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "GroupGrant",
    "Location",
    "MappingError",
    "Mappings",
    "OrgMapping",
    "Problem",
    "RoleGrants",
    "SpaceMapping",
    "UserGrant",
    "load_mappings",
    "parse_mappings",
]

SOURCE_NAME_RE = re.compile(r"[a-z][a-z0-9_-]*")
OWNERSHIPS: tuple[Ownership, ...] = ("additive", "authoritative")
TOP_KEYS = ("org", "ownership", "description", "org_roles", "spaces")
GRANT_KEYS = ("groups", "users")
GROUP_KEYS = ("group", "source", "until")
USER_KEYS = ("user", "origin", "until")


def _squash(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


# Role names other tools use (cf CLI, cf-mgmt, Terraform providers) -> CC V3 role type, for hints.
ROLE_ALIASES: dict[str, RoleType] = {
    **{_squash(r): r for r in (*ORG_ROLE_TYPES, *SPACE_ROLE_TYPES)},
    "orgmanager": "organization_manager",
    "managers": "organization_manager",
    "billingmanager": "organization_billing_manager",
    "orgbillingmanager": "organization_billing_manager",
    "billingmanagers": "organization_billing_manager",
    "orgauditor": "organization_auditor",
    "auditors": "organization_auditor",
    "orguser": "organization_user",
    "users": "organization_user",
    "spacedeveloper": "space_developer",
    "developer": "space_developer",
    "developers": "space_developer",
    "spacemanager": "space_manager",
    "spaceauditor": "space_auditor",
    "spacesupporter": "space_supporter",
    "supporter": "space_supporter",
    "supporters": "space_supporter",
}


class MappingError(ProblemsError):
    """Mappings failed validation; ``problems`` lists every problem found."""


@dataclass(frozen=True, order=True)
class Location:
    """Where an entry was written: file and 1-based line (column for editors)."""

    file: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class GroupGrant:
    """An identity-provider group granted a role; ``source`` None means the default source."""

    group: str
    source: str | None
    until: dt.date | None
    location: Location

    def ref(self, default_source: str) -> str:
        """Qualified group ref, ``"<source>:<group>"``."""
        return f"{self.source or default_source}:{self.group}"


@dataclass(frozen=True)
class UserGrant:
    """A named user granted a role; ``origin`` None means the default source's origin."""

    username: str
    origin: str | None
    until: dt.date | None
    location: Location


@dataclass(frozen=True)
class RoleGrants:
    """Everything one role type in one scope is granted to."""

    role: RoleType
    groups: tuple[GroupGrant, ...]
    users: tuple[UserGrant, ...]
    location: Location


@dataclass(frozen=True)
class SpaceMapping:
    name: str
    roles: tuple[RoleGrants, ...]
    location: Location

    def role(self, role: RoleType) -> RoleGrants | None:
        return next((r for r in self.roles if r.role == role), None)


@dataclass(frozen=True)
class OrgMapping:
    name: str
    ownership: Ownership
    roles: tuple[RoleGrants, ...]
    spaces: tuple[SpaceMapping, ...]
    location: Location
    description: str | None = None

    @property
    def file(self) -> str:
        return self.location.file

    def role(self, role: RoleType) -> RoleGrants | None:
        return next((r for r in self.roles if r.role == role), None)

    def space(self, name: str) -> SpaceMapping | None:
        return next((s for s in self.spaces if s.name == name), None)

    def all_role_grants(self) -> Iterator[tuple[str | None, RoleGrants]]:
        """(space name or None for org roles, grants) for every role entry of the org."""
        for r in self.roles:
            yield None, r
        for s in self.spaces:
            for r in s.roles:
                yield s.name, r


@dataclass(frozen=True)
class Mappings:
    """All validated mappings, orgs sorted by name."""

    orgs: tuple[OrgMapping, ...]

    def org(self, name: str) -> OrgMapping | None:
        return next((o for o in self.orgs if o.name == name), None)

    def group_refs(self, default_source: str, today: dt.date | None = None) -> frozenset[str]:
        """Qualified refs of every group any mapping references (what the IdP must answer).

        With ``today``, groups whose every grant has expired are left out, so a group
        deleted in the IdP after its grant ended does not fail the read.
        """
        return frozenset(
            g.ref(default_source)
            for org in self.orgs
            for _, rg in org.all_role_grants()
            for g in rg.groups
            if today is None or g.until is None or g.until >= today
        )

    def sources(self) -> frozenset[str]:
        """Source prefixes written explicitly (bare groups are not included)."""
        return frozenset(
            g.source for org in self.orgs for _, rg in org.all_role_grants() for g in rg.groups if g.source
        )


# --------------------------------------------------------------------------- loading


MAPPING_SUFFIXES = (".yaml", ".yml")
# Files that may live in the mappings tree without being mappings.
ALLOWED_OTHER_FILES = ("schema.json",)
ALLOWED_OTHER_SUFFIXES = (".md",)


def load_mappings(
    path: str | Path | Sequence[str | Path],
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    known_sources: Collection[str] | None = None,
) -> Mappings:
    """Load every ``*.yaml``/``*.yml`` file below a directory (or the given files) and validate.

    Subfolders are read too (``mappings/teams/payments.yaml``); files and folders
    whose name starts with ``.`` are skipped. Any other file in the tree except
    ``schema.json`` and ``*.md`` is an error - a mapping saved as ``payments.yaml.bak``
    or ``payments.txt`` must not be dropped without anyone noticing, because its
    roles would be removed. Files over ``max_file_bytes`` are refused before they
    are read. With ``known_sources``, group prefixes naming another source are
    errors too. Raises ``MappingError`` listing every problem.
    """
    problems: list[Problem] = []
    files: list[Path]
    root: Path | None = None
    if isinstance(path, str | Path) and Path(path).is_dir():
        root = Path(path)
        files, strays = _walk(root)
        problems.extend(_stray_problem(root, f) for f in strays)
        if not files and not strays:
            raise MappingError(
                [Problem(display_path(root), None, None, "", "no mapping files (*.yaml) found")]
            )
    elif isinstance(path, str | Path):
        files = [Path(path)]
    else:
        files = [Path(p) for p in path]
    named: list[tuple[str, bytes]] = []
    for f in files:
        shown = _shown(f, root)
        data, read_problems = read_limited(f, shown, max_file_bytes)
        problems.extend(read_problems)
        if data is not None:
            named.append((shown, data))
    mappings, parse_problems = _parse(named, max_file_bytes, known_sources)
    problems.extend(parse_problems)
    if problems:
        raise MappingError(problems)
    return mappings


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """(mapping files, files that must not be there) below ``root``, sorted, hidden entries skipped."""
    files: list[Path] = []
    strays: list[Path] = []
    seen: set[Path] = set()

    def visit(folder: Path) -> None:
        real = folder.resolve()
        if real in seen:  # a symlink loop: each folder once
            return
        seen.add(real)
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                visit(entry)
            elif entry.is_file() and entry.suffix in MAPPING_SUFFIXES:
                files.append(entry)
            elif not (entry.name in ALLOWED_OTHER_FILES or entry.suffix in ALLOWED_OTHER_SUFFIXES):
                strays.append(entry)

    visit(root)
    return files, strays


def _shown(file: Path, root: Path | None) -> str:
    """How a file is named in provenance and errors: relative to the project (working) folder.

    A folder outside it names files ``<folder>/<path below it>`` so provenance in state
    does not churn when the checkout moves (CI workspaces).
    """
    shown = display_path(file)
    if root is not None and Path(shown).is_absolute():
        shown = (Path(root.name) / file.relative_to(root)).as_posix()
    return shown


def _stray_problem(root: Path, file: Path) -> Problem:
    return Problem(
        _shown(file, root),
        None,
        None,
        "",
        "not a mapping file, and every file in the mappings folder must be one: rename it to "
        "end in .yaml if it holds mappings (it is not read now, so its roles would be removed), "
        "or move it out of the mappings folder (only schema.json and *.md may sit next to mappings)",
    )


def parse_mappings(
    files: Sequence[tuple[str, bytes | str]],
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    known_sources: Collection[str] | None = None,
) -> Mappings:
    """Validate mapping documents given as (display name, content); pure, no I/O."""
    if not files:
        raise MappingError([Problem("mappings", None, None, "", "no mapping files given")])
    mappings, problems = _parse(files, max_file_bytes, known_sources)
    if problems:
        raise MappingError(problems)
    return mappings


def _parse(
    files: Sequence[tuple[str, bytes | str]],
    max_file_bytes: int,
    known_sources: Collection[str] | None,
) -> tuple[Mappings, list[Problem]]:
    problems: list[Problem] = []
    orgs: list[OrgMapping] = []
    for name, content in files:
        data = content.encode("utf-8") if isinstance(content, str) else content
        root, parse_problems = parse_yaml(data, name, max_file_bytes)
        problems.extend(parse_problems)
        if root is None:
            continue
        reader = _OrgReader(name, known_sources)
        org = reader.read(root)
        problems.extend(reader.problems)
        if org is not None:
            orgs.append(org)
    # Cross-file: an org may be defined once (CF org names are compared case-insensitively).
    first: dict[str, OrgMapping] = {}
    for org in orgs:
        key = org.name.casefold()
        if key in first:
            problems.append(
                Problem(
                    org.location.file,
                    org.location.line,
                    org.location.column,
                    "org",
                    f"org '{org.name}' is already defined in {first[key].location}",
                )
            )
        else:
            first[key] = org
    return Mappings(orgs=tuple(sorted(orgs, key=lambda o: o.name))), problems


class _OrgReader(NodeReader):
    """Validates one file's node tree into an OrgMapping, collecting problems."""

    def __init__(self, file: str, known_sources: Collection[str] | None) -> None:
        super().__init__(file)
        self.known_sources = sorted(known_sources) if known_sources is not None else None

    def loc(self, node: Node) -> Location:
        return Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def read(self, root: Node) -> OrgMapping | None:
        if kind_name(root) != "mapping":
            self.problem(root, "", f"a mapping file must be a mapping with 'org', got {kind_name(root)}")
            return None
        items = {k: (kn, vn) for k, kn, vn in self.mapping(root, "")}
        for key, (kn, _) in items.items():
            if key not in TOP_KEYS:
                self.unknown_key(key, kn, "", TOP_KEYS)
        name: str | None = None
        org_node: Node = root
        if "org" not in items:
            self.problem(root, "org", "missing required key 'org' (the CF org name)")
        else:
            org_node = items["org"][1]
            name = self.string(org_node, "org", "org name")
        ownership: Ownership = "additive"
        if "ownership" in items:
            node = items["ownership"][1]
            value = node.value if isinstance(node, ScalarNode) and node.tag == STR_TAG else None
            if value == "additive" or value == "authoritative":
                ownership = value
            elif value is None:
                self.problem(
                    node, "ownership", f"expected 'additive' or 'authoritative', got {kind_name(node)}"
                )
            else:
                self.problem(
                    node,
                    "ownership",
                    f"unknown ownership '{value}', expected 'additive' or "
                    f"'authoritative'{did_you_mean(str(value), OWNERSHIPS)}",
                )
        description: str | None = None
        if "description" in items:
            node = items["description"][1]
            if isinstance(node, ScalarNode) and node.tag == STR_TAG:
                description = str(node.value)
            else:
                self.problem(node, "description", f"expected a string, got {kind_name(node)}")
        roles: tuple[RoleGrants, ...] = ()
        if "org_roles" in items:
            roles = self.roles(items["org_roles"][1], "org_roles", space=False)
        spaces: list[SpaceMapping] = []
        if "spaces" in items:
            seen: dict[str, SpaceMapping] = {}
            for sname, skey, snode in self.mapping(
                items["spaces"][1], "spaces", "a mapping of space name to roles"
            ):
                path = join("spaces", sname)
                why = name_problem(sname, "space name")
                if why:
                    self.problem(skey, path, why)
                    continue
                space = SpaceMapping(sname, self.roles(snode, path, space=True), self.loc(skey))
                folded = sname.casefold()
                if folded in seen:
                    self.problem(
                        skey, path, f"space '{sname}' is already listed at line {seen[folded].location.line}"
                    )
                    continue
                seen[folded] = space
                spaces.append(space)
        if name is None:
            return None
        return OrgMapping(
            name=name,
            ownership=ownership,
            roles=roles,
            spaces=tuple(sorted(spaces, key=lambda s: s.name)),
            location=self.loc(org_node),
            description=description,
        )

    def roles(self, node: Node, path: str, *, space: bool) -> tuple[RoleGrants, ...]:
        allowed: tuple[str, ...] = SPACE_ROLE_TYPES if space else ORG_ROLE_TYPES
        result: list[RoleGrants] = []
        for role, kn, vn in self.mapping(node, path, "a mapping of role type to grants"):
            rpath = join(path, role)
            if role not in allowed:
                if not space and role in SPACE_ROLE_TYPES:
                    self.problem(kn, rpath, f"'{role}' is a space role; put it under spaces.<space>")
                elif space and role in ORG_ROLE_TYPES:
                    self.problem(kn, rpath, f"'{role}' is an org role; put it under org_roles")
                else:
                    kind = "space" if space else "org"
                    alias = ROLE_ALIASES.get(_squash(role))
                    if alias is not None and alias not in allowed:
                        where = "org_roles" if alias in ORG_ROLE_TYPES else "spaces.<space>"
                        hint = f" (did you mean '{alias}'? it goes under {where})"
                    elif alias is not None:
                        hint = f" (did you mean '{alias}'?)"
                    else:
                        hint = did_you_mean(role, allowed)
                    self.problem(kn, rpath, f"unknown {kind} role type '{role}'{hint}")
                continue
            result.append(self.grants(cast(RoleType, role), kn, vn, rpath))
        return tuple(sorted(result, key=lambda r: r.role))

    def grants(self, role: RoleType, key_node: Node, node: Node, path: str) -> RoleGrants:
        groups: list[GroupGrant] = []
        users: list[UserGrant] = []
        hint = " (use {} for an explicitly empty role)" if kind_name(node) == "null" else ""
        if not isinstance(node, MappingNode):
            self.problem(
                node, path, f"expected a mapping with 'groups' and/or 'users', got {kind_name(node)}{hint}"
            )
            return RoleGrants(role, (), (), self.loc(key_node))
        for key, kn, vn in self.mapping(node, path):
            kpath = join(path, key)
            if key == "groups":
                seen: dict[str, int] = {}
                for i, entry in enumerate(self.sequence(vn, kpath, " (write groups: [name, ...])")):
                    g = self.group(entry, join(kpath, i))
                    if g is None:
                        continue
                    ident = f"{g.source or ''}:{g.group}"
                    if ident in seen:
                        self.problem(
                            entry,
                            join(kpath, i),
                            f"group '{g.group}' is listed twice (first at line {seen[ident]})",
                        )
                        continue
                    seen[ident] = g.location.line
                    groups.append(g)
            elif key == "users":
                useen: dict[tuple[str | None, str], int] = {}
                for i, entry in enumerate(self.sequence(vn, kpath, " (write users: [name, ...])")):
                    u = self.user(entry, join(kpath, i))
                    if u is None:
                        continue
                    uident = (u.origin, u.username)
                    if uident in useen:
                        self.problem(
                            entry,
                            join(kpath, i),
                            f"user '{u.username}' is listed twice (first at line {useen[uident]})",
                        )
                        continue
                    useen[uident] = u.location.line
                    users.append(u)
            else:
                self.unknown_key(key, kn, path, GRANT_KEYS)
        return RoleGrants(role, tuple(groups), tuple(users), self.loc(key_node))

    def group(self, node: Node, path: str) -> GroupGrant | None:
        if kind_name(node) == "mapping":
            fields = {k: (kn, vn) for k, kn, vn in self.mapping(node, path)}
            if self.key_value_slip(node, fields, path, GROUP_KEYS):
                return None
            for key, (kn, _) in fields.items():
                if key not in GROUP_KEYS:
                    self.unknown_key(key, kn, path, GROUP_KEYS)
            if "group" not in fields:
                self.problem(node, path, "missing required key 'group'")
                return None
            name = self.string(fields["group"][1], join(path, "group"), "group name")
            source: str | None = None
            if "source" in fields:
                source = self.string(fields["source"][1], join(path, "source"), "source name")
                if source is not None and not self.check_source(
                    source, fields["source"][1], join(path, "source")
                ):
                    return None
            until = self.date(fields["until"][1], join(path, "until")) if "until" in fields else None
            if (
                name is None
                or ("until" in fields and until is None)
                or ("source" in fields and source is None)
            ):
                return None
            return GroupGrant(name, source, until, self.loc(node))
        text = self.string(node, path, "group name")
        if text is None:
            return None
        prefix, sep, rest = text.partition(":")
        if not sep:
            return GroupGrant(text, None, None, self.loc(node))
        if not SOURCE_NAME_RE.fullmatch(prefix):
            self.problem(
                node,
                path,
                f"'{prefix}' in '{text}' is not a source name (lowercase letters, digits, "
                "'-', '_'); for a group name containing ':' write {group: ..., source: ...}",
            )
            return None
        if not self.check_source(prefix, node, path):
            return None
        if not rest.strip():
            self.problem(node, path, f"empty group name after source '{prefix}:'")
            return None
        if rest != rest.strip():
            self.problem(node, path, f"group name '{rest}' has leading or trailing whitespace")
            return None
        return GroupGrant(rest, prefix, None, self.loc(node))

    def key_value_slip(
        self, node: Node, fields: dict[str, tuple[ScalarNode, Node]], path: str, allowed: Sequence[str]
    ) -> bool:
        """Catch ``[okta: payments]`` / ``- okta: x``: YAML reads ``a: b`` as a one-pair mapping."""
        if len(fields) != 1:
            return False
        [(key, (_, value))] = fields.items()
        if key in allowed or not isinstance(value, ScalarNode) or did_you_mean(key, allowed):
            return False
        mark = node.start_mark
        if mark.buffer is not None and mark.buffer[mark.pointer : mark.pointer + 1] == "{":
            return False  # an explicit {...} object: report its keys normally
        if not value.value:
            message = f"'{key}:' is read by YAML as a key without a value, not a name; quote the name"
        else:
            message = (
                f"'{key}: {value.value}' is read by YAML as a key/value pair, not a name; "
                f"write '{key}:{value.value}' (no space after ':') or quote it"
            )
        self.problem(node, path, message)
        return True

    def check_source(self, source: str, node: Node, path: str) -> bool:
        if not SOURCE_NAME_RE.fullmatch(source):
            self.problem(node, path, f"'{source}' is not a source name (lowercase letters, digits, '-', '_')")
            return False
        if self.known_sources is not None and source not in self.known_sources:
            configured = ", ".join(self.known_sources) or "none"
            self.problem(
                node,
                path,
                f"unknown identity source '{source}'{did_you_mean(source, self.known_sources)}"
                f" (configured: {configured})",
            )
            return False
        return True

    def user(self, node: Node, path: str) -> UserGrant | None:
        if kind_name(node) == "mapping":
            fields = {k: (kn, vn) for k, kn, vn in self.mapping(node, path)}
            if self.key_value_slip(node, fields, path, USER_KEYS):
                return None
            for key, (kn, _) in fields.items():
                if key not in USER_KEYS:
                    self.unknown_key(key, kn, path, USER_KEYS)
            if "user" not in fields:
                self.problem(node, path, "missing required key 'user'")
                return None
            name = self.username(fields["user"][1], join(path, "user"))
            origin: str | None = None
            if "origin" in fields:
                origin = self.string(fields["origin"][1], join(path, "origin"), "origin")
                if origin is not None and ("/" in origin or any(c.isspace() for c in origin)):
                    self.problem(
                        fields["origin"][1],
                        join(path, "origin"),
                        f"origin '{origin}' must not contain '/' or whitespace",
                    )
                    origin = None
            until = self.date(fields["until"][1], join(path, "until")) if "until" in fields else None
            if (
                name is None
                or ("until" in fields and until is None)
                or ("origin" in fields and origin is None)
            ):
                return None
            return UserGrant(name, origin, until, self.loc(node))
        name = self.username(node, path)
        return None if name is None else UserGrant(name, None, None, self.loc(node))

    def username(self, node: Node, path: str) -> str | None:
        text = self.string(node, path, "user name")
        if text is None:
            return None
        try:
            return normalise_username(text)
        except ValueError as exc:  # pragma: no cover - string() already rejects what this would
            self.problem(node, path, str(exc))
            return None
