# ruff: noqa: E501  (expected messages are kept on one line so they read like the real output)
"""Mappings loader: every bad input names file, line, column, key and a clear message."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from components.mappings import (
    GroupGrant,
    MappingError,
    Mappings,
    UserGrant,
    load_mappings,
    parse_mappings,
)
from components.yamlsource import Problem

F = "mappings/payments.yaml"
REPO = Path(__file__).resolve().parents[2]


def parse(text: str, name: str = F, **kwargs: object) -> Mappings:
    return parse_mappings([(name, textwrap.dedent(text))], **kwargs)  # type: ignore[arg-type]


def errors(text: str | bytes, name: str = F, **kwargs: object) -> list[str]:
    content = text if isinstance(text, bytes) else textwrap.dedent(text)
    with pytest.raises(MappingError) as info:
        parse_mappings([(name, content)], **kwargs)  # type: ignore[arg-type]
    return str(info.value).splitlines()


# ---------------------------------------------------------------- good input


def test_full_example_parses_with_positions() -> None:
    m = parse(
        """\
        org: payments
        ownership: authoritative
        org_roles:
          organization_manager:
            groups: [okta:payments-leads]
            users: [Alice@Corp.com]
          organization_auditor:
            groups: [security-auditors]
        spaces:
          dev:
            space_developer: {groups: [payments-dev]}
            space_manager: {users: [{user: bob@corp.com, origin: sap.ids, until: 2026-12-31}]}
          prod:
            space_developer: {groups: [{group: "App: Payments", source: entra, until: "2027-01-15"}]}
        """
    )
    [org] = m.orgs
    assert org.name == "payments"
    assert org.ownership == "authoritative"
    assert org.location.line == 1
    mgr = org.role("organization_manager")
    assert mgr is not None
    assert mgr.groups == (GroupGrant("payments-leads", "okta", None, mgr.groups[0].location),)
    assert (mgr.groups[0].location.line, mgr.groups[0].location.column) == (5, 14)
    assert str(mgr.groups[0].location) == "mappings/payments.yaml:5"
    assert [u.username for u in mgr.users] == ["alice@corp.com"]  # normalised
    assert mgr.users[0].origin is None
    dev = org.space("dev")
    assert dev is not None
    sm = dev.role("space_manager")
    assert sm is not None
    assert sm.users == (UserGrant("bob@corp.com", "sap.ids", dt.date(2026, 12, 31), sm.users[0].location),)
    prod = org.space("prod")
    assert prod is not None
    pd = prod.role("space_developer")
    assert pd is not None
    assert pd.groups[0].group == "App: Payments"
    assert pd.groups[0].ref("directory") == "entra:App: Payments"
    assert pd.groups[0].until == dt.date(2027, 1, 15)
    assert m.group_refs("directory") == {
        "okta:payments-leads",
        "directory:security-auditors",
        "directory:payments-dev",
        "entra:App: Payments",
    }
    assert m.sources() == {"okta", "entra"}


def test_defaults_and_minimal_file() -> None:
    m = parse("org: data\n")
    [org] = m.orgs
    assert org.ownership == "additive"
    assert org.roles == () and org.spaces == ()


def test_empty_role_and_empty_space_are_allowed() -> None:
    m = parse(
        """\
        org: payments
        ownership: authoritative
        org_roles:
          organization_billing_manager: {}
        spaces:
          dev: {}
          prod:
            space_auditor: {groups: [], users: []}
        """
    )
    [org] = m.orgs
    billing = org.role("organization_billing_manager")
    assert billing is not None and billing.groups == () and billing.users == ()
    assert [s.name for s in org.spaces] == ["dev", "prod"]


def test_orgs_sorted_across_files() -> None:
    m = parse_mappings([("b.yaml", "org: zeta\n"), ("a.yaml", "org: alpha\n"), ("c.yaml", "org: mid\n")])
    assert [o.name for o in m.orgs] == ["alpha", "mid", "zeta"]
    assert m.org("mid") is not None and m.org("mid").file == "c.yaml"  # type: ignore[union-attr]


def test_bom_is_accepted() -> None:
    m = parse_mappings([(F, b"\xef\xbb\xbforg: payments\n")])
    assert m.orgs[0].name == "payments"


def test_group_name_with_colon_needs_object_form_or_prefix() -> None:
    m = parse("org: o\norg_roles:\n  organization_user: {groups: ['okta:App: Team']}\n")
    g = m.orgs[0].roles[0].groups[0]
    assert (g.source, g.group) == ("okta", "App: Team")


def test_known_sources_accepts_configured_prefix() -> None:
    m = parse(
        "org: o\norg_roles:\n  organization_user: {groups: [okta:x]}\n", known_sources=["okta", "directory"]
    )
    assert m.group_refs("directory") == {"okta:x"}


def test_repository_examples_load() -> None:
    m = load_mappings(REPO / "mappings", known_sources=["directory"])
    assert [o.name for o in m.orgs] == ["data", "payments", "platform"]
    payments = m.org("payments")
    assert payments is not None and payments.ownership == "authoritative"
    assert [s.name for s in payments.spaces] == ["dev", "prod"]
    platform = m.org("platform")
    assert platform is not None and platform.ownership == "additive"
    assert [s.name for s in platform.spaces] == ["sandbox", "tools"]
    data = m.org("data")
    assert data is not None and [s.name for s in data.spaces] == ["analytics"]


# ---------------------------------------------------------------- bad input: one problem each

BAD: list[tuple[str, str, str]] = [
    (
        "unknown space role type with suggestion",
        """\
        org: payments
        spaces:
          dev:
            space_develper: {groups: [payments-dev]}
        """,
        f"{F}:4:5: spaces.dev.space_develper: unknown space role type 'space_develper' "
        "(did you mean 'space_developer'?)",
    ),
    (
        "unknown top-level key with suggestion",
        "org: payments\nownrship: authoritative\n",
        f"{F}:2:1: ownrship: unknown key 'ownrship' (did you mean 'ownership'?)",
    ),
    (
        "org role under a space",
        "org: payments\nspaces:\n  dev:\n    organization_manager: {groups: [x]}\n",
        f"{F}:4:5: spaces.dev.organization_manager: 'organization_manager' is an org role; put it under org_roles",
    ),
    (
        "space role under org_roles",
        "org: payments\norg_roles:\n  space_developer: {groups: [x]}\n",
        f"{F}:3:3: org_roles.space_developer: 'space_developer' is a space role; put it under spaces.<space>",
    ),
    (
        "unknown org role with cf-cli style name",
        "org: payments\norg_roles:\n  OrgManager: {groups: [x]}\n",
        f"{F}:3:3: org_roles.OrgManager: unknown org role type 'OrgManager' (did you mean 'organization_manager'?)",
    ),
    (
        "cf-mgmt style dashed role name",
        "org: p\nspaces:\n  dev:\n    space-developer: {groups: [x]}\n",
        f"{F}:4:5: spaces.dev.space-developer: unknown space role type 'space-developer' "
        "(did you mean 'space_developer'?)",
    ),
    (
        "duplicate key in a mapping",
        "org: payments\nspaces:\n  dev:\n    space_developer: {groups: [a]}\n    space_developer: {groups: [b]}\n",
        f"{F}:5:5: spaces.dev.space_developer: duplicate key 'space_developer' (first defined at line 4)",
    ),
    (
        "duplicate top-level key",
        "org: payments\norg: billing\n",
        f"{F}:2:1: org: duplicate key 'org' (first defined at line 1)",
    ),
    (
        "duplicate space (case-insensitive)",
        "org: p\nspaces:\n  dev: {}\n  Dev: {}\n",
        f"{F}:4:3: spaces.Dev: space 'Dev' is already listed at line 3",
    ),
    (
        "missing org",
        "ownership: additive\n",
        f"{F}:1:1: org: missing required key 'org' (the CF org name)",
    ),
    (
        "org is not a string",
        "org: 42\n",
        f"{F}:1:6: org: expected a string, got integer",
    ),
    (
        "org name empty",
        "org: ''\n",
        f"{F}:1:6: org: empty org name",
    ),
    (
        "unknown ownership",
        "org: p\nownership: authoritive\n",
        f"{F}:2:12: ownership: unknown ownership 'authoritive', expected 'additive' or 'authoritative' "
        "(did you mean 'authoritative'?)",
    ),
    (
        "ownership of wrong type",
        "org: p\nownership: true\n",
        f"{F}:2:12: ownership: expected 'additive' or 'authoritative', got boolean",
    ),
    (
        "groups is a string, not a list",
        "org: p\norg_roles:\n  organization_user:\n    groups: payments-dev\n",
        f"{F}:4:13: org_roles.organization_user.groups: expected a list, got string (write groups: [name, ...])",
    ),
    (
        "unknown key in grants",
        "org: p\norg_roles:\n  organization_user:\n    group: [x]\n",
        f"{F}:4:5: org_roles.organization_user.group: unknown key 'group' (did you mean 'groups'?)",
    ),
    (
        "null role",
        "org: p\nspaces:\n  dev:\n    space_developer:\n",
        f"{F}:4:21: spaces.dev.space_developer: expected a mapping with 'groups' and/or 'users', got null "
        "(use {} for an explicitly empty role)",
    ),
    (
        "empty group name",
        "org: p\norg_roles:\n  organization_user: {groups: ['']}\n",
        f"{F}:3:32: org_roles.organization_user.groups[0]: empty group name",
    ),
    (
        "empty group name after prefix",
        "org: p\norg_roles:\n  organization_user: {groups: ['okta:']}\n",
        f"{F}:3:32: org_roles.organization_user.groups[0]: empty group name after source 'okta:'",
    ),
    (
        "empty user name",
        "org: p\norg_roles:\n  organization_user: {users: ['  ']}\n",
        f"{F}:3:31: org_roles.organization_user.users[0]: empty user name",
    ),
    (
        "newline in group name",
        'org: p\norg_roles:\n  organization_user: {groups: ["pay\\nments"]}\n',
        f"{F}:3:32: org_roles.organization_user.groups[0]: group name 'pay\\nments' contains a line break",
    ),
    (
        "control character in user name",
        'org: p\norg_roles:\n  organization_user: {users: ["al\\tice@corp.com"]}\n',
        f"{F}:3:31: org_roles.organization_user.users[0]: user name 'al\\tice@corp.com' contains a control "
        "or invisible character (U+0009)",
    ),
    (
        "zero-width space in space name",
        'org: p\nspaces:\n  "de\\u200bv": {}\n',
        f"{F}:3:3: spaces.de\u200bv: space name 'de\\u200bv' contains a control or invisible character (U+200B)",
    ),
    (
        "trailing whitespace in group name",
        "org: p\norg_roles:\n  organization_user: {groups: ['payments-dev ']}\n",
        f"{F}:3:32: org_roles.organization_user.groups[0]: group name 'payments-dev ' has leading or "
        "trailing whitespace",
    ),
    (
        "group entry of wrong type",
        "org: p\norg_roles:\n  organization_user: {groups: [123]}\n",
        f"{F}:3:32: org_roles.organization_user.groups[0]: expected a string, got integer",
    ),
    (
        "invalid source prefix",
        "org: p\norg_roles:\n  organization_user: {groups: ['App Team: x']}\n",
        f"{F}:3:32: org_roles.organization_user.groups[0]: 'App Team' in 'App Team: x' is not a source name "
        "(lowercase letters, digits, '-', '_'); for a group name containing ':' write {group: ..., source: ...}",
    ),
    (
        "duplicate group in one role",
        "org: p\norg_roles:\n  organization_user:\n    groups:\n      - a\n      - a\n",
        f"{F}:6:9: org_roles.organization_user.groups[1]: group 'a' is listed twice (first at line 5)",
    ),
    (
        "duplicate user after normalisation",
        "org: p\norg_roles:\n  organization_user:\n    users:\n      - Alice@Corp.com\n      - alice@corp.com\n",
        f"{F}:6:9: org_roles.organization_user.users[1]: user 'alice@corp.com' is listed twice (first at line 5)",
    ),
    (
        "bad until date",
        "org: p\norg_roles:\n  organization_user: {users: [{user: a, until: 2026-02-30}]}\n",
        f"{F}:3:48: org_roles.organization_user.users[0].until: expected a date as YYYY-MM-DD, got '2026-02-30'",
    ),
    (
        "until with a time",
        "org: p\norg_roles:\n  organization_user: {users: [{user: a, until: 2026-02-03T10:00:00}]}\n",
        f"{F}:3:48: org_roles.organization_user.users[0].until: expected a date as YYYY-MM-DD, "
        "got '2026-02-03T10:00:00'",
    ),
    (
        "until of wrong type",
        "org: p\norg_roles:\n  organization_user: {groups: [{group: a, until: 20261231}]}\n",
        f"{F}:3:50: org_roles.organization_user.groups[0].until: expected a date as YYYY-MM-DD, got integer",
    ),
    (
        "user object uses 'username' instead of 'user'",
        "org: p\norg_roles:\n  organization_user:\n    users:\n      - {username: a}\n",
        f"{F}:5:9: org_roles.organization_user.users[0]: missing required key 'user'\n"
        f"{F}:5:10: org_roles.organization_user.users[0].username: unknown key 'username' (did you mean 'user'?)",
    ),
    (
        "group object missing group",
        "org: p\norg_roles:\n  organization_user:\n    groups:\n      - {source: okta}\n",
        f"{F}:5:9: org_roles.organization_user.groups[0]: missing required key 'group'",
    ),
    (
        "origin with a slash",
        "org: p\norg_roles:\n  organization_user:\n    users:\n      - {user: a, origin: x/y}\n",
        f"{F}:5:27: org_roles.organization_user.users[0].origin: origin 'x/y' must not contain '/' or whitespace",
    ),
    (
        "file is a list",
        "- org: p\n",
        f"{F}:1:1: a mapping file must be a mapping with 'org', got list",
    ),
    (
        "file is a scalar",
        "just some text\n",
        f"{F}:1:1: a mapping file must be a mapping with 'org', got string",
    ),
    (
        "empty file",
        "",
        f"{F}: file is empty (no YAML document)",
    ),
    (
        "comments only",
        "# nothing here\n\n",
        f"{F}: file is empty (no YAML document)",
    ),
    (
        "YAML syntax error",
        "org: p\nspaces:\n  dev: {space_developer: {groups: [a]}\n",
        f"{F}:4:1: YAML syntax error: while parsing a flow mapping: expected ',' or '}}', but got '<stream end>'",
    ),
    (
        "tab indentation",
        "org: p\nspaces:\n\tdev: {}\n",
        f"{F}:3:1: YAML syntax error: while scanning for the next token: found character '\\t' that cannot "
        "start any token",
    ),
    (
        "two documents",
        "org: p\n---\norg: q\n",
        f"{F}:2:1: YAML syntax error: expected a single document in the stream: but found another document",
    ),
    (
        "spaces is a list",
        "org: p\nspaces:\n  - dev\n",
        f"{F}:3:3: spaces: expected a mapping of space name to roles, got list",
    ),
    (
        "org_roles is a list",
        "org: p\norg_roles: [organization_manager]\n",
        f"{F}:2:12: org_roles: expected a mapping of role type to grants, got list",
    ),
    (
        "merge keys",
        "org: p\nspaces:\n  dev: &d {space_developer: {groups: [a]}}\n  prod:\n    <<: *d\n",
        f"{F}:5:5: spaces.prod: merge keys ('<<') are not supported; write the entries out",
    ),
    (
        "unknown key in group object",
        "org: p\norg_roles:\n  organization_user: {groups: [{group: a, untill: 2026-01-01}]}\n",
        f"{F}:3:43: org_roles.organization_user.groups[0].untill: unknown key 'untill' (did you mean 'until'?)",
    ),
    (
        "source prefix not configured",
        "org: p\norg_roles:\n  organization_user: {groups: ['otka:x']}\n",
        f"{F}:3:32: org_roles.organization_user.groups[0]: unknown identity source 'otka' (did you mean 'okta'?) "
        "(configured: directory, okta)",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BAD], ids=[n for n, _, _ in BAD])
def test_bad_input_is_located(text: str, expected: str) -> None:
    assert errors(text, known_sources=["directory", "okta"]) == expected.splitlines()


def test_non_utf8_file_names_line_and_column() -> None:
    assert errors(b"org: p\n# caf\xe9\n") == [f"{F}:2:6: file is not valid UTF-8 (byte 0xe9)"]


def test_size_limit_refused_before_parsing() -> None:
    big = b"org: p\n" + b"# " + b"x" * 200 + b"\n"
    assert errors(big, max_file_bytes=100) == [f"{F}: file is {len(big)} bytes, over the 100 byte limit"]


def test_size_limit_checked_before_reading(tmp_path: Path) -> None:
    d = tmp_path / "mappings"
    d.mkdir()
    (d / "big.yaml").write_bytes(b"org: [" * 1000)  # would be a syntax error if it were parsed
    with pytest.raises(MappingError) as info:
        load_mappings(d, max_file_bytes=1000)
    [p] = info.value.problems
    assert p.line is None and p.message == "file is 6000 bytes, over the 1000 byte limit"
    assert p.file.endswith("mappings/big.yaml")


def test_all_problems_reported_at_once_and_sorted() -> None:
    lines = errors(
        """\
        org: payments
        ownership: sometimes
        org_roles:
          organization_managr: {groups: [leads]}
        spaces:
          dev:
            space_developer: {groups: ['']}
            space_manager: {users: [alice], grops: [x]}
        extra: 1
        """
    )
    assert lines == [
        f"{F}:2:12: ownership: unknown ownership 'sometimes', expected 'additive' or 'authoritative'",
        f"{F}:4:3: org_roles.organization_managr: unknown org role type 'organization_managr' "
        "(did you mean 'organization_manager'?)",
        f"{F}:7:32: spaces.dev.space_developer.groups[0]: empty group name",
        f"{F}:8:37: spaces.dev.space_manager.grops: unknown key 'grops' (did you mean 'groups'?)",
        f"{F}:9:1: extra: unknown key 'extra'",
    ]


def test_problems_from_several_files_and_duplicate_org() -> None:
    with pytest.raises(MappingError) as info:
        parse_mappings(
            [
                ("mappings/a.yaml", "org: payments\n"),
                ("mappings/b.yaml", "org: Payments\n"),
                ("mappings/c.yaml", "org: [\n"),
                ("mappings/d.yaml", "org: data\nspaces: {dev: {space_auditor: 3}}\n"),
            ]
        )
    assert str(info.value).splitlines() == [
        "mappings/b.yaml:1:6: org: org 'Payments' is already defined in mappings/a.yaml:1",
        "mappings/c.yaml:2:1: YAML syntax error: while parsing a flow node: expected the node content, "
        "but found '<stream end>'",
        "mappings/d.yaml:2:31: spaces.dev.space_auditor: expected a mapping with 'groups' and/or 'users', "
        "got integer",
    ]
    assert all(isinstance(p, Problem) for p in info.value.problems)
    assert info.value.problems[0] == Problem(
        "mappings/b.yaml", 1, 6, "org", "org 'Payments' is already defined in mappings/a.yaml:1"
    )


def test_load_mappings_directory_skips_hidden_and_other_files(tmp_path: Path) -> None:
    d = tmp_path / "mappings"
    d.mkdir()
    (d / "a.yaml").write_text("org: a\n")
    (d / "b.yml").write_text("org: b\n")
    (d / ".hidden.yaml").write_text("not: valid\n")
    (d / "schema.json").write_text("{}")
    (d / "README.md").write_text("# hi")
    m = load_mappings(d)
    assert [o.name for o in m.orgs] == ["a", "b"]


def test_load_mappings_empty_directory_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="no mapping files"):
        load_mappings(tmp_path)


def test_load_mappings_reports_unreadable_and_bad_files_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "mappings"
    d.mkdir()
    (d / "a.yaml").write_text("org: a\nspaces: {dev: {space_developr: {}}}\n")
    (d / "b.yaml").write_bytes(b"org: b\xff\n")
    with pytest.raises(MappingError) as info:
        load_mappings("mappings")
    assert str(info.value).splitlines() == [
        "mappings/a.yaml:2:16: spaces.dev.space_developr: unknown space role type 'space_developr' "
        "(did you mean 'space_developer'?)",
        "mappings/b.yaml:1:7: file is not valid UTF-8 (byte 0xff)",
    ]


def test_load_mappings_explicit_file_list(tmp_path: Path) -> None:
    a = tmp_path / "one.yaml"
    a.write_text("org: one\n")
    assert [o.name for o in load_mappings([a]).orgs] == ["one"]


def test_unacceptable_raw_character_is_a_located_syntax_error() -> None:
    assert errors(b"org: p\x07\n") == [f"{F}:1:7: YAML syntax error: unacceptable character U+0007"]


def test_python_tags_are_rejected_not_constructed() -> None:
    assert errors("org: !!python/object/apply:os.system [echo hi]\n") == [
        f"{F}:1:6: org: expected a string, got a value tagged 'tag:yaml.org,2002:python/object/apply:os.system'"
    ]


def test_aliases_are_followed() -> None:
    m = parse(
        """\
        org: p
        spaces:
          dev:
            space_developer: &devs {groups: [a, b]}
          prod:
            space_auditor: *devs
        """
    )
    prod = m.orgs[0].space("prod")
    assert prod is not None
    assert [g.group for g in prod.roles[0].groups] == ["a", "b"]


def test_problem_str_without_position() -> None:
    assert str(Problem("f.yaml", None, None, "", "file is empty")) == "f.yaml: file is empty"
    assert str(Problem("f.yaml", 3, None, "org", "bad")) == "f.yaml:3: org: bad"


def test_tagged_root_mapping_is_rejected() -> None:
    assert errors("!!python/object:x {org: p}\n") == [
        f"{F}:1:1: a mapping file must be a mapping with 'org', got a value tagged 'tag:yaml.org,2002:python/object:x'"
    ]


def test_set_instead_of_spaces_mapping_is_rejected() -> None:
    assert errors("org: p\nspaces: !!set {a, b}\n") == [
        f"{F}:2:9: spaces: expected a mapping of space name to roles, got a value tagged 'tag:yaml.org,2002:set'"
    ]


def test_key_value_slip_in_user_list_gets_a_hint() -> None:
    assert errors("org: p\norg_roles:\n  organization_user:\n    users:\n      - admin:\n") == [
        f"{F}:5:9: org_roles.organization_user.users[0]: 'admin:' is read by YAML as a key without a value, not a name; quote the name"
    ]


def test_key_value_slip_block_style_and_explicit_object() -> None:
    assert errors("org: p\norg_roles:\n  organization_user:\n    groups:\n      - okta: leads\n") == [
        f"{F}:5:9: org_roles.organization_user.groups[0]: 'okta: leads' is read by YAML as a key/value pair, not a name; write 'okta:leads' (no space after ':') or quote it"
    ]
    # an explicit {...} object is reported key by key instead
    assert errors("org: p\norg_roles:\n  organization_user: {groups: [{okta: leads}]}\n") == [
        f"{F}:3:32: org_roles.organization_user.groups[0]: missing required key 'group'",
        f"{F}:3:33: org_roles.organization_user.groups[0].okta: unknown key 'okta'",
    ]


@pytest.mark.parametrize(
    ("scope", "name", "hint"),
    [
        ("org_roles", "org-manager", "(did you mean 'organization_manager'?)"),
        ("org_roles", "BillingManager", "(did you mean 'organization_billing_manager'?)"),
        ("org_roles", "auditors", "(did you mean 'organization_auditor'?)"),
        ("org_roles", "SpaceDeveloper", "(did you mean 'space_developer'? it goes under spaces.<space>)"),
        ("spaces.dev", "developers", "(did you mean 'space_developer'?)"),
        ("spaces.dev", "space-supporter", "(did you mean 'space_supporter'?)"),
        ("spaces.dev", "OrgAuditor", "(did you mean 'organization_auditor'? it goes under org_roles)"),
    ],
)
def test_role_names_from_other_tools_get_hints(scope: str, name: str, hint: str) -> None:
    if scope == "org_roles":
        text = f"org: p\norg_roles:\n  {name}: {{}}\n"
        kind = "org"
    else:
        text = f"org: p\nspaces:\n  dev:\n    {name}: {{}}\n"
        kind = "space"
    [line] = errors(text)
    assert line.endswith(f"{scope}.{name}: unknown {kind} role type '{name}' {hint}")


def test_group_refs_can_leave_out_expired_groups() -> None:
    m = parse(
        """\
        org: p
        org_roles:
          organization_user:
            groups: [a, {group: b, until: 2026-01-01}, {group: c, until: 2026-06-01}, okta:d]
        """
    )
    assert m.group_refs("directory") == {"directory:a", "directory:b", "directory:c", "okta:d"}
    assert m.group_refs("directory", today=dt.date(2026, 6, 1)) == {"directory:a", "directory:c", "okta:d"}
    assert m.group_refs("directory", today=dt.date(2026, 6, 2)) == {"directory:a", "okta:d"}


def test_folder_outside_working_directory_gets_stable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "checkout-1234" / "mappings"
    d.mkdir(parents=True)
    (d / "payments.yaml").write_text("org: payments\norg_roles:\n  organization_user: {groups: [g]}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the folder is not below the working directory
    m = load_mappings(d)
    assert str(m.orgs[0].roles[0].groups[0].location) == "mappings/payments.yaml:3"
