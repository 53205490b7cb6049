"""The one promise, through the real CLI: no run removes a role that its preview did not
show, that the brake did not count, or that cf-access does not manage.

One test per finding of the Trust issue (README "What cf-access will never do").
Every check on CF reads roles back through the Cloud Controller API.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from components.cloudfoundry.client import CloudFoundryClient
from tests.e2e.foundation import (
    ORIGIN,
    SECRET,
    Foundation,
    cf_access_cli,
    foundation,
    grant_by_hand,
    use_client,
)

pytestmark = pytest.mark.e2e

CAROL = f"{ORIGIN}/carol@corp.com"
DAVE = f"{ORIGIN}/dave@corp.com"
FRANK = f"{ORIGIN}/frank@corp.com"
JUDY = f"{ORIGIN}/judy@corp.com"
MALLORY = f"{ORIGIN}/mallory@corp.com"
ADMIN = f"{ORIGIN}/admin@corp.com"
IVAN = f"{ORIGIN}/ivan@corp.com"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Foundation]:
    with foundation(tmp_path) as f:
        yield f


@pytest.fixture
def delete_user_env(tmp_path: Path) -> Iterator[Foundation]:
    with foundation(tmp_path, policy="delete-user") as f:
        yield f


def lines(diff: str, sign: str, key: str, reason: str = "") -> int:
    pattern = rf"^\s*{re.escape(sign)} {re.escape(key)}\s*: \"{re.escape(reason)}"
    return len(re.findall(pattern, diff, flags=re.MULTILINE))


def client(env: Foundation) -> CloudFoundryClient:
    return CloudFoundryClient(env.url, "cf-access", SECRET)


def roles_of(env: Foundation, key: str) -> list[tuple[str, str]]:
    return sorted((role, scope) for k, role, scope in env.roles() if k == key)


def uaa_usernames(env: Foundation) -> set[str]:
    return {u["userName"].casefold() for u in env.control.state()["uaa_users"]}


def cc_usernames(env: Foundation) -> set[str]:
    return {str(u["username"]).casefold() for u in env.control.state()["users"] if u["username"]}


def writes(env: Foundation) -> int:
    return int(env.control.counters()["writes"])


def _removed_lines(diff: str) -> int:
    # role memberships only: the user set's lines read "managed by cf-access"
    found = re.findall(r"^\s*- corp-sso/\S+\s*: \"(.*)\"$", diff, flags=re.MULTILINE)
    return len([reason for reason in found if reason != "managed by cf-access"])


# 1 ---------------------------------------------------------------------------------------------
def test_1_deleted_mapping_file_is_shown_per_person_and_braked(env: Foundation) -> None:
    env.stack.up()
    payments = [r for r in env.roles() if r[2].split("/")[0] == "payments"]
    assert len(payments) >= 10

    (env.mappings_dir / "payments.yaml").unlink()
    env.control.reset_counters()
    preview = env.stack.preview(check=False)
    assert not preview.ok, "the brake must stop a run that empties an org"
    assert "mass-removal brake" in preview.output
    assert re.search(rf"payments \(-{len(payments)} of {len(payments)}", preview.output), preview.output
    up = env.stack.up(check=False)
    assert not up.ok
    assert writes(env) == 0
    assert len([r for r in env.roles() if r[2].split("/")[0] == "payments"]) == len(payments)

    # reviewed and allowed: the preview names every person and role; up removes exactly those
    env.stack.env["CF_ACCESS_ALLOW_MASS_REMOVAL"] = "true"
    try:
        diff = env.stack.preview().output
        assert _removed_lines(diff) == len(payments), diff
        env.stack.up()
    finally:
        del env.stack.env["CF_ACCESS_ALLOW_MASS_REMOVAL"]
    assert [r for r in env.roles() if r[2].split("/")[0] == "payments"] == []
    assert env.stack.preview("--expect-no-changes").ok, "the emptied memberships are dropped without writes"


def test_1_moved_mapping_file_is_loaded_and_unknown_files_refused(env: Foundation) -> None:
    env.stack.up()
    (env.mappings_dir / "teams").mkdir()
    shutil.move(env.mappings_dir / "payments.yaml", env.mappings_dir / "teams" / "payments.yaml")
    moved = env.stack.preview().output
    # the provenance names the new file; nobody gains or loses a role
    assert re.search(r"0 role assignments to add; 0 of \d+ managed role assignments to remove", moved), moved
    assert _removed_lines(moved) == 0
    assert "(mappings/teams/payments.yaml)" in moved
    shutil.move(env.mappings_dir / "teams" / "payments.yaml", env.mappings_dir / "payments.yaml.bak")
    env.control.reset_counters()
    result = env.stack.preview(check=False)
    assert not result.ok
    assert "payments.yaml.bak" in result.output
    assert writes(env) == 0


# 2 ---------------------------------------------------------------------------------------------
def test_2_destroy_changes_nothing_without_the_override_and_never_deletes_users(env: Foundation) -> None:
    env.stack.up()
    grant_by_hand(env, "mallory@corp.com", "space_auditor", "platform", "tools")
    before = env.roles()
    users_before = len(env.control.state()["users"])
    env.control.reset_counters()
    result = env.stack.destroy(check=False)
    assert not result.ok
    assert "CF_ACCESS_ALLOW_DESTROY=true" in result.output
    assert writes(env) == 0
    assert env.roles() == before

    env.stack.env["CF_ACCESS_ALLOW_DESTROY"] = "true"
    try:
        env.stack.destroy()
    finally:
        del env.stack.env["CF_ACCESS_ALLOW_DESTROY"]
    assert env.roles() == [
        (MALLORY, "organization_user", "platform"),
        (MALLORY, "space_auditor", "platform/tools"),
    ], "exactly the managed roles are removed; the hand grant stays"
    assert len(env.control.state()["users"]) == users_before, "destroy never deletes users"


# 3 ---------------------------------------------------------------------------------------------
def test_3_organization_user_is_kept_for_roles_cf_access_does_not_manage(env: Foundation) -> None:
    env.stack.up()
    # frank: platform/tools and platform/sandbox developer through platform-engineers;
    # a hand-granted space_auditor in platform/sandbox (a role type platform does not map).
    grant_by_hand(env, "frank@corp.com", "space_auditor", "platform", "sandbox")
    env.edit_directory(lambda d: d["groups"]["platform-engineers"].remove("frank@corp.com"))
    diff = env.stack.preview().output
    assert lines(diff, "-", FRANK, "group") == 2, diff  # the two mapped space roles
    assert re.search(
        rf'~ {re.escape(FRANK)}\s*: ".*" => "kept: holds roles cf-access does not manage', diff
    ), diff
    assert "organization_user kept for 1" in diff
    env.stack.up()
    assert roles_of(env, FRANK) == [
        ("organization_user", "platform"),
        ("space_auditor", "platform/sandbox"),
    ]
    assert env.stack.preview("--expect-no-changes").ok


# 4 ---------------------------------------------------------------------------------------------
def test_4_first_run_of_an_authoritative_scope_removes_nobody_the_preview_did_not_show(
    env: Foundation,
) -> None:
    grant_by_hand(env, "mallory@corp.com", "organization_manager", "payments")
    preview = env.stack.preview().output
    assert MALLORY not in preview
    env.stack.up()
    assert (MALLORY, "organization_manager", "payments") in env.roles(), "not shown, so not removed"

    diff = env.stack.preview("--refresh").output
    assert lines(diff, "-", MALLORY, "found in CF") == 1, diff
    env.stack.up("--refresh")
    assert (MALLORY, "organization_manager", "payments") not in env.roles()


# 5 ---------------------------------------------------------------------------------------------
def test_5_protected_users_match_by_search(env: Foundation) -> None:
    env.stack.config_set_list("protectedUsers", ["^admin"])
    grant_by_hand(env, "admin@acme.com", "organization_manager", "payments")
    env.stack.up()
    env.stack.up("--refresh")
    assert (f"{ORIGIN}/admin@acme.com", "organization_manager", "payments") in env.roles()


# 6 ---------------------------------------------------------------------------------------------
def test_6_delete_user_only_deletes_users_cf_access_created_who_hold_nothing(
    delete_user_env: Foundation,
) -> None:
    env = delete_user_env
    grant_by_hand(env, "heidi@corp.com", "organization_auditor", "platform")  # pre-existing user
    env.stack.up()
    grant_by_hand(env, "dave@corp.com", "organization_auditor", "data")  # a role cf-access does not manage
    for name in ("dave@corp.com", "heidi@corp.com", "ivan@corp.com"):
        env.set_status(name, "SUSPENDED")
    env.stack.up()
    usernames = {u["userName"].casefold() for u in env.control.state()["uaa_users"]}
    assert "dave@corp.com" in usernames, "still holds a role cf-access does not manage"
    assert "heidi@corp.com" in usernames, "cf-access did not create this user"
    assert "ivan@corp.com" not in usernames, "created by cf-access, holds nothing: deleted"
    assert roles_of(env, DAVE) == [("organization_auditor", "data")]


def test_6_a_user_deletion_stopped_half_way_is_finished_by_the_next_up_refresh(
    delete_user_env: Foundation,
) -> None:
    """CC user deleted, UAA user not: the refresh of the next `up --refresh` (the shipped
    workflow) must not forget the leaver, or the UAA account is orphaned for good."""
    env = delete_user_env
    env.stack.up()
    env.set_status("ivan@corp.com", "SUSPENDED")
    env.control.set_faults(refuse_uaa_user_deletes=["ivan@corp.com"])
    failed = env.stack.up(check=False)
    assert not failed.ok
    assert "ivan@corp.com" in failed.output and "Deleting user 'ivan@corp.com' was refused" in failed.output
    assert "ivan@corp.com" not in cc_usernames(env), "the CC half of the deletion happened"
    assert "ivan@corp.com" in uaa_usernames(env), "the UAA half did not"

    env.control.clear_faults()
    # a read-only client without scim.read cannot look in UAA, so it keeps the user too
    use_client(env, ("global-auditor", "auditor-secret"))
    env.stack.refresh()
    use_client(env, ("cf-access", SECRET))
    env.stack.refresh()
    preview = env.stack.preview()
    assert lines(preview.output, "-", IVAN, "managed by cf-access") == 1, "the refresh kept the leaver"
    env.stack.up("--refresh")
    assert "ivan@corp.com" not in uaa_usernames(env), "the next run finished the deletion"
    assert env.stack.preview("--refresh", "--expect-no-changes").ok


# 7 ---------------------------------------------------------------------------------------------
def test_7_a_rejected_add_does_not_block_removals_and_state_matches_cf(env: Foundation) -> None:
    env.stack.up()
    env.add_to_group("payments-dev", "judy@corp.com")
    env.add_to_group("payments-dev", "mallory-rejected@corp.com")
    env.edit_directory(
        lambda d: d["users"].append(
            {
                "username": "mallory-rejected@corp.com",
                "email": "mallory-rejected@corp.com",
                "status": "ACTIVE",
            }
        )
    )
    env.set_status("dave@corp.com", "SUSPENDED")
    env.control.set_faults(reject_usernames=["mallory-rejected@corp.com"])
    result = env.stack.up(check=False)
    assert not result.ok
    assert "mallory-rejected@corp.com" in result.output
    assert roles_of(env, DAVE) == [], "the leaver's removals still happened"
    assert ("space_developer", "payments/dev") in roles_of(env, JUDY)

    # judy's add was recorded as managed: withdrawing her removes it
    env.control.clear_faults()
    env.edit_directory(lambda d: d["groups"]["payments-dev"].remove("judy@corp.com"))
    env.stack.up()
    assert [r for r in roles_of(env, JUDY) if r[1].startswith("payments")] == []
    assert (f"{ORIGIN}/mallory-rejected@corp.com", "space_developer", "payments/dev") in env.roles()


# 8 ---------------------------------------------------------------------------------------------
def test_8_refresh_tolerates_a_space_deleted_in_cf(env: Foundation) -> None:
    env.stack.up()
    with client(env) as cf:
        org = next(o.guid for o in cf.list_orgs(["data"]))
        space = next(s.guid for s in cf.list_spaces([org], names=["analytics"]))
    headers = {"Authorization": f"bearer {env.control.token()}"}
    assert httpx.delete(f"{env.url}/v3/spaces/{space}", headers=headers).status_code == 202
    refreshed = env.stack.refresh(check=False)
    assert refreshed.ok, refreshed.output
    preview = env.stack.preview(check=False)
    assert not preview.ok
    assert "space 'analytics' does not exist in organization 'data'" in preview.output


# 10 --------------------------------------------------------------------------------------------
def test_10_a_no_op_preview_announces_no_removals(env: Foundation) -> None:
    env.stack.up()
    grant_by_hand(env, "mallory@corp.com", "space_auditor", "platform", "tools")  # additive: not ours
    preview = env.stack.preview("--expect-no-changes")
    assert re.search(r"0 of \d+ managed role assignments to remove", preview.output), preview.output


def test_10_the_helper_cli_agrees_with_the_program(env: Foundation) -> None:
    env.stack.up()
    grant_by_hand(env, "admin@corp.com", "organization_manager", "payments")  # protected
    grant_by_hand(env, "mallory@corp.com", "organization_auditor", "payments")  # authoritative: swept
    why = cf_access_cli(env, "why", "admin@corp.com")
    assert why.returncode == 0, why.stderr
    protected = r"payments organization_manager\s+\[protected user: never added or removed by cf-access\]"
    assert re.search(protected, why.stdout), why.stdout
    assert "removes it" not in why.stdout
    swept = cf_access_cli(env, "why", "mallory@corp.com")
    assert re.search(
        r"- payments organization_auditor\s+\[granted by no mapping: the next up removes it", swept.stdout
    )

    # a group with no active members: preview refuses it, so validate and doctor do too
    env.edit_directory(lambda d: d["groups"].__setitem__("payments-oncall", []))
    preview = env.stack.preview(check=False)
    assert not preview.ok and "group directory:payments-oncall returned no active members" in preview.output
    for command in ("validate", "doctor"):
        result = cf_access_cli(env, command)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "payments-oncall returned no active members" in result.stdout, (command, result.stdout)
