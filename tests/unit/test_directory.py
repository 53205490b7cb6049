# ruff: noqa: E501  (expected messages are kept on one line so they read like the real output)
"""The YAML directory identity source and the identity base helpers."""

from __future__ import annotations

import textwrap
from collections.abc import Collection
from pathlib import Path

import pytest

from components.identity.base import (
    IdentityReadError,
    IdentitySnapshot,
    IdentitySource,
    Person,
    normalise_username,
    qualify_group_ref,
    read_snapshot,
    split_group_ref,
)
from components.identity.directory import DirectoryError, DirectorySource, parse_directory
from components.model import UserRef

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "directory" / "example.yaml"
F = "directory/test.yaml"


def problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(DirectoryError) as info:
        parse_directory(textwrap.dedent(text), F, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


# ------------------------------------------------------------ normalise_username


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice@Corp.com", "alice@corp.com"),
        ("  bob@corp.com\t", "bob@corp.com"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
    ],
)
def test_normalise_username(raw: str, expected: str) -> None:
    assert normalise_username(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "a\nb", "a\u200bb", "a\x00b"])
def test_normalise_username_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_username(raw)


def test_group_ref_helpers() -> None:
    assert split_group_ref("okta:payments-dev", "directory") == ("okta", "payments-dev")
    assert split_group_ref("payments-dev", "directory") == ("directory", "payments-dev")
    assert split_group_ref("okta:App: X", "directory") == ("okta", "App: X")
    assert qualify_group_ref("x", "directory") == "directory:x"


# ------------------------------------------------------------ the example directory


def test_example_directory_reads() -> None:
    src = DirectorySource(EXAMPLE, origin="corp-sso")
    assert isinstance(src, IdentitySource)
    directory = src.load()
    assert len(directory.people) == 13
    inactive = [p.username for p in directory.people.values() if not p.active]
    assert inactive == ["bob@corp.com"]
    groups = src.read_groups(["payments-dev", "platform-engineers"])
    assert [p.username for p in groups["payments-dev"]] == [
        "alice@corp.com",
        "bob@corp.com",
        "carol@corp.com",
        "dave@corp.com",
    ]
    alice = groups["payments-dev"][0]
    assert alice == Person(
        username="alice@corp.com",
        origin="corp-sso",
        active=True,
        source="directory",
        external_id="00u-alice",
        email="alice@corp.com",
        display_name="Alice Andersen",
    )
    assert alice.ref == UserRef("corp-sso", "alice@corp.com")
    # someone in several groups
    in_groups = [g for g, members in directory.groups.items() if "grace@corp.com" in members]
    assert len(in_groups) >= 2
    assert "admin@corp.com" in directory.people


def test_status_mapping_and_defaults() -> None:
    d = parse_directory(
        """\
        users:
          - {username: A@X.com, status: active}
          - {username: b@x.com, status: DEPROVISIONED}
          - {username: c@x.com, status: LOCKED_OUT}
          - {username: d@x.com, status: SUSPENDED}
        groups:
          g: [a@x.com, B@X.COM, c@x.com, d@x.com]
        """,
        F,
        origin="okta-saml",
        source="dir2",
    )
    assert {u: p.active for u, p in d.people.items()} == {
        "a@x.com": True,
        "b@x.com": False,
        "c@x.com": False,
        "d@x.com": False,
    }
    a = d.people["a@x.com"]
    assert (a.external_id, a.email, a.display_name, a.origin, a.source) == (
        "a@x.com",
        None,
        None,
        "okta-saml",
        "dir2",
    )
    assert d.groups["g"] == ("a@x.com", "b@x.com", "c@x.com", "d@x.com")


def test_email_as_username_attribute() -> None:
    d = parse_directory(
        """\
        users:
          - {username: 00u1, email: Alice@Corp.com, status: ACTIVE}
        groups:
          g: [00u1]
        """,
        F,
        username_attribute="email",
    )
    assert list(d.people) == ["alice@corp.com"]
    assert d.groups["g"] == ("alice@corp.com",)
    assert d.people["alice@corp.com"].external_id == "00u1"


def test_email_attribute_requires_email() -> None:
    assert problems(
        "users:\n  - {username: a, status: ACTIVE}\ngroups: {}\n", username_attribute="email"
    ) == [f"{F}:2:5: users[0]: missing 'email' (this source uses email as the CF username)"]


def test_empty_group_is_allowed_and_returned() -> None:
    d = parse_directory("users: []\ngroups:\n  empty: []\n", F)
    assert d.groups == {"empty": ()}


