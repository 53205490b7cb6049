"""A corpus of bad mapping, directory and config inputs.

Each case changes a copy of the example inputs; preview must fail with a
specific message (file and line where there is one) and write nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GOOD_PLATFORM = """\
org: platform
ownership: additive
org_roles:
  organization_manager: {groups: [platform-leads]}
spaces:
  tools:
    space_developer: {groups: [platform-engineers]}
"""


@dataclass(frozen=True)
class Case:
    name: str
    # writes files into (mappings dir, directory file); returns config overrides
    apply: Callable[[Path, Path], dict[str, str]]
    expect: tuple[str, ...]  # substrings the preview output must contain


def mapping(text: str | bytes, file: str = "platform.yaml") -> Callable[[Path, Path], dict[str, str]]:
    def apply(mappings: Path, _directory: Path) -> dict[str, str]:
        target = mappings / file
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text, encoding="utf-8")
        return {}

    return apply


def directory(text: str) -> Callable[[Path, Path], dict[str, str]]:
    def apply(_mappings: Path, directory_file: Path) -> dict[str, str]:
        directory_file.write_text(text, encoding="utf-8")
        return {}

    return apply


def config(**values: str) -> Callable[[Path, Path], dict[str, str]]:
    def apply(_mappings: Path, _directory: Path) -> dict[str, str]:
        return dict(values)

    return apply


def platform_with(line_from: str, line_to: str) -> str:
    assert line_from in GOOD_PLATFORM
    return GOOD_PLATFORM.replace(line_from, line_to)


P = "mappings/platform.yaml"

CASES: list[Case] = [
    Case("yaml syntax", mapping("org: platform\nspaces: [tools\n"), (f"{P}:3:", "YAML")),
    Case("tab indentation", mapping("org: platform\nspaces:\n\ttools: {}\n"), (f"{P}:3:",)),
    Case("org is a list", mapping("org: [platform]\n"), (f"{P}:1:", "org")),
    Case(
        "unknown top-level key", mapping(GOOD_PLATFORM + "owner: bob\n"), (f"{P}:8:", "unknown key 'owner'")
    ),
    Case(
        "unknown org role",
        mapping(platform_with("organization_manager:", "organization_admin:")),
        (f"{P}:4:", "organization_admin"),
    ),
    Case(
        "unknown space role",
        mapping(platform_with("space_developer:", "space_develper:")),
        (f"{P}:7:", "did you mean 'space_developer'"),
    ),
    Case(
        "org role under a space",
        mapping(platform_with("space_developer:", "organization_auditor:")),
        (f"{P}:7:", "organization_auditor"),
    ),
    Case(
        "space role under org_roles",
        mapping(platform_with("organization_manager:", "space_manager:")),
        (f"{P}:4:", "space_manager"),
    ),
    Case(
        "duplicate key",
        mapping(
            GOOD_PLATFORM.replace("ownership: additive\n", "ownership: additive\nownership: authoritative\n")
        ),
        (f"{P}:3:", "duplicate key 'ownership'"),
    ),
    Case(
        "duplicate org across files",
        mapping(GOOD_PLATFORM, file="platform-copy.yaml"),
        (f"{P}:", "org 'platform' is already defined in mappings/platform-copy.yaml:1"),
    ),
    Case(
        "duplicate space",
        mapping(GOOD_PLATFORM + "  tools:\n    space_manager: {groups: [platform-leads]}\n"),
        (f"{P}:8:", "duplicate key 'tools'"),
    ),
    Case("empty file", mapping(""), (P, "empty")),
    Case("not a mapping", mapping("- org: platform\n"), (f"{P}:1:",)),
    Case(
        "bad ownership", mapping(platform_with("ownership: additive", "ownership: exclusive")), (f"{P}:2:",)
    ),
    Case(
        "groups not a list",
        mapping(platform_with("{groups: [platform-engineers]}", "{groups: platform-engineers}")),
        (f"{P}:7:",),
    ),
    Case("empty group name", mapping(platform_with("[platform-engineers]", '[""]')), (f"{P}:7:",)),
    Case(
        "control character in group",
        mapping(platform_with("[platform-engineers]", '["platform\\u0007engineers"]')),
        (f"{P}:7:", "control"),
    ),
    Case(
        "newline in group",
        mapping(platform_with("[platform-engineers]", '["platform\\nengineers"]')),
        (f"{P}:7:",),
    ),
    Case(
        "user entry is a number",
        mapping(platform_with("{groups: [platform-engineers]}", "{users: [42]}")),
        (f"{P}:7:",),
    ),
    Case(
        "until is not a date",
        mapping(platform_with("[platform-engineers]", "[{group: platform-engineers, until: someday}]")),
        (f"{P}:7:", "until"),
    ),
    Case(
        "unknown source prefix",
        mapping(platform_with("[platform-engineers]", "[okta:platform-engineers]")),
        (f"{P}:7:", "okta"),
    ),
    Case("10 MB file", mapping("# " + "x" * (10 * 1024 * 1024) + "\n"), (P, "bytes")),
    Case("non-UTF-8", mapping(b"org: plat\xffform\n"), (P, "UTF-8")),
    Case("python tag", mapping("org: !!python/object:os.system platform\n"), (f"{P}:1:",)),
    Case(
        "org missing in CF",
        mapping(GOOD_PLATFORM.replace("org: platform", "org: platfrom")),
        (f"{P}:1", "organization 'platfrom' does not exist"),
    ),
    Case(
        "space missing in CF",
        mapping(GOOD_PLATFORM.replace("  tools:", "  toolz:")),
        (f"{P}:6", "space 'toolz' does not exist"),
    ),
    Case(
        "group missing in the directory",
        mapping(platform_with("[platform-engineers]", "[platform-engineerz]")),
        ("platform-engineerz",),
    ),
    Case(
        "directory yaml syntax",
        directory("users:\n  - {username: a@corp.com, status: ACTIVE\n"),
        ("directory.yaml:",),
    ),
    Case(
        "directory group with unknown user",
        directory(
            "users:\n  - {username: a@corp.com, status: ACTIVE}\n"
            "groups:\n  platform-leads: [a@corp.com, ghost@corp.com]\n"
        ),
        ("directory.yaml:4:", "ghost@corp.com"),
    ),
    Case(
        "config: bad deprovision policy", config(deprovisionPolicy="nuke"), ("cf-access:deprovisionPolicy",)
    ),
    Case(
        # Pulumi validates the typed schema in Pulumi.yaml before the program runs.
        "config: bad concurrency",
        config(concurrency="lots"),
        ("'concurrency' must be of type 'integer'",),
    ),
    Case(
        "config: bad api url",
        config(cfApiUrl="api.example.com"),
        ("cf-access:cfApiUrl must be an http(s) URL",),
    ),
    Case(
        "config: bad username attribute",
        config(usernameAttribute="upn"),
        ("cf-access:usernameAttribute must be one of",),
    ),
    Case(
        "config: missing mappings folder",
        config(mappingsDir="/nonexistent/mappings"),
        ("/nonexistent/mappings",),
    ),
]
