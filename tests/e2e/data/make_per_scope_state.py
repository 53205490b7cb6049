"""Write ``per-scope-state.json``: the state the per-scope model leaves behind.

cf-access up to commit e9471e7 declared one ``cf:RoleMembership`` per (scope, role type)
under a ``cf-access:index:OrgAccess`` component per org. This script is run from a
checkout of that commit (it does not exist there: copy it in), against the standard e2e
foundation, and saves the real exported state with the stack name replaced by
``__STACK__`` and the secrets provider dropped (the importing stack brings its own):

    git worktree add /tmp/per-scope e9471e7
    ln -s "$PWD/venv" "$PWD/.tools" /tmp/per-scope/
    cp tests/e2e/data/make_per_scope_state.py /tmp/per-scope/
    (cd /tmp/per-scope && PYTHONPATH=. venv/bin/python make_per_scope_state.py \\
        "$OLDPWD/tests/e2e/data/per-scope-state.json")

``tests/e2e/test_upgrade.py`` imports it into a fresh stack over the same foundation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.e2e.foundation import foundation


def main(out: Path) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp, foundation(Path(tmp)) as env:
        env.stack.up()
        exported = env.stack.export()
        types = [r["type"] for r in exported["deployment"]["resources"]]
        assert "pulumi-python:dynamic/cf:RoleMembership" in types, "run this from the per-scope version"
        exported["deployment"].pop("secrets_providers", None)
        text = json.dumps(exported, indent=1).replace(env.stack.stack, "__STACK__").replace(tmp, "/ci")
        out.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {out} from {commit}: {len(types)} resources, {len(env.roles())} roles")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
