"""Drive the real Pulumi CLI from tests: a fresh stack on a temporary file backend.

Every stack gets its own backend directory and its own stack config file
(``--config-file``), so tests never touch the checkout's Pulumi.<stack>.yaml
files or each other's state.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


class PulumiCommandFailed(AssertionError):
    pass


@dataclass
class Result:
    args: list[str]
    returncode: int
    output: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def pulumi_environment(backend_dir: Path, passphrase: str = "e2e-passphrase") -> dict[str, str]:
    """Environment for the CLI: our pinned binaries first, offline, local state."""
    subprocess.run(
        [str(REPO / "scripts" / "bootstrap-pulumi.sh")], check=True, capture_output=True, text=True
    )
    bin_dir = (REPO / ".tools" / "pulumi-bin-dir").read_text(encoding="utf-8").strip()
    env = dict(os.environ)
    env.update(
        PATH=f"{bin_dir}:{REPO / 'venv' / 'bin'}:{env.get('PATH', '')}",
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        # ?metadata=skip: no `.attrs` sidecars, which fileblob writes non-atomically
        # (tests/e2e/test_file_backend.py).
        PULUMI_BACKEND_URL=f"file://{backend_dir}?metadata=skip",
        PULUMI_CONFIG_PASSPHRASE=passphrase,
        PULUMI_HOME=str(backend_dir.parent / "pulumi-home"),
        NO_COLOR="1",
    )
    env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
    return env


def backend_dir(env: dict[str, str]) -> Path:
    """The folder of a `file://` backend URL (without its query)."""
    url = env["PULUMI_BACKEND_URL"]
    assert url.startswith("file://"), url
    return Path(url.removeprefix("file://").split("?", 1)[0])


@dataclass
class PulumiStack:
    project_dir: Path
    stack: str
    env: dict[str, str]
    config_file: Path
    history: list[Result] = field(default_factory=list)

    def run(self, *args: str, check: bool = True, timeout: float = 900, input: str | None = None) -> Result:
        cmd = ["pulumi", *args, "--stack", self.stack, "--non-interactive", "--color", "never"]
        if args and args[0] in ("preview", "up", "refresh", "destroy", "config"):
            cmd += ["--config-file", str(self.config_file)]
        started = time.monotonic()
        proc = subprocess.run(
            cmd,
            cwd=self.project_dir,
            env=self.env,
            stdin=subprocess.DEVNULL if input is None else None,
            input=input,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        result = Result(cmd, proc.returncode, proc.stdout, time.monotonic() - started)
        self.history.append(result)
        if check and not result.ok:
            raise PulumiCommandFailed(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}")
        return result

    def config_set(self, key: str, value: str, *, secret: bool = False, path: bool = False) -> None:
        """Values are passed on stdin, so they never show in a process list and
        may start with '-' (PEM keys)."""
        args = ["config", "set", key]
        if secret:
            args.append("--secret")
        if path:
            args.append("--path")
        self.run(*args, input=value)

    def config_set_list(self, key: str, values: list[str]) -> None:
        # `config set --path key[0]` builds a YAML list the program reads as JSON.
        for index, value in enumerate(values):
            self.run("config", "set", "--path", f"{key}[{index}]", value)

    def preview(self, *args: str, check: bool = True) -> Result:
        return self.run("preview", "--diff", *args, check=check)

    def up(self, *args: str, check: bool = True) -> Result:
        return self.run("up", "--yes", "--skip-preview", *args, check=check)

    def refresh(self, *args: str, check: bool = True) -> Result:
        return self.run("refresh", "--yes", "--skip-preview", *args, check=check)

    def destroy(self, *args: str, check: bool = True) -> Result:
        return self.run("destroy", "--yes", "--skip-preview", *args, check=check)

    def export(self) -> dict[str, Any]:
        out = self.run("stack", "export").output
        data: dict[str, Any] = json.loads(out)
        return data

    def export_text(self) -> str:
        return self.run("stack", "export", "--show-secrets=false").output

    def outputs(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.run("stack", "output", "--json").output)
        return data


def new_stack(project_dir: Path, work_dir: Path, prefix: str = "e2e") -> PulumiStack:
    """Create a uniquely named stack on a fresh file backend under ``work_dir``.

    ``stack init`` writes Pulumi.<name>.yaml (with the passphrase salt) into the
    project folder; it is moved to ``work_dir`` at once and used through
    ``--config-file``, so the checkout stays clean.
    """
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    backend = work_dir / "backend"
    backend.mkdir(parents=True, exist_ok=True)
    env = pulumi_environment(backend)
    stack = PulumiStack(project_dir, name, env, work_dir / f"Pulumi.{name}.yaml")
    subprocess.run(
        ["pulumi", "stack", "init", name, "--non-interactive"],
        cwd=project_dir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.move(project_dir / f"Pulumi.{name}.yaml", stack.config_file)
    return stack


def kill_session(leader_pid: int) -> int:
    """SIGKILL every process of the session ``leader_pid`` leads (a CLI started with
    ``start_new_session=True``): the CLI and the plugins it started in their own
    process groups, like a lost CI runner. Returns how many were killed."""
    import signal

    import psutil

    victims = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) == leader_pid:
                victims.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)
    return len(victims)
