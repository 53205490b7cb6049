"""The shipped CI definitions keep the write client away from previews (docs/permissions.md).

Parsed as YAML, not grepped: what a job can read is its own definition plus what it
inherits (workflow ``env``; GitLab ``default`` and top-level ``variables``), so those
are checked together.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
WRITE_MARKERS = ("CF_WRITE_CLIENT", "cf-access-production")
READ_ENVIRONMENT = "cf-access-read"


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def _text(*parts: Any) -> str:
    return json.dumps(parts, default=str)


def _github_jobs() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(file, job id, job, workflow-level env) for every GitHub workflow job."""
    out = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = _load(path)
        for job_id, job in workflow["jobs"].items():
            out.append((path.name, job_id, job, workflow.get("env") or {}))
    return out


def _run_lines(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job.get("steps", []))


def _commands(text: str, command: str) -> list[str]:
    """Shell lines that run ``pulumi <command>`` (not messages that mention it)."""
    return [line for line in text.splitlines() if re.search(rf"(^|;)\s*pulumi {command}\b", line.strip())]


def _environment(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def test_every_github_job_is_classified() -> None:
    names = {(f, j) for f, j, _, _ in _github_jobs()}
    assert names == {
        ("cf-access-drift.yml", "drift"),
        ("cf-access-preview.yml", "preview"),
        ("cf-access-up.yml", "up"),
    }


@pytest.mark.parametrize(
    "file,job_id", [("cf-access-preview.yml", "preview"), ("cf-access-drift.yml", "drift")]
)
def test_github_preview_and_drift_jobs_reference_no_write_secret(file: str, job_id: str) -> None:
    (job, workflow_env) = next((j, e) for f, i, j, e in _github_jobs() if (f, i) == (file, job_id))
    seen = _text(job, workflow_env)
    for marker in WRITE_MARKERS:
        assert marker not in seen, f"{file}:{job_id} references {marker}"
    assert _environment(job) == READ_ENVIRONMENT
    assert job["env"]["CF_CLIENT_SECRET"] == "${{ secrets.CF_READ_CLIENT_SECRET }}"
    assert job["env"]["CF_CLIENT_ID"] == "${{ secrets.CF_READ_CLIENT_ID }}"
    previews = _commands(_run_lines(job), "preview")
    assert previews and all("--refresh" in line for line in previews)
    assert not _commands(_run_lines(job), "up")


def test_github_up_job_alone_gets_the_write_client_behind_the_environment() -> None:
    (job, workflow_env) = next((j, e) for f, i, j, e in _github_jobs() if i == "up")
    assert _environment(job) == "cf-access-production"
    assert job["env"]["CF_CLIENT_SECRET"] == "${{ secrets.CF_WRITE_CLIENT_SECRET }}"
    assert "CF_CLIENT_SECRET" not in workflow_env and "CF_WRITE" not in _text(workflow_env)
    ups = _commands(_run_lines(job), "up")
    assert ups and all("--refresh" in line for line in ups)


def _gitlab() -> dict[str, Any]:
    return _load(REPO / ".gitlab-ci.yml")


@pytest.mark.parametrize("job_id", ["preview", "drift", "validate"])
def test_gitlab_read_jobs_reference_no_write_secret(job_id: str) -> None:
    ci = _gitlab()
    job = ci[job_id]
    seen = _text(job, ci.get("default"), ci.get("variables"))
    for marker in WRITE_MARKERS:
        assert marker not in seen, f".gitlab-ci.yml:{job_id} references {marker}"
    if job_id != "validate":
        assert _environment(job) == READ_ENVIRONMENT
        assert job["environment"]["action"] == "access"
        assert job["variables"]["CF_CLIENT_SECRET"] == "$CF_READ_CLIENT_SECRET"
        previews = _commands("\n".join(job["script"]), "preview")
        assert previews and all("--refresh" in s for s in previews)


def test_gitlab_up_job_alone_gets_the_write_client() -> None:
    ci = _gitlab()
    job = ci["up"]
    assert _environment(job) == "cf-access-production"
    assert job["variables"]["CF_CLIENT_SECRET"] == "$CF_WRITE_CLIENT_SECRET"
    ups = _commands("\n".join(job["script"]), "up")
    assert ups and all("--refresh" in s for s in ups)
    users = [k for k, v in ci.items() if isinstance(v, dict) and "CF_WRITE_CLIENT" in _text(v)]
    assert users == ["up"]
