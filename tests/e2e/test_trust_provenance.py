"""Trust: editing a mapping file without changing any grant changes nothing in state or CF.

Provenance stored in resource inputs names the file, not the line, so a comment
inserted at the top of a mapping file must leave ``pulumi preview
--expect-no-changes`` green. The same ``up`` also checks the audit trail's
``update`` field comes from the real ``pulumi up`` process tree (the provider
runs under the SDK's launcher script, whose parent is the CLI).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.audit import read_events
from tests.e2e.foundation import foundation

pytestmark = pytest.mark.e2e


def test_comment_line_at_the_top_of_a_mapping_file_is_no_change(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    with foundation(tmp_path) as env:
        env.stack.config_set("auditLog", str(log))
        env.stack.env.pop("CF_ACCESS_UPDATE_KIND", None)  # the kind must come from the process tree
        env.stack.up()

        events = list(read_events(log))
        assert events, "the first up grants roles, so it audits"
        assert {e["update"] for e in events} == {"up"}

        state = env.stack.export_text()
        assert "group directory:payments-dev (mappings/payments.yaml)" in state
        assert not re.search(r"\(mappings/[\w./-]+\.yaml:\d+\)", state), "no line numbers in state"

        payments = env.mappings_dir / "payments.yaml"
        payments.write_text(
            "# Reviewed 2026-12-01: owners unchanged.\n" + payments.read_text(encoding="utf-8"),
            encoding="utf-8",
        )
        roles_before = env.roles()
        result = env.stack.preview("--expect-no-changes", check=False)
        assert result.ok, result.output
        assert env.roles() == roles_before
