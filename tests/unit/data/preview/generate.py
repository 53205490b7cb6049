"""Regenerate the ``pulumi preview --json`` fixtures in this folder from the real CLI.

    PYTHONPATH=. venv/bin/python tests/unit/data/preview/generate.py

Each scenario starts a fresh sandbox foundation (``tests/e2e/foundation.py``), drives the
real ``pulumi`` CLI and the program into the state it describes, and saves the preview
JSON. The output is normalised so the committed files do not churn: the random stack
name becomes ``ci``, temporary paths ``/ci``, the sandbox port ``9022``, and the bulky
parts the summary never reads (stack traces, source positions, pickled providers,
timestamps) are dropped.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.foundation import ORIGIN, SECRET, Foundation, foundation

HERE = Path(__file__).resolve().parent
DROP = {"stackTrace", "sourcePosition", "__provider", "created", "modified", "propertyDependencies"}


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in DROP}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def normalise(text: str, env: Foundation, tmp: Path) -> str:
    start = text.find("{")
    data = _strip(json.JSONDecoder().raw_decode(text[start:])[0])
    data.pop("duration", None)
    out = json.dumps(data, indent=1, sort_keys=False)
    out = out.replace(env.stack.stack, "ci").replace(str(tmp), "/ci")
    out = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:9022", out)
    out = re.sub(r"pulumi-python::default::[0-9a-f-]+", "pulumi-python::default::00000000", out)
    assert SECRET not in out
    return out + "\n"


def preview_json(env: Foundation, *args: str) -> str:
    result = env.stack.run("preview", "--json", *args, check=False)
    return result.output


def save(name: str, env: Foundation, tmp: Path, text: str) -> None:
    (HERE / f"{name}.json").write_text(normalise(text, env, tmp), encoding="utf-8")
    print(f"wrote {name}.json", file=sys.stderr)


def expire_soon(env: Foundation, days: int) -> None:
    path = env.mappings_dir / "platform.yaml"
    until = (dt.date.today() + dt.timedelta(days=days)).isoformat()
    path.write_text(re.sub(r"until: \S+\}", f"until: {until}}}", path.read_text()), encoding="utf-8")


def add_person(env: Foundation, username: str, group: str) -> None:
    def change(data: dict[str, Any]) -> None:
        data["users"].append({"username": username, "email": username, "status": "ACTIVE"})
        data["groups"][group].append(username)

    env.edit_directory(change)


def revoke(env: Foundation, key: str, role_type: str, org: str, space: str) -> None:
    from tests.e2e.test_program import revoke_by_hand

    revoke_by_hand(env, key, role_type, f"{org}/{space}")


def grant(env: Foundation, username: str, role_type: str, org: str, space: str | None) -> None:
    from tests.e2e.foundation import grant_by_hand

    grant_by_hand(env, username, role_type, org, space)


Scenario = Callable[[Foundation], str]


def s_create(env: Foundation) -> str:
    return preview_json(env)


def s_noop(env: Foundation) -> str:
    env.stack.up()
    return preview_json(env)


def s_add(env: Foundation) -> str:
    env.stack.up()
    env.add_to_group("payments-dev", "judy@corp.com")
    return preview_json(env)


def carol_leaves(env: Foundation, status: str) -> None:
    """Carol is payments-oncall's only member: her leaving empties the group, which the
    empty-group guard refuses unless the group is allowed to be empty."""
    env.stack.config_set_list("allowEmptyGroups", ["directory:payments-oncall"])
    env.set_status("carol@corp.com", status)


def s_remove(env: Foundation) -> str:
    env.stack.up()
    carol_leaves(env, "SUSPENDED")
    return preview_json(env)


def s_user_create(env: Foundation) -> str:
    env.stack.up()
    add_person(env, "kim@corp.com", "data-engineers")
    return preview_json(env)


def s_user_delete(env: Foundation) -> str:
    env.stack.up()
    carol_leaves(env, "DEPROVISIONED")
    return preview_json(env)


def s_drift(env: Foundation) -> str:
    env.stack.up()
    revoke(env, f"{ORIGIN}/alice@corp.com", "space_developer", "payments", "dev")
    grant(env, "mallory@corp.com", "space_developer", "payments", "dev")
    return preview_json(env, "--refresh", "--expect-no-changes")


def s_replace(env: Foundation) -> str:
    env.stack.up()
    urn = next(
        r["urn"]
        for r in env.stack.export()["deployment"]["resources"]
        if r["urn"].endswith("cf:OrgAccess::data")
    )
    return preview_json(env, "--replace", urn)


def s_org_removed(env: Foundation) -> str:
    env.stack.up()
    (env.mappings_dir / "data.yaml").unlink()
    return preview_json(env)


def s_change(env: Foundation) -> str:
    """The sample PR: a joiner, a leaver, a new person, a grant expiring soon."""
    env.stack.up()
    env.add_to_group("payments-dev", "judy@corp.com")
    carol_leaves(env, "SUSPENDED")
    add_person(env, "kim@corp.com", "data-engineers")
    expire_soon(env, 3)
    return preview_json(env)


SCENARIOS: dict[str, tuple[Scenario, str]] = {
    "create": (s_create, "roles-only"),
    "noop": (s_noop, "roles-only"),
    "add": (s_add, "roles-only"),
    "remove": (s_remove, "roles-only"),
    "user_create": (s_user_create, "roles-only"),
    "user_delete": (s_user_delete, "delete-user"),
    "drift": (s_drift, "roles-only"),
    "replace": (s_replace, "roles-only"),
    "org_removed": (s_org_removed, "roles-only"),
    "change": (s_change, "roles-only"),
}


def main(names: list[str]) -> None:
    for name in names or list(SCENARIOS):
        scenario, policy = SCENARIOS[name]
        tmp = Path(tempfile.mkdtemp(prefix="cfa-preview-"))
        try:
            with foundation(tmp, policy=policy) as env:
                save(name, env, tmp, scenario(env))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
