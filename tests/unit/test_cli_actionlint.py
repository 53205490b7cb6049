"""The CI workflows pass actionlint (built from its Go module by scripts/actionlint.sh),
and the linter really lints: a deliberately broken workflow fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.pulumi_harness import REPO

SCRIPT = REPO / "scripts" / "actionlint.sh"
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def actionlint(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def test_workflows_exist() -> None:
    names = {p.name for p in WORKFLOWS}
    assert names == {"cf-access-preview.yml", "cf-access-up.yml", "cf-access-drift.yml"}


def test_workflows_are_clean() -> None:
    result = actionlint("-no-color", *(str(p) for p in WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_broken_workflow_is_flagged(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = (REPO / ".github" / "workflows" / "cf-access-drift.yml").read_text()
    text = text.replace("steps.drift.outputs.exit", "steps.drfit.outputs.exit")  # a typo in a step id
    text = text.replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    timeout-minutes: soon")
    broken.write_text(text)
    result = actionlint("-no-color", str(broken))
    assert result.returncode == 1
    assert "drfit" in result.stdout
    assert "timeout-minutes" in result.stdout


def test_gitlab_ci_is_valid_yaml_with_the_three_flows() -> None:
    data = yaml.safe_load((REPO / ".gitlab-ci.yml").read_text())
    assert {"validate", "preview", "up", "drift"} <= set(data)
    assert data["up"]["environment"]["name"] == "cf-access-production"
    assert "--expect-no-changes" in " ".join(data["drift"]["script"])
    assert data["default"]["id_tokens"]["ENTRA_OIDC_TOKEN"]["aud"] == "api://AzureADTokenExchange"


def test_workflows_use_oidc_and_gate_up() -> None:
    preview = yaml.safe_load((REPO / ".github/workflows/cf-access-preview.yml").read_text())
    up = yaml.safe_load((REPO / ".github/workflows/cf-access-up.yml").read_text())
    drift = yaml.safe_load((REPO / ".github/workflows/cf-access-drift.yml").read_text())
    for wf in (preview, up, drift):
        assert wf["permissions"]["id-token"] == "write"
    assert up["jobs"]["up"]["environment"] == "cf-access-production"
    assert up["concurrency"]["cancel-in-progress"] is False
    assert "--refresh --expect-no-changes" in yaml.safe_dump(drift)
