"""No orphans: when the `pulumi` CLI dies abruptly, the language host, the program and the
dynamic provider it started exit on their own within seconds (they watch the engine)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.e2e.foundation import Foundation, foundation

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Foundation]:
    with foundation(tmp_path) as f:
        yield f


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        children: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
        return children
    except psutil.NoSuchProcess:
        return []


def _is_provider(proc: psutil.Process) -> bool:
    try:
        return "pulumi.dynamic" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def test_killing_the_cli_leaves_no_process_of_the_run(env: Foundation) -> None:
    env.stack.up()
    env.control.set_faults(latency_ms=1500)  # a slow CF: the refresh is mid-flight when the CLI dies
    stack = env.stack
    command = ["pulumi", "preview", "--refresh", "--stack", stack.stack, "--non-interactive"]
    cli = subprocess.Popen(
        [*command, "--config-file", str(stack.config_file)],
        cwd=stack.project_dir,
        env=stack.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        run: list[psutil.Process] = []
        while time.monotonic() < deadline:
            run = _descendants(cli.pid)
            if any(_is_provider(p) for p in run):
                break
            time.sleep(0.2)
        assert any(_is_provider(p) for p in run), "the provider never started"
        time.sleep(1.0)
        run = _descendants(cli.pid)
        os.kill(cli.pid, signal.SIGKILL)  # the CLI alone, as when a CI runner loses it
        cli.wait(timeout=10)
        gone, alive = psutil.wait_procs(run, timeout=15)
        names = [" ".join(p.cmdline())[:120] for p in alive if p.is_running()]
        assert not names, f"still running 15 s after the CLI died: {names}"
        assert len(gone) == len(run)
    finally:
        env.control.clear_faults()
        for proc in _descendants(cli.pid):
            proc.kill()
        if cli.poll() is None:
            cli.kill()
