"""mappings/schema.json: valid draft 2020-12, accepts the examples, agrees with the loader."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.mappings import MappingError, parse_mappings

REPO = Path(__file__).resolve().parents[2]
SCHEMA: dict[str, Any] = json.loads((REPO / "mappings" / "schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
EXAMPLES = sorted((REPO / "mappings").glob("*.yaml"))


def as_json(text: str) -> Any:
    """What an editor validates: the YAML data, dates as ISO strings."""
    return json.loads(json.dumps(yaml.safe_load(text), default=str))


def schema_ok(text: str) -> bool:
    return not list(VALIDATOR.iter_errors(as_json(text)))


def loader_ok(text: str) -> bool:
    try:
        parse_mappings([("sample.yaml", text)])
    except MappingError:
        return False
    return True


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_there_are_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"payments.yaml", "platform.yaml", "data.yaml"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_against_schema(path: Path) -> None:
    text = path.read_text()
    assert text.splitlines()[0] == "# yaml-language-server: $schema=./schema.json"
    errors = [e.message for e in VALIDATOR.iter_errors(as_json(text))]
    assert errors == []


def test_schema_role_lists_match_model() -> None:
    from components.model import ORG_ROLE_TYPES, SPACE_ROLE_TYPES

    org_roles = SCHEMA["properties"]["org_roles"]["propertyNames"]["enum"]
    space_roles = SCHEMA["$defs"]["space"]["propertyNames"]["enum"]
    assert tuple(org_roles) == ORG_ROLE_TYPES
    assert tuple(space_roles) == SPACE_ROLE_TYPES


GOOD = {
    "minimal": "org: p\n",
    "full": """\
        org: payments
        ownership: authoritative
        description: Payments team
        org_roles:
          organization_manager: {groups: [okta:leads], users: [alice@corp.com]}
          organization_user: {}
        spaces:
          dev:
            space_developer:
              groups: [dev, {group: "App: X", source: entra, until: 2027-01-01}]
              users: [{user: bob@corp.com, origin: sap.ids, until: "2027-02-01"}]
          prod: {}
        """,
    "group with colon after prefix": "org: p\norg_roles: {organization_user: {groups: ['okta:a:b']}}\n",
    "space named like a number quoted": "org: p\nspaces: {'2024': {}}\n",
    "additive explicit": "org: p\nownership: additive\n",
}

BAD = {
    "missing org": "ownership: additive\n",
    "unknown top key": "org: p\nownrship: additive\n",
    "bad ownership": "org: p\nownership: sometimes\n",
    "org role in space": "org: p\nspaces: {dev: {organization_manager: {}}}\n",
    "space role in org": "org: p\norg_roles: {space_developer: {}}\n",
    "typo role": "org: p\nspaces: {dev: {space_develper: {}}}\n",
    "groups not a list": "org: p\norg_roles: {organization_user: {groups: x}}\n",
    "unknown grant key": "org: p\norg_roles: {organization_user: {members: [x]}}\n",
    "empty group": "org: p\norg_roles: {organization_user: {groups: ['']}}\n",
    "group with trailing space": "org: p\norg_roles: {organization_user: {groups: ['x ']}}\n",
    "newline in user": 'org: p\norg_roles: {organization_user: {users: ["a\\nb"]}}\n',
    "tab in org": 'org: "a\\tb"\n',
    "bad source prefix": "org: p\norg_roles: {organization_user: {groups: ['Bad Source: x']}}\n",
    "empty after prefix": "org: p\norg_roles: {organization_user: {groups: ['okta:']}}\n",
    "null role": "org: p\nspaces: {dev: {space_developer: null}}\n",
    "role is a list": "org: p\nspaces: {dev: {space_developer: [a]}}\n",
    "group int": "org: p\norg_roles: {organization_user: {groups: [1]}}\n",
    "duplicate group": "org: p\norg_roles: {organization_user: {groups: [a, a]}}\n",
    "user object without user": "org: p\norg_roles: {organization_user: {users: [{origin: x}]}}\n",
    "user object with username": "org: p\norg_roles: {organization_user: {users: [{username: x}]}}\n",
    "until not a date": "org: p\norg_roles: {organization_user: {users: [{user: x, until: soon}]}}\n",
    "origin with slash": "org: p\norg_roles: {organization_user: {users: [{user: x, origin: a/b}]}}\n",
    "source uppercase": "org: p\norg_roles: {organization_user: {groups: [{group: x, source: Okta}]}}\n",
    "file is a list": "- org: p\n",
    "file is empty": "# nothing\n",
    "spaces a list": "org: p\nspaces: [dev]\n",
    "org not string": "org: 42\n",
}


@pytest.mark.parametrize("text", GOOD.values(), ids=GOOD.keys())
def test_loader_and_schema_accept(text: str) -> None:
    text = textwrap.dedent(text)
    assert loader_ok(text)
    assert schema_ok(text)


@pytest.mark.parametrize("text", BAD.values(), ids=BAD.keys())
def test_loader_and_schema_reject(text: str) -> None:
    text = textwrap.dedent(text)
    assert not loader_ok(text)
    assert not schema_ok(text)