BAD = [
    (
        "unknown member",
        "users:\n  - {username: alice@corp.com, status: ACTIVE}\ngroups:\n  g: [alise@corp.com]\n",
        [f"{F}:4:7: groups.g[0]: unknown user 'alise@corp.com' (did you mean 'alice@corp.com'?)"],
    ),
    (
        "duplicate user, case-insensitive",
        "users:\n  - {username: a@x.com, status: ACTIVE}\n  - {username: A@X.com, status: ACTIVE}\ngroups: {}\n",
        [f"{F}:3:5: users[1].username: duplicate user 'a@x.com' (first at line 2)"],
    ),
    (
        "missing status",
        "users:\n  - {username: a}\ngroups: {}\n",
        [f"{F}:2:5: users[0]: missing required key 'status'"],
    ),
    (
        "unknown user key",
        "users:\n  - {username: a, status: ACTIVE, mail: x}\ngroups: {}\n",
        [f"{F}:2:35: users[0].mail: unknown key 'mail' (did you mean 'email'?)"],
    ),
    ("missing groups", "users: []\n", [f"{F}:1:1: groups: missing required key 'groups'"]),
    ("unknown top key", "users: []\ngroups: {}\npeople: []\n", [f"{F}:3:1: people: unknown key 'people'"]),
    (
        "member listed twice",
        "users:\n  - {username: a, status: ACTIVE}\ngroups:\n  g: [a, A]\n",
        [f"{F}:4:10: groups.g[1]: user 'A' is listed twice in group 'g'"],
    ),
    (
        "duplicate group key",
        "users: []\ngroups:\n  g: []\n  g: []\n",
        [f"{F}:4:3: groups.g: duplicate key 'g' (first defined at line 3)"],
    ),
    (
        "group is not a list",
        "users: []\ngroups:\n  g: a\n",
        [f"{F}:3:6: groups.g: expected a list, got string"],
    ),
    (
        "username not a string",
        "users:\n  - {username: 12, status: ACTIVE}\ngroups: {}\n",
        [f"{F}:2:16: users[0].username: expected a string, got integer"],
    ),
    (
        "newline in username",
        'users:\n  - {username: "a\\nb", status: ACTIVE}\ngroups: {}\n',
        [f"{F}:2:16: users[0].username: username 'a\\nb' contains a line break"],
    ),
    ("users is a mapping", "users: {a: 1}\ngroups: {}\n", [f"{F}:1:8: users: expected a list, got mapping"]),
    ("not a mapping", "[1]\n", [f"{F}:1:1: expected a mapping with 'users' and 'groups', got list"]),
    ("empty", "", [f"{F}: file is empty (no YAML document)"]),
    (
        "syntax",
        "users: [\n",
        [
            f"{F}:2:1: YAML syntax error: while parsing a flow node: expected the node content, but found '<stream end>'"
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BAD], ids=[n for n, _, _ in BAD])
def test_bad_directory(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_read_groups_missing_group_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "dir.yaml"
    path.write_text("users: []\ngroups:\n  payments-dev: []\n")
    src = DirectorySource(path)
    with pytest.raises(IdentityReadError) as info:
        src.read_groups(["payments-dev", "payments-devs"])
    assert info.value.source == "directory"
    assert info.value.group == "payments-devs"
    assert "group not found" in info.value.message and "did you mean 'payments-dev'?" in info.value.message


def test_read_groups_invalid_file_raises_identity_read_error(tmp_path: Path) -> None:
    path = tmp_path / "dir.yaml"
    path.write_text("users:\n  - {username: a}\ngroups: {}\n")
    with pytest.raises(IdentityReadError) as info:
        DirectorySource(path).read_groups(["g"])
    assert isinstance(info.value, DirectoryError)
    assert "users[0]: missing required key 'status'" in str(info.value)


def test_missing_file_and_size_limit(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match="cannot read file"):
        DirectorySource(tmp_path / "nope.yaml").read_groups(["g"])
    big = tmp_path / "big.yaml"
    big.write_text("users: []\ngroups: {}\n" + "#" * 500)
    with pytest.raises(DirectoryError, match="over the 100 byte limit"):
        DirectorySource(big, max_file_bytes=100).read_groups(["g"])


def test_bad_username_attribute() -> None:
    with pytest.raises(ValueError, match="username_attribute"):
        DirectorySource("x.yaml", username_attribute="upn")  # type: ignore[arg-type]


# ------------------------------------------------------------ read_snapshot


class FakeSource:
    def __init__(
        self, name: str, origin: str, groups: dict[str, tuple[Person, ...]], fail: bool = False
    ) -> None:
        self.name = name
        self.origin = origin
        self.groups = groups
        self.fail = fail
        self.calls: list[list[str]] = []

    def read_groups(self, names: Collection[str]) -> dict[str, tuple[Person, ...]]:
        self.calls.append(list(names))
        if self.fail:
            raise RuntimeError("HTTP 503 from IdP")
        return {n: self.groups[n] for n in names if n in self.groups}


def person(name: str, origin: str = "okta", active: bool = True) -> Person:
    return Person(name, origin, active, "okta", f"id-{name}")


def test_read_snapshot_qualifies_and_batches_per_source() -> None:
    okta = FakeSource("okta", "okta", {"a": (person("x"),), "b": ()})
    directory = FakeSource("directory", "uaa", {"c": (person("y", "uaa"),)})
    snap = read_snapshot(
        {"okta": okta, "directory": directory}, ["okta:a", "okta:b", "c", "directory:c"], "directory"
    )
    assert dict(snap.groups) == {"okta:a": (person("x"),), "okta:b": (), "directory:c": (person("y", "uaa"),)}
    assert okta.calls == [["a", "b"]]
    assert directory.calls == [["c"]]
    assert snap.members("okta:b") == ()
    assert [g.ref for g in snap.group_members()] == ["directory:c", "okta:a", "okta:b"]


def test_snapshot_members_of_unread_group_raises() -> None:
    snap = IdentitySnapshot({"okta:a": ()})
    with pytest.raises(KeyError, match="never read"):
        snap.members("okta:zzz")


def test_read_snapshot_unknown_source_lists_configured() -> None:
    okta = FakeSource("okta", "okta", {})
    with pytest.raises(IdentityReadError) as info:
        read_snapshot({"okta": okta}, ["entra:x"], "okta")
    assert str(info.value) == "identity source entra:x: unknown identity source 'entra' (configured: okta)"


def test_read_snapshot_missing_group_in_answer_fails_closed() -> None:
    okta = FakeSource("okta", "okta", {"a": ()})
    with pytest.raises(IdentityReadError) as info:
        read_snapshot({"okta": okta}, ["okta:a", "okta:gone"], "okta")
    assert (info.value.source, info.value.group) == ("okta", "gone")


def test_read_snapshot_wraps_source_failure() -> None:
    okta = FakeSource("okta", "okta", {}, fail=True)
    with pytest.raises(IdentityReadError, match="read failed: RuntimeError: HTTP 503 from IdP"):
        read_snapshot({"okta": okta}, ["okta:a"], "okta")


def test_read_snapshot_default_source_must_be_configured() -> None:
    with pytest.raises(IdentityReadError, match="default source is not configured"):
        read_snapshot({"okta": FakeSource("okta", "okta", {})}, [], "directory")


def test_read_snapshot_name_mismatch() -> None:
    with pytest.raises(IdentityReadError, match="calls itself"):
        read_snapshot({"okta": FakeSource("entra", "x", {})}, [], "okta")


def test_read_snapshot_with_directory_example() -> None:
    src = DirectorySource(EXAMPLE, origin="corp-sso")
    snap = read_snapshot({"directory": src}, ["payments-leads", "directory:data-analysts"], "directory")
    assert sorted(snap.groups) == ["directory:data-analysts", "directory:payments-leads"]
    assert [p.username for p in snap.members("directory:payments-leads")] == ["alice@corp.com"]


def test_fast_composer_gives_the_same_nodes_and_lines_and_falls_back_for_errors() -> None:
    from components.yamlsource import parse_yaml

    text = b"users:\n  - {username: a@corp.com, status: ACTIVE}\n  - username: b@corp.com\ngroups:\n  g: [a@corp.com]\n"

    def shape(node: object) -> object:
        from yaml.nodes import MappingNode, SequenceNode

        mark = node.start_mark  # type: ignore[attr-defined]
        here = (type(node).__name__, node.tag, mark.line, mark.column)  # type: ignore[attr-defined]
        if isinstance(node, MappingNode):
            return (here, [(shape(k), shape(v)) for k, v in node.value])
        if isinstance(node, SequenceNode):
            return (here, [shape(v) for v in node.value])
        return (here, node.value)  # type: ignore[attr-defined]

    fast, _ = parse_yaml(text, "d.yaml", fast=True)
    slow, _ = parse_yaml(text, "d.yaml")
    assert fast is not None and slow is not None
    assert type(fast.start_mark) is not type(slow.start_mark), "the fast path really is libyaml"
    assert shape(fast) == shape(slow)
    broken = b"users:\n  - {username: a\n"
    assert parse_yaml(broken, "d.yaml", fast=True)[1] == parse_yaml(broken, "d.yaml")[1] != []
