"""One org, one resource: a pull request's preview, line by line, through the real CLI.

Every line of the preview that carries a change marker (``+``, ``-``, ``~``) is asserted:
one resource changes (the org's ``cf:OrgAccess``), and its lines name the person, the
scope (``dev/…`` for a space role), the role and the grant. Unchanged members print
without a marker (Pulumi's ``--diff`` shows them as context) and are not changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.foundation import ORIGIN, Foundation, foundation

pytestmark = pytest.mark.e2e

JUDY = f"{ORIGIN}/judy@corp.com"
ALICE = f"{ORIGIN}/alice@corp.com"
PAYMENTS_URN = "pulumi-python:dynamic/cf:OrgAccess::payments]"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Foundation]:
    with foundation(tmp_path) as f:
        yield f


def changed_lines(preview: str) -> list[str]:
    """The resource lines of a ``preview --diff`` that carry a change marker, with the
    padding Pulumi adds to align map values collapsed to one space."""
    body = preview.split("\n    --outputs:--", 1)[0]  # the stack outputs are counts
    out = []
    for line in body.splitlines():
        stripped = line.strip()
        if stripped[:2] in ("+ ", "- ", "~ ") and "pulumi:pulumi:Stack" not in stripped:
            out.append(re.sub(r"\s+:", ":", re.sub(r" {2,}", " ", stripped)))
    return out


def test_a_joiner_changes_one_resource_and_names_each_role(env: Foundation) -> None:
    env.stack.up()
    env.add_to_group("payments-dev", "judy@corp.com")
    preview = env.stack.preview()
    grant = '"group directory:payments-dev (mappings/payments.yaml)"'
    assert changed_lines(preview.output) == [
        "~ pulumi-python:dynamic/cf:OrgAccess: (update)",
        "~ roles: {",
        "~ dev/space_developer: {",
        f"+ {JUDY}: {grant}",
        "~ organization_user: {",
        f'+ {JUDY}: "implied by space roles dev/space_developer, prod/space_auditor"',
        "~ prod/space_auditor: {",
        f"+ {JUDY}: {grant}",
    ], preview.output
    assert PAYMENTS_URN in preview.output
    assert "~ 1 to update" in preview.output and "to create" not in preview.output
    assert "3 role assignments to add; 0 of" in preview.output

    env.control.reset_counters()
    env.stack.up()
    assert env.control.counters()["writes"] == 3, "organization_user, then the two space roles"
    assert env.roles() == env.expected()
    assert env.stack.preview("--refresh", "--expect-no-changes").ok


def test_removing_one_person_from_one_space_changes_one_resource(env: Foundation) -> None:
    env.stack.up()
    mapping = env.mappings_dir / "payments.yaml"
    mapping.write_text(mapping.read_text().replace("    space_manager: {users: [alice@corp.com]}\n", ""))
    preview = env.stack.preview()
    assert changed_lines(preview.output) == [
        "~ pulumi-python:dynamic/cf:OrgAccess: (update)",
        "~ roles: {",
        "~ dev/space_manager: {",
        f'- {ALICE}: "named user (mappings/payments.yaml)"',
        "~ organization_user: {",
        f'~ {ALICE}: "implied by space roles dev/space_developer, dev/space_manager, prod/space_auditor"'
        ' => "implied by space roles dev/space_developer, prod/space_auditor"',
    ], preview.output
    assert "~ 1 to update" in preview.output
    assert "0 role assignments to add; 1 of" in preview.output

    env.control.reset_counters()
    env.stack.up()
    assert env.control.counters()["writes"] == 1
    assert (ALICE, "space_manager", "payments/dev") not in env.roles()
    assert (ALICE, "organization_user", "payments") in env.roles(), "she keeps her other roles"
    assert env.roles() == env.expected()


def test_the_drift_check_reads_the_foundation_once(env: Foundation) -> None:
    """The providers' refresh read is handed to the program of the same run
    (components/cloudfoundry/shared_read.py): each list endpoint is read once."""
    env.stack.up()
    env.control.reset_counters()
    drift = env.stack.preview("--refresh", "--expect-no-changes")
    assert "what Cloud Foundry holds now: the refresh read of this run" in drift.output
    requests = env.control.counters()["requests"]
    lists = {k: v for k, v in requests.items() if k.startswith("GET /v3/") and "{" not in k}
    assert lists == {
        "GET /v3/organizations": 1,
        "GET /v3/roles": 1,
        "GET /v3/spaces": 1,
        "GET /v3/users": 1,
    }, requests
    assert env.control.counters()["writes"] == 0

    # With cfUaaUrl set (README, Large foundations), the bulk read and one token are all it asks.
    # A refresh configures providers from state, so the setting reaches it after the next up.
    env.stack.config_set("cfUaaUrl", f"{env.url}/uaa")
    env.stack.up()
    env.control.reset_counters()
    env.stack.preview("--refresh", "--expect-no-changes")
    assert env.control.counters()["requests"] == {
        **lists,
        "POST /uaa/oauth/token": 1,
    }, env.control.counters()["requests"]
    env.stack.config_set("cfUaaUrl", "")

    # Without a refresh the program reads CF itself (nothing was shared).
    env.control.reset_counters()
    plain = env.stack.preview("--expect-no-changes")
    assert f"what Cloud Foundry holds now: a bulk read of {env.url}" in plain.output
