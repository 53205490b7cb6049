"""The same stack on real object storage: Pulumi's DIY S3 backend on SeaweedFS (127.0.0.1).

README "Team setup". Two clones of the project share one S3 state; the passphrase comes
from ``PULUMI_CONFIG_PASSPHRASE_FILE``. Shown here:

- two ``pulumi up`` at once from the two clones: one is refused by the backend lock;
- ``kill -9`` of ``pulumi up`` mid-run: the checkpoint object stays whole JSON (S3 replaces
  objects atomically: no file-backend ``.json.bak`` step), and the documented recovery
  (cancel, refresh --clear-pending-creates, up) converges;
- ``pulumi stack export`` holds no secret in plain text.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sandbox.control import SandboxControl
from sandbox.server import SandboxServer
from tests.e2e.foundation import (
    ORIGIN,
    PROTECTED,
    SECRET,
    SEED,
    Foundation,
    start_up,
    wait_for_processing_job,
    wait_for_writes,
)
from tests.pulumi_harness import REPO, PulumiStack, kill_session, pulumi_environment
from tests.s3_store import S3Store, s3_store

pytestmark = pytest.mark.e2e

BUCKET = "cf-access-state"
PASSPHRASE = "s3-backend-test-passphrase"


@dataclass
class Clones:
    store: S3Store
    a: Foundation
    b: PulumiStack  # the same stack, from the second clone

    def checkpoint_key(self) -> str:
        return f".pulumi/stacks/cf-access/{self.a.stack.stack}.json"


def _clone(root: Path, name: str) -> Path:
    """A second checkout as far as Pulumi can tell: its own folder, the same program."""
    clone = root / name
    clone.mkdir()
    for entry in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(REPO / entry, clone / entry)
    for entry in ("components", "venv"):
        (clone / entry).symlink_to(REPO / entry)
    return clone


@pytest.fixture(scope="module")
def clones(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clones]:
    work = tmp_path_factory.mktemp("s3")
    mappings_dir = work / "mappings"
    shutil.copytree(REPO / "mappings", mappings_dir)
    directory_file = work / "directory.yaml"
    shutil.copy(REPO / "directory" / "example.yaml", directory_file)
    passphrase_file = work / "passphrase"
    passphrase_file.write_text(PASSPHRASE, encoding="utf-8")
    with s3_store(work) as store, SandboxServer.start(seed=SEED) as server:
        store.create_bucket(BUCKET)
        env = pulumi_environment(work / "unused-file-backend")
        env.pop("PULUMI_CONFIG_PASSPHRASE", None)
        env.update(
            PULUMI_BACKEND_URL=store.backend_url(BUCKET),
            PULUMI_CONFIG_PASSPHRASE_FILE=str(passphrase_file),
            **store.credentials(),
        )
        name = f"s3-{uuid.uuid4().hex[:8]}"
        clone_a, clone_b = _clone(work, "clone-a"), _clone(work, "clone-b")
        subprocess.run(
            ["pulumi", "stack", "init", name, "--non-interactive"],
            cwd=clone_a,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        stack_a = PulumiStack(clone_a, name, dict(env), clone_a / f"Pulumi.{name}.yaml")
        stack_a.config_set("cfApiUrl", server.url)
        stack_a.config_set("cfClientSecret", SECRET, secret=True)
        stack_a.config_set("mappingsDir", str(mappings_dir))
        stack_a.config_set("directoryFile", str(directory_file))
        stack_a.config_set("directoryOrigin", ORIGIN)
        stack_a.config_set_list("protectedUsers", PROTECTED)
        shutil.copy(stack_a.config_file, clone_b / stack_a.config_file.name)  # committed stack file
        stack_b = PulumiStack(clone_b, name, dict(env), clone_b / stack_a.config_file.name)
        foundation = Foundation(server.url, SandboxControl(server.url), stack_a, mappings_dir, directory_file)
        yield Clones(store, foundation, stack_b)


def test_1_killed_up_keeps_a_whole_checkpoint_and_recovers(clones: Clones) -> None:
    env = clones.a
    env.control.set_faults(latency_ms=60)
    running = start_up(env.stack)
    # While the update runs, every checkpoint version read from S3 must be whole JSON.
    seen: list[int] = []
    broken: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                body = clones.store.get(BUCKET, clones.checkpoint_key())
            except httpx.HTTPError:
                body = b""  # not written yet
            if body:
                try:
                    json.loads(body)
                except ValueError as exc:
                    broken.append(f"{len(body)} bytes: {exc}")
                seen.append(len(body))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wait_for_writes(env, 15)
    assert kill_session(running.pid) >= 3  # the CLI, language host, program and provider
    running.communicate(timeout=30)
    stop.set()
    watcher.join(timeout=10)
    assert not broken, broken
    assert len(seen) > 5 and len(set(seen)) > 1, "the watcher saw the checkpoint being rewritten"
    env.control.clear_faults()
    assert len(env.roles()) < len(env.expected())

    keys = clones.store.keys(BUCKET, ".pulumi/")
    checkpoint = json.loads(clones.store.get(BUCKET, clones.checkpoint_key()))  # whole JSON, never cut
    assert checkpoint["checkpoint"]["stack"].endswith(env.stack.stack)
    print("objects after kill -9:", keys)  # the report quotes them (.json.bak or not)
    locked = env.stack.up(check=False)
    assert not locked.ok and "the stack is currently locked by 1 lock(s)" in locked.output, locked.output
    assert "failed to load checkpoint" not in locked.output

    # README "Operations → Interrupted run": cancel, refresh (clearing pending creates), up.
    env.stack.run("cancel", "--yes")
    env.stack.refresh("--clear-pending-creates")
    env.stack.up()
    assert env.roles() == env.expected()
    env.stack.preview("--refresh", "--expect-no-changes")


def test_2_two_clones_at_once_one_is_refused_by_the_lock(clones: Clones) -> None:
    env = clones.a
    # Something for both runs to do: a leaver's role deletes are CC jobs, and the sandbox keeps
    # them PROCESSING (the client polls for up to 300 s) until the test releases them. So the
    # first run holds the lock for exactly as long as the second CLI needs to reach it, on a
    # loaded runner too (fixed latencies raced it: CI once took 23 s, once more than 56 s).
    env.edit_directory(lambda d: d["groups"]["payments-dev"].remove("dave@corp.com"))
    env.control.set_config(job_delay_ms=240_000)
    first = start_up(env.stack)
    try:
        wait_for_processing_job(env, first)
        second = clones.b.up(check=False)
        assert env.control.processing_jobs(), "the first run was still inside its update"
    finally:
        env.control.set_config(job_delay_ms=20)
        env.control.complete_jobs()
        output, _ = first.communicate(timeout=600)
    assert not second.ok
    assert "the stack is currently locked by 1 lock(s)" in second.output, second.output
    print("second clone refused with:", next(ln for ln in second.output.splitlines() if "locked" in ln))
    assert first.returncode == 0, output
    assert env.roles() == env.expected()
    assert not any(user == f"{ORIGIN}/dave@corp.com" for user, _, _ in env.roles())
    clones.b.preview("--refresh", "--expect-no-changes")  # the other clone sees the same state


def test_3_stack_export_holds_no_secret_in_plain_text(clones: Clones) -> None:
    text = clones.a.stack.run("stack", "export").output
    assert SECRET not in text and PASSPHRASE not in text
    state = clones.store.get(BUCKET, clones.checkpoint_key()).decode()
    assert SECRET not in state and PASSPHRASE not in state
    config = clones.a.stack.config_file.read_text(encoding="utf-8")
    assert SECRET not in config and "secure:" in config
