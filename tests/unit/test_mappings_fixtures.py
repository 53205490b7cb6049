# ruff: noqa: E501  (expected messages are kept on one line so they read like the real output)
"""A realistic broken mappings tree: one run reports every problem, in file/line order."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.mappings import MappingError, load_mappings

DATA = Path(__file__).resolve().parent / "data"


def test_broken_tree_reports_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    with pytest.raises(MappingError) as info:
        load_mappings("mappings_bad", known_sources=["directory", "okta"])
    assert str(info.value).splitlines() == [
        "mappings_bad/payments-copy.yaml:5:16: spaces.dev.space_developer.groups[0]: 'okta: payments-dev' is read by YAML as a key/value pair, not a name; write 'okta:payments-dev' (no space after ':') or quote it",
        "mappings_bad/payments.yaml:3:6: org: org 'payments' is already defined in mappings_bad/payments-copy.yaml:1",
        "mappings_bad/payments.yaml:4:12: ownership: unknown ownership 'Authoritative', expected 'additive' or 'authoritative' (did you mean 'authoritative'?)",
        "mappings_bad/payments.yaml:7:30: org_roles.organization_manager.groups[1]: group 'payments-leads' is listed twice (first at line 7)",
        "mappings_bad/payments.yaml:8:3: org_roles.space_manager: 'space_manager' is a space role; put it under spaces.<space>",
        "mappings_bad/payments.yaml:12:5: spaces.dev.space_develper: unknown space role type 'space_develper' (did you mean 'space_developer'?)",
        "mappings_bad/payments.yaml:14:16: spaces.dev.space_auditor.groups[0]: group name 'pay ments\\n' contains a line break",
        "mappings_bad/payments.yaml:18:39: spaces.prod.space_developer.users[0].until: expected a date as YYYY-MM-DD, got '2026-13-01'",
        "mappings_bad/payments.yaml:19:3: spaces.dev: duplicate key 'dev' (first defined at line 11)",
    ]
    assert len(info.value.problems) == 9
