"""Upgrading stacks deployed by earlier versions, with ``pulumi stack import``.

The starting point is ``data/per-scope-state.json``: the state a real ``pulumi up`` of
the per-scope model (commit e9471e7: one ``cf:RoleMembership`` per scope and role type,
under a ``cf-access:index:OrgAccess`` component per org) left on the standard e2e
foundation (data/make_per_scope_state.py says how it was made). Older layouts are
derived from it: per-person ``cf:User`` resources instead of the user sets, and a
``SpaceAccess`` component per space.

The current program declares one ``cf:OrgAccess`` per org. The upgrade run creates
those (a create only adds, and here finds everything in place) and deletes the retired
resources, which only forget: 0 CF writes, and no role the new resources keep is
removed. What the old resources managed and the mappings no longer grant is adopted by
the new resource and removed, visibly, by the next run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.cloudfoundry.client import CloudFoundryClient
from components.cloudfoundry.providers import UserProvider
from components.summary import parse_preview, render_markdown
from tests.e2e.foundation import ORIGIN, SECRET, Foundation, foundation, grant_by_hand

pytestmark = pytest.mark.e2e

DAVE = f"{ORIGIN}/dave@corp.com"
CAROL = f"{ORIGIN}/carol@corp.com"
MALLORY = f"{ORIGIN}/mallory@corp.com"
PER_SCOPE_STATE = Path(__file__).parent / "data" / "per-scope-state.json"
ORG_ACCESS_TYPE = "pulumi-python:dynamic/cf:OrgAccess"
ORG_COMPONENT = "cf-access:index:OrgAccess"
USER_SET_TYPE = "pulumi-python:dynamic/cf:UserSet"
LEGACY_TYPE = "pulumi-python:dynamic/cf:User"


def legacy_state(deployment: dict[str, Any], stack: str, guids: dict[str, str]) -> dict[str, Any]:
    """The deployment as cf-access before the user sets left it: no user set, one
    ``cf:User`` per person under the ``users`` component, memberships depending on them."""
    resources: list[dict[str, Any]] = deployment["deployment"]["resources"]
    user_set = next(r for r in resources if r["type"] == USER_SET_TYPE)
    provider = serialize_provider(UserProvider(stack=stack))
    legacy = []
    for key in sorted(user_set["inputs"]["users"]):
        origin, _, username = key.partition("/")
        props = {"__provider": provider, "origin": origin, "username": username}
        legacy.append(
            {
                "urn": f"urn:pulumi:{stack}::cf-access::cf-access:index:Users${LEGACY_TYPE}::{key}",
                "custom": True,
                "id": guids[key],
                "type": LEGACY_TYPE,
                "inputs": props,
                "outputs": dict(props),
                "parent": user_set["parent"],
                "provider": user_set["provider"],
            }
        )
    # The old program made every membership depend on its members' cf:User resources.
    legacy_urn = {r["inputs"]["origin"] + "/" + r["inputs"]["username"]: r["urn"] for r in legacy}
    for r in resources:
        if r["type"] == "pulumi-python:dynamic/cf:RoleMembership":
            members = sorted(r["inputs"].get("members") or {})
            r["dependencies"] = [*(r.get("dependencies") or []), *(legacy_urn[k] for k in members)]
    # State lists dependencies first: the old program registered its users before any org,
    # so the Users component and its cf:User go right after the default provider.
    component = next(r for r in resources if r["urn"] == user_set["parent"])
    kept = [r for r in resources if r is not user_set and r is not component]
    provider_urn = user_set["provider"].rpartition("::")[0]
    at = 1 + next(i for i, r in enumerate(kept) if r["urn"] == provider_urn)
    deployment["deployment"]["resources"] = [*kept[:at], component, *legacy, *kept[at:]]
    return deployment


def per_scope_state(env: Foundation) -> dict[str, Any]:
    """The real state of the per-scope model, for this stack. Its default provider (which
    records the stack config: the sandbox's URL, the encrypted client secret) is this
    stack's own, as the stack would have had it."""
    text = PER_SCOPE_STATE.read_text(encoding="utf-8").replace("__STACK__", env.stack.stack)
    data: dict[str, Any] = json.loads(text)
    resources: list[dict[str, Any]] = data["deployment"]["resources"]
    exported = env.stack.export()["deployment"]
    data["deployment"]["secrets_providers"] = exported["secrets_providers"]
    current = exported["resources"]
    for i, r in enumerate(resources):
        if r["type"] != "pulumi:providers:pulumi-python":
            continue
        mine = next(c for c in current if c["urn"] == r["urn"])
        old_ref, new_ref = f"{r['urn']}::{r['id']}", f"{mine['urn']}::{mine['id']}"
        resources[i] = mine
        for other in resources:
            if other.get("provider") == old_ref:
                other["provider"] = new_ref
    return data


def import_state(env: Foundation, tmp_path: Path, state: dict[str, Any]) -> None:
    state_file = tmp_path / "old-state.json"
    state_file.write_text(json.dumps(state))
    env.stack.run("stack", "import", "--file", str(state_file))


def step_kinds(preview: dict[str, Any]) -> set[tuple[str, str]]:
    return {(s["op"], s["urn"].split("::")[2].rpartition("$")[2]) for s in preview["steps"]}


def cf_users(env: Foundation) -> dict[str, str]:
    with CloudFoundryClient(env.url, "cf-access", SECRET) as client:
        return {f"{u.origin}/{u.username}": u.guid for u in client.list_users() if u.username and u.origin}


def test_upgrade_from_the_per_scope_model_makes_no_cf_write(tmp_path: Path) -> None:
    with foundation(tmp_path) as env:
        env.stack.up()
        grant_by_hand(env, "mallory@corp.com", "space_developer", "platform", "tools")  # not managed
        before = env.roles()
        old = per_scope_state(env)
        n_old = sum(1 for r in old["deployment"]["resources"] if r["type"] == MEMBERSHIP_TYPE)
        assert n_old >= 15
        import_state(env, tmp_path, old)
        assert env.stack.preview("--refresh").ok, "the old state reads back cleanly"

        text = env.stack.preview()
        assert "0 role assignments to add; 0 of" in text.output
        assert "3 orgs upgraded from the per-scope model (0 role changes)" in text.output
        assert "adopt" not in text.output, "nothing pending: the new resources take over as they are"
        preview = json.loads(env.stack.run("preview", "--json").output)
        assert {k for k in step_kinds(preview) if k[0] != "same"} == {
            ("create", ORG_ACCESS_TYPE),
            ("delete", MEMBERSHIP_TYPE),
            ("delete", ORG_COMPONENT),
        }
        # the stack, the Users component and the user set stay as they are
        assert preview["changeSummary"] == {"create": 3, "delete": n_old + 3, "same": 3}
        summary = parse_preview(preview)
        assert summary.role_changes == [], "the PR comment shows the model change only"
        assert f"upgrade: {n_old} per-scope `cf:RoleMembership` resources" in render_markdown(summary)

        env.control.reset_counters()
        up = env.stack.up()
        assert env.control.counters()["writes"] == 0, up.output
        assert env.roles() == before, "no role removed, the hand grant included"
        assert (MALLORY, "space_developer", "platform/tools") in env.roles()
        types = [r["type"] for r in env.stack.export()["deployment"]["resources"]]
        assert MEMBERSHIP_TYPE not in types and ORG_COMPONENT not in types
        assert types.count(ORG_ACCESS_TYPE) == 3
        assert env.stack.preview("--refresh", "--expect-no-changes").ok


def test_upgrade_run_adopts_a_pending_removal_and_the_next_run_shows_and_makes_it(tmp_path: Path) -> None:
    with foundation(tmp_path) as env:
        env.stack.up()
        import_state(env, tmp_path, per_scope_state(env))
        env.stack.config_set_list("allowEmptyGroups", ["directory:payments-oncall"])
        env.set_status("carol@corp.com", "SUSPENDED")  # a leaver in the same PR as the upgrade
        carol = [r for r in env.roles() if r[0] == CAROL]
        assert len(carol) == 4

        text = env.stack.preview()
        assert "4 removals adopted for the next run, which shows them" in text.output
        assert "adopt" in text.output and CAROL in text.output
        env.control.reset_counters()
        env.stack.up()
        assert env.control.counters()["writes"] == 0, "the create only adds; nothing to add"
        assert [r for r in env.roles() if r[0] == CAROL] == carol, "kept this run, not forgotten"

        text = env.stack.preview()
        assert "4 of" in text.output and "managed role assignments to remove" in text.output
        # her 4 roles, and the user set stops tracking her (roles-only)
        assert len(re.findall(rf"^\s*- {re.escape(CAROL)}\s*: ", text.output, flags=re.MULTILINE)) == 5
        env.stack.up()
        assert [r for r in env.roles() if r[0] == CAROL] == []
        assert env.roles() == env.expected()


def test_upgrade_from_per_person_users_deletes_nobody_and_removes_the_leavers_roles_next_run(
    tmp_path: Path,
) -> None:
    with foundation(tmp_path, policy="delete-user") as env:
        env.stack.up()
        before = cf_users(env)
        old = legacy_state(per_scope_state(env), env.stack.stack, before)
        n_legacy = sum(1 for r in old["deployment"]["resources"] if r["type"] == LEGACY_TYPE)
        assert n_legacy >= 10
        import_state(env, tmp_path, old)
        assert env.stack.preview("--refresh").ok, "the old state reads back cleanly"

        # The same run also has a leaver.
        env.set_status("dave@corp.com", "DEPROVISIONED")
        preview = env.stack.preview()
        assert preview.output.count("pulumi-python:dynamic/cf:User: (delete)") == n_legacy
        assert "pulumi-python:dynamic/cf:UserSet: (create)" in preview.output
        md = render_markdown(parse_preview(json.loads(env.stack.run("preview", "--json").output)))
        assert f"upgrade: {n_legacy} per-person `cf:User` resources" in md
        assert "- ➖ delete" not in md, "nobody is listed as deleted by the user set"

        env.stack.up()
        assert cf_users(env) == before, "nobody is deleted: dave's roles were adopted, not removed"
        assert [r for r in env.roles() if r[0] == DAVE], "dave keeps his roles this run"
        # The next run removes his roles, as its preview shows. His CF user stays: the user
        # set records only users cf-access created, and these came from per-person
        # resources that did not say so (docs/operations.md, "Upgrading").
        shown = env.stack.preview().output
        assert re.search(rf"^\s*- {re.escape(DAVE)}\s*: \"managed by cf-access\"", shown, flags=re.MULTILINE)
        up = env.stack.up()
        assert [r for r in env.roles() if r[0] == DAVE] == []
        assert cf_users(env) == before
        assert f"not deleting {DAVE}: cf-access did not create this user" in up.output
        assert env.roles() == env.expected()
        types = [r["type"] for r in env.stack.export()["deployment"]["resources"]]
        assert LEGACY_TYPE not in types
        assert types.count(USER_SET_TYPE) == 1
        assert env.stack.preview("--refresh", "--expect-no-changes").ok


SPACE_ACCESS = "cf-access:index:SpaceAccess"
MEMBERSHIP_TYPE = "pulumi-python:dynamic/cf:RoleMembership"


def per_space_components_state(deployment: dict[str, Any], stack: str) -> dict[str, Any]:
    """The deployment as versions with a ``SpaceAccess`` component per space left it: space
    memberships are children of ``OrgAccess$SpaceAccess::<org>/<space>``."""
    resources: list[dict[str, Any]] = deployment["deployment"]["resources"]
    prefix = f"urn:pulumi:{stack}::cf-access::"
    out: list[dict[str, Any]] = []
    created: set[str] = set()
    for r in resources:
        space = r["inputs"].get("space") if r["type"] == MEMBERSHIP_TYPE else None
        if space:
            org = r["inputs"]["org"]
            component = f"{prefix}cf-access:index:OrgAccess${SPACE_ACCESS}::{org}/{space}"
            if component not in created:
                created.add(component)
                out.append({"urn": component, "custom": False, "type": SPACE_ACCESS, "parent": r["parent"]})
            name = r["urn"].rpartition("::")[2]
            r = {
                **r,
                "urn": f"{prefix}cf-access:index:OrgAccess${SPACE_ACCESS}${MEMBERSHIP_TYPE}::{name}",
                "parent": component,
            }
        out.append(r)
    kept = [r for r in out if r["type"] != SPACE_ACCESS]
    renamed = {a["urn"]: b["urn"] for a, b in zip(resources, kept, strict=True)}
    for r in out:
        if r.get("dependencies"):
            r["dependencies"] = [renamed.get(u, u) for u in r["dependencies"]]
    deployment["deployment"]["resources"] = out
    return deployment


def test_upgrade_from_per_space_components_changes_nothing_in_cf(tmp_path: Path) -> None:
    with foundation(tmp_path) as env:
        env.stack.up()
        old = per_space_components_state(per_scope_state(env), env.stack.stack)
        n_spaces = sum(1 for r in old["deployment"]["resources"] if r["type"] == SPACE_ACCESS)
        assert n_spaces >= 4
        import_state(env, tmp_path, old)

        preview = json.loads(env.stack.run("preview", "--json").output)
        kinds = step_kinds(preview)
        assert ("delete", SPACE_ACCESS) in kinds, "the old components leave the state"
        assert ("create", ORG_ACCESS_TYPE) in kinds
        assert parse_preview(preview).role_changes == []

        before = env.roles()
        env.control.reset_counters()
        env.stack.up()
        assert env.control.counters()["writes"] == 0, "no CF write"
        assert env.roles() == before == env.expected()
        types = [r["type"] for r in env.stack.export()["deployment"]["resources"]]
        assert SPACE_ACCESS not in types and MEMBERSHIP_TYPE not in types
        assert env.stack.preview("--refresh", "--expect-no-changes").ok
