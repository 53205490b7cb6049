"""The toolchain works end to end: real CLI, our language host, the Python
SDK's dynamic-provider plugin, and a provider imported from our package."""

from __future__ import annotations

from pathlib import Path

from tests.pulumi_harness import REPO, new_stack

PROBE = REPO / "tests" / "e2e" / "probe_project"


def test_preview_up_update_refresh_destroy(tmp_path: Path) -> None:
    target = tmp_path / "probe.txt"
    stack = new_stack(PROBE, tmp_path)
    stack.config_set("path", str(target))
    stack.config_set("content", "hello")

    preview = stack.preview()
    assert "+ pulumi-python:dynamic:Resource: (create)" in preview.output
    assert not target.exists(), "preview must not run create"

    stack.up()
    assert target.read_text() == "hello"

    assert stack.preview("--expect-no-changes").ok

    stack.config_set("content", "changed")
    diff = stack.preview().output
    assert "~ pulumi-python:dynamic:Resource: (update)" in diff
    assert '~ content: "hello" => "changed"' in diff
    stack.up()
    assert target.read_text() == "changed"

    # Out-of-band change: refresh reads it back and reports the difference.
    target.write_text("edited by hand")
    refreshed = stack.refresh().output
    assert "~ 1 updated" in refreshed or "1 updated" in refreshed, refreshed
    assert stack.export()["deployment"]["resources"][-1]["outputs"]["content"] == "edited by hand"

    stack.destroy()
    assert not target.exists()
