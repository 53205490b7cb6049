"""Upgrading a stack from per-person ``cf:User`` resources to ``cf:UserSet``.

cf-access before the user sets declared one ``cf:User`` per person. The current program
does not register them, so the engine deletes them from state on the first run. With
``deprovisionPolicy: delete-user`` that delete must not deprovision anyone who still has
access (it would lock the whole foundation out); a leaver in the same run is deleted.

The old state is built from a real ``pulumi up`` of the current program plus the
``cf:User`` resources the old program had (same URNs, ids, inputs and pickled provider),
brought in with ``pulumi stack import``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.cloudfoundry.client import CloudFoundryClient
from components.cloudfoundry.providers import UserProvider
from components.summary import parse_preview, render_markdown
from tests.e2e.foundation import ORIGIN, SECRET, Foundation, foundation

pytestmark = pytest.mark.e2e

DAVE = f"{ORIGIN}/dave@corp.com"
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


def cf_users(env: Foundation) -> dict[str, str]:
    with CloudFoundryClient(env.url, "cf-access", SECRET) as client:
        return {f"{u.origin}/{u.username}": u.guid for u in client.list_users() if u.username and u.origin}


def test_upgrade_from_per_person_users_deletes_only_the_leaver(tmp_path: Path) -> None:
    with foundation(tmp_path, policy="delete-user") as env:
        env.stack.up()
        before = cf_users(env)
        old = legacy_state(env.stack.export(), env.stack.stack, before)
        n_legacy = sum(1 for r in old["deployment"]["resources"] if r["type"] == LEGACY_TYPE)
        assert n_legacy >= 10
        state_file = tmp_path / "old-state.json"
        state_file.write_text(json.dumps(old))
        env.stack.run("stack", "import", "--file", str(state_file))
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
        after = cf_users(env)
        assert DAVE not in after, "the leaver is deprovisioned"
        assert set(before) - set(after) == {DAVE}, "nobody else is deleted"
        with CloudFoundryClient(env.url, "cf-access", SECRET) as client:
            assert client.find_uaa_user("dave@corp.com", ORIGIN) is None
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
        old = per_space_components_state(env.stack.export(), env.stack.stack)
        n_spaces = sum(1 for r in old["deployment"]["resources"] if r["type"] == SPACE_ACCESS)
        assert n_spaces >= 4
        state_file = tmp_path / "old-state.json"
        state_file.write_text(json.dumps(old))
        env.stack.run("stack", "import", "--file", str(state_file))

        preview = json.loads(env.stack.run("preview", "--json").output)
        ops = {(s["op"], s["urn"].rpartition("::")[0].rpartition("$")[2]) for s in preview["steps"]}
        assert ("delete", SPACE_ACCESS) in ops, "the old components leave the state"
        membership_ops = {op for op, kind in ops if kind == MEMBERSHIP_TYPE}
        assert membership_ops <= {"same"}, f"memberships keep their identity (alias): {membership_ops}"
        assert preview["changeSummary"].get("delete") == n_spaces, preview["changeSummary"]
        assert set(preview["changeSummary"]) <= {"delete", "same"}, preview["changeSummary"]

        before = env.roles()
        env.control.reset_counters()
        env.stack.up()
        assert env.control.counters()["writes"] == 0, "no CF write"
        assert env.roles() == before == env.expected()
        types = [r["type"] for r in env.stack.export()["deployment"]["resources"]]
        assert SPACE_ACCESS not in types
        assert env.stack.preview("--refresh", "--expect-no-changes").ok
