"""cf-access end to end: the real pulumi CLI, the program, the local CF sandbox.

Every assertion about CF reads roles back through the Cloud Controller API,
never from Pulumi state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.cloudfoundry.client import CloudFoundryClient
from tests.e2e.foundation import ORIGIN, SECRET, Foundation, foundation, grant_by_hand

pytestmark = pytest.mark.e2e

ALICE = f"{ORIGIN}/alice@corp.com"
CAROL = f"{ORIGIN}/carol@corp.com"
ERIN = f"{ORIGIN}/erin@corp.com"
JUDY = f"{ORIGIN}/judy@corp.com"
DAVE = f"{ORIGIN}/dave@corp.com"
ADMIN = f"{ORIGIN}/admin@corp.com"
MALLORY = f"{ORIGIN}/mallory@corp.com"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Foundation]:
    with foundation(tmp_path) as f:
        yield f


def member_lines(diff: str, sign: str, key: str, reason: str = "") -> int:
    """How many times the diff shows ``key`` added (+) or removed (-) from a
    membership map, with a reason starting with ``reason``. Pulumi pads map
    keys to align the values, hence the flexible whitespace."""
    pattern = rf"^\s*{re.escape(sign)} {re.escape(key)}\s*: \"{re.escape(reason)}"
    return len(re.findall(pattern, diff, flags=re.MULTILINE))


def cf(env: Foundation) -> CloudFoundryClient:
    return CloudFoundryClient(env.url, "cf-access", SECRET)


def revoke_by_hand(env: Foundation, key: str, role_type: str, scope: str) -> None:
    username = key.partition("/")[2]
    with cf(env) as client:
        user = next(u for u in client.list_users(usernames=[username], origins=[ORIGIN]))
        roles, _ = client.list_roles(types=[role_type], user_guids=[user.guid])
        org, _, space = scope.partition("/")
        orgs = {o.guid: o.name for o in client.list_orgs()}
        spaces = {s.guid: (orgs[s.org_guid], s.name) for s in client.list_spaces()}
        for role in roles:
            where = spaces[role.space_guid] if role.space_guid else (orgs[role.org_guid or ""], "")
            if where == (org, space):
                client.delete_role(role.guid)
                return
    raise AssertionError(f"{key} holds no {role_type} in {scope}")


def test_create_noop_joiner_leaver(env: Foundation) -> None:
    # (a) empty foundation: the preview names every person and membership.
    preview = env.stack.preview().output
    # users: one map per UAA origin (not one resource per person)
    assert "pulumi-python:dynamic/cf:UserSet: (create)" in preview
    assert (
        f"[urn=urn:pulumi:{env.stack.stack}::cf-access::cf-access:index:Users$pulumi-python:dynamic/cf:UserSet::users:{ORIGIN}]"
        in preview
    )
    assert re.search(rf'{re.escape(ALICE)}\s*: "managed by cf-access"', preview)
    assert "cf:User:" not in preview
    assert re.search(
        rf'{re.escape(ALICE)}\s*: "group directory:payments-leads \(mappings/payments.yaml\)"', preview
    )
    # one resource per org, its roles keyed "organization_manager" / "dev/space_developer"
    assert preview.count("pulumi-python:dynamic/cf:OrgAccess: (create)") == 3
    assert "pulumi-python:dynamic/cf:OrgAccess::payments]" in preview
    assert re.search(r"^\s+dev/space_developer\s*: \{$", preview, flags=re.MULTILINE)
    assert ADMIN + ":" not in preview, "protected users never appear as members"
    assert env.roles() == [], "preview must not write"

    # (b) up creates exactly the plan, verified through the CF API.
    up = env.stack.up()
    assert env.roles() == env.expected()
    assert (ALICE, "organization_manager", "payments") in env.roles()
    assert (CAROL, "organization_user", "payments") in env.roles(), "implied by her space roles"
    print(f"initial up: {up.seconds:.1f} s for {len(env.roles())} role assignments")

    # (c) unchanged inputs: nothing to do.
    assert env.stack.preview("--expect-no-changes").ok

    # (d) a joiner: exactly their new roles, including the implied organization_user.
    env.add_to_group("payments-dev", "judy@corp.com")
    diff = env.stack.preview().output
    assert member_lines(diff, "+", JUDY, "group directory:payments-dev") == 2  # dev developer, prod auditor
    assert member_lines(diff, "+", JUDY, "implied by space role") == 1  # payments organization_user
    assert member_lines(diff, "-", JUDY) == 0
    assert "~ 1 to update" in diff, "one org, one resource"
    env.stack.up()
    assert (JUDY, "space_developer", "payments/dev") in env.roles()
    assert (JUDY, "organization_user", "payments") in env.roles()
    assert env.roles() == env.expected()

    # (e) a leaver: removals only; space roles go before organization_user (no 422).
    env.set_status("carol@corp.com", "SUSPENDED")
    # Carol was the only on-call: her group now comes back empty, which the
    # guard treats as a failed read until the stack allows it.
    guarded = env.stack.preview(check=False)
    assert not guarded.ok
    assert "group directory:payments-oncall returned no active members" in guarded.output
    env.stack.config_set_list("allowEmptyGroups", ["directory:payments-oncall"])
    diff = env.stack.preview().output
    # dev developer, prod developer, prod auditor, organization_user; and the user set
    # stops tracking her (roles-only keeps the CF user)
    assert member_lines(diff, "-", CAROL) == 5
    assert member_lines(diff, "-", CAROL, "managed by cf-access") == 1
    assert member_lines(diff, "+", CAROL) == 0
    env.stack.up()
    assert [r for r in env.roles() if r[0] == CAROL] == []
    assert env.roles() == env.expected()
    with cf(env) as client:  # roles-only policy keeps the user
        assert client.list_users(usernames=["carol@corp.com"], origins=[ORIGIN])
    assert env.stack.preview("--expect-no-changes").ok


def test_leaver_deleted_with_delete_user_policy(tmp_path: Path) -> None:
    with foundation(tmp_path, policy="delete-user") as env:
        env.stack.up()
        env.set_status("dave@corp.com", "DEPROVISIONED")
        diff = env.stack.preview().output
        # dave leaves the user set; his roles go first (the set is ordered after every membership)
        assert member_lines(diff, "-", DAVE, "managed by cf-access") == 1
        assert member_lines(diff, "-", DAVE, "group directory:") >= 1
        env.stack.up()
        assert [r for r in env.roles() if r[0] == DAVE] == []
        with cf(env) as client:
            assert client.list_users(usernames=["dave@corp.com"], origins=[ORIGIN]) == []
            assert client.find_uaa_user("dave@corp.com", ORIGIN) is None


def test_drift_is_reported_and_repaired(env: Foundation) -> None:
    env.stack.up()

    # (f) a role deleted by hand comes back.
    revoke_by_hand(env, ALICE, "space_developer", "payments/dev")
    assert env.stack.preview("--expect-no-changes").ok, "without refresh nothing is known"
    drift = env.stack.preview("--refresh", "--expect-no-changes", check=False)
    assert not drift.ok
    assert member_lines(drift.output, "+", ALICE, "group directory:payments-dev") == 1
    env.stack.up("--refresh")
    assert (ALICE, "space_developer", "payments/dev") in env.roles()

    # (g) authoritative org: a role added by hand is reported and removed ...
    grant_by_hand(env, "mallory@corp.com", "space_developer", "payments", "dev")
    drift_text = env.stack.preview("--refresh", check=False).output
    # the space role and the organization_user that came with it
    assert member_lines(drift_text, "-", MALLORY, "found in CF, not granted by any mapping") == 2
    env.stack.up("--refresh")
    assert [r for r in env.roles() if r[0] == MALLORY and r[2].startswith("payments")] == []

    # ... in an additive org it is left alone.
    grant_by_hand(env, "mallory@corp.com", "space_developer", "platform", "tools")
    assert env.stack.preview("--refresh", "--expect-no-changes").ok
    env.stack.up("--refresh")
    assert (MALLORY, "space_developer", "platform/tools") in env.roles()
    assert env.stack.preview("--refresh", "--expect-no-changes").ok

    # (h) a user deleted by hand (CC deletes their roles with them) is re-created: carol as
    # `cf delete-user` deletes (CC, then UAA), erin in CC only. A refresh keeps erin in the
    # user set (her UAA account is there: what a deletion stopped half-way leaves), so only
    # carol's user line shows; both get their roles back.
    held_before = {key: [r for r in env.roles() if r[0] == key] for key in (CAROL, ERIN)}
    assert all(held_before.values())
    with cf(env) as client:
        (carol,) = client.list_users(usernames=["carol@corp.com"], origins=[ORIGIN])
        (erin,) = client.list_users(usernames=["erin@corp.com"], origins=[ORIGIN])
        client.delete_user(carol.guid)
        client.delete_uaa_user(carol.guid)
        client.delete_user(erin.guid)
    assert [r for r in env.roles() if r[0] in (CAROL, ERIN)] == []
    drift = env.stack.preview("--refresh", "--expect-no-changes", check=False)
    assert not drift.ok
    assert member_lines(drift.output, "+", CAROL, "managed by cf-access") == 1
    assert member_lines(drift.output, "+", ERIN, "managed by cf-access") == 0
    for key in (CAROL, ERIN):
        assert member_lines(drift.output, "+", key, "group directory:") >= 1
    env.stack.up("--refresh")
    assert {key: [r for r in env.roles() if r[0] == key] for key in (CAROL, ERIN)} == held_before
    assert env.stack.preview("--refresh", "--expect-no-changes").ok


def test_protected_users_are_never_touched(env: Foundation) -> None:
    # admin@corp.com is in platform-engineers, but protected: never granted ...
    env.stack.up()
    assert [r for r in env.roles() if r[0] == ADMIN] == []
    # ... and a role granted by hand in the authoritative org is neither removed nor reported.
    grant_by_hand(env, "admin@corp.com", "space_manager", "payments", "prod")
    assert env.stack.preview("--refresh", "--expect-no-changes").ok
    env.stack.up("--refresh")
    assert (ADMIN, "space_manager", "payments/prod") in env.roles()
    assert (ADMIN, "organization_user", "payments") in env.roles()


def test_existing_roles_are_adopted(env: Foundation) -> None:
    grant_by_hand(env, "alice@corp.com", "organization_manager", "payments")
    grant_by_hand(env, "carol@corp.com", "space_developer", "payments", "prod")
    env.stack.up()
    roles = env.roles()
    assert roles == env.expected()
    assert len(roles) == len(set(roles)), "no duplicate roles"


def test_failed_up_then_clean_up_converges(env: Foundation) -> None:
    # Every role write fails: the first up stops partway with an error.
    env.control.set_faults(error_rate=1.0, path_prefix="/v3/roles")
    failed = env.stack.up(check=False)
    assert not failed.ok
    env.control.clear_faults()
    env.stack.up()
    roles = env.roles()
    assert roles == env.expected()
    assert len(roles) == len(set(roles))
    assert env.stack.preview("--expect-no-changes").ok


def test_secret_never_leaves_the_config(env: Foundation) -> None:
    env.stack.preview("--debug")
    env.stack.up("--debug")
    env.stack.preview("--refresh", "--debug")
    exported = env.stack.export_text()
    assert SECRET not in exported
    # The engine records the stack config as the default dynamic provider's
    # inputs; the secret may appear there only encrypted.
    for provider in json.loads(exported)["deployment"]["resources"]:
        value = provider.get("inputs", {}).get("cf-access:cfClientSecret")
        if value is not None:
            assert set(value) >= {"ciphertext"}, value
    for result in env.stack.history:
        assert SECRET not in result.output, " ".join(result.args)


def test_bad_mapping_fails_preview_with_location_and_no_writes(env: Foundation) -> None:
    path = env.mappings_dir / "platform.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if "space_developer" in line)
    lines[index] = lines[index].replace("space_developer", "space_develper")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env.control.reset_counters()

    result = env.stack.preview(check=False)
    assert not result.ok
    assert f"platform.yaml:{index + 1}:" in result.output
    assert "unknown space role type 'space_develper'" in result.output
    assert "did you mean 'space_developer'" in result.output
    assert "Traceback" not in result.output
    assert env.control.counters()["writes"] == 0
    up = env.stack.up(check=False)
    assert not up.ok
    assert env.control.counters()["writes"] == 0
    assert env.roles() == []


def test_stack_outputs_count_members_per_org(env: Foundation) -> None:
    env.stack.up()
    outputs = env.stack.outputs()
    assert outputs["summary"]["assignments"] == len(env.roles())
    payments = outputs["orgs"]["payments"]
    assert payments["ownership"] == "authoritative"
    assert payments["organization_manager"] == 1
    assert payments["dev/space_developer"] == 3
    assert payments["organization_user"] == 3
