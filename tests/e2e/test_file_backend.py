"""The local file backend: state a killed or concurrent CLI cannot make unreadable.

Pulumi's file backend stores each blob through gocloud's fileblob. The blob itself is
written to a temporary file and renamed (atomic), but by default fileblob also writes a
`<blob>.attrs` sidecar in place (truncate, then write). A reader that opens the sidecar
in between, or a CLI killed in between, sees an empty sidecar, and every command on the
stack fails with `failed to load checkpoint: EOF` until the sidecar is removed. CI saw
both (a concurrent `up`, and a `kill -9` that left the stack unreadable). cf-access's
backend URLs carry `?metadata=skip`, so no sidecar is ever written.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.pulumi_harness import REPO, backend_dir, pulumi_environment

pytestmark = pytest.mark.e2e


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pulumi", *args, "--non-interactive"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: backend-check\nruntime: yaml\n", encoding="utf-8")
    return project


def test_default_backend_url_writes_no_sidecar(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PULUMI_BACKEND_URL"}
    probe = subprocess.run(
        ["bash", "-c", f'source "{REPO}/scripts/env.sh" && printf %s "$PULUMI_BACKEND_URL"'],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout == f"file://{REPO}/.state/backend?metadata=skip"
    assert (REPO / ".state" / "backend").is_dir()
    assert not (REPO / ".state" / "backend?metadata=skip").exists()


def test_harness_backend_leaves_no_sidecar_a_kill_could_truncate(tmp_path: Path) -> None:
    project = _project(tmp_path)
    backend = tmp_path / "backend"
    backend.mkdir()
    env = pulumi_environment(backend)
    assert backend_dir(env) == backend
    assert _cli(["stack", "init", "s"], project, env).returncode == 0
    assert _cli(["stack", "tag", "set", "owner", "platform", "--stack", "s"], project, env).returncode == 0
    written = sorted(p.relative_to(backend).as_posix() for p in backend.rglob("*") if p.is_file())
    assert written, "the backend wrote nothing"
    assert [p for p in written if p.endswith(".attrs")] == [], written


def test_stack_made_unreadable_by_a_truncated_sidecar_is_recovered_as_documented(tmp_path: Path) -> None:
    """docs/operations.md "Interrupted runs", step 0, for stacks created with a plain
    `file://` URL (before `?metadata=skip`, or by hand)."""
    project = _project(tmp_path)
    backend = tmp_path / "backend"
    backend.mkdir()
    env = pulumi_environment(backend)
    env["PULUMI_BACKEND_URL"] = f"file://{backend}"
    assert _cli(["stack", "init", "s"], project, env).returncode == 0
    sidecar = backend / ".pulumi" / "stacks" / "backend-check" / "s.json.attrs"
    assert sidecar.exists()
    sidecar.write_bytes(b"")  # what a kill -9 between truncate and write leaves

    broken = _cli(["stack", "export", "--stack", "s"], project, env)
    assert broken.returncode != 0
    assert "failed to load checkpoint: EOF" in broken.stderr

    # Step 0: remove the sidecars (they hold only a content type and a checksum) and
    # use the URL with ?metadata=skip from now on.
    for stale in backend.rglob("*.attrs"):
        stale.unlink()
    env["PULUMI_BACKEND_URL"] = f"file://{backend}?metadata=skip"
    recovered = _cli(["stack", "export", "--stack", "s"], project, env)
    assert recovered.returncode == 0, recovered.stderr
    assert '"version": 3' in recovered.stdout
    assert list(backend.rglob("*.attrs")) == []
