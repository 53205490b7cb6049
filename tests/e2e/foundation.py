"""A sandbox foundation plus a cf-access stack pointed at it, for e2e tests."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.cloudfoundry.client import CloudFoundryClient
from components.identity.base import read_snapshot
from components.identity.directory import DirectorySource
from components.mappings import load_mappings
from components.plan import PlanSettings, build_plan
from sandbox.control import SandboxControl
from sandbox.server import SandboxServer
from tests.pulumi_harness import REPO, PulumiStack, new_stack

ORIGIN = "corp-sso"
PROTECTED = ["^(.*/)?admin(@.*)?$"]
SECRET = "sandbox-secret"
SEED: dict[str, Any] = {
    "orgs": [
        {"name": "payments", "spaces": ["dev", "prod"]},
        {"name": "platform", "spaces": ["tools", "sandbox"]},
        {"name": "data", "spaces": ["analytics"]},
    ]
}

# (member key, role type, scope label)
Assignment = tuple[str, str, str]


@dataclass
class Foundation:
    url: str
    control: SandboxControl
    stack: PulumiStack
    mappings_dir: Path
    directory_file: Path

    def roles(self) -> list[Assignment]:
        """Every role with a username, read through the CC API (not state).

        A list, not a set, so duplicates would show."""
        result: list[Assignment] = []
        for origin, username, role_type, org, space in self.control.roles():
            if username is None:
                continue  # UAA clients (the sync client itself)
            scope = f"{org}/{space}" if space else str(org)
            result.append((f"{origin}/{username.casefold()}", role_type, scope))
        return sorted(result)

    def expected(self) -> list[Assignment]:
        """What the plan says CF should hold, from the current files."""
        source = DirectorySource(self.directory_file, name="directory", origin=ORIGIN)
        mappings = load_mappings(self.mappings_dir, known_sources=["directory"])
        snapshot = read_snapshot({"directory": source}, mappings.group_refs("directory"), "directory")
        plan = build_plan(
            mappings,
            snapshot,
            PlanSettings(
                protected_users=tuple(PROTECTED),
                default_source="directory",
                source_origins={"directory": ORIGIN},
            ),
            today=dt.date.today(),
        )
        return sorted((key, m.role, m.scope.label) for m in plan.memberships() for key in m.members)

    def edit_directory(self, change: Callable[[dict[str, Any]], None]) -> None:
        data = yaml.safe_load(self.directory_file.read_text(encoding="utf-8"))
        change(data)
        self.directory_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    def set_status(self, username: str, status: str) -> None:
        def change(data: dict[str, Any]) -> None:
            for user in data["users"]:
                if user["username"].casefold() == username.casefold():
                    user["status"] = status

        self.edit_directory(change)

    def add_to_group(self, group: str, username: str) -> None:
        self.edit_directory(lambda data: data["groups"][group].append(username))


def start_up(stack: PulumiStack) -> subprocess.Popen[str]:
    """``pulumi up`` in the background, in its own session (so a test can kill it whole)."""
    cmd = ["pulumi", "up", "--yes", "--skip-preview", "--stack", stack.stack, "--non-interactive"]
    cmd += ["--config-file", str(stack.config_file)]
    return subprocess.Popen(
        cmd,
        cwd=stack.project_dir,
        env=stack.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for_writes(env: Foundation, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while env.control.counters()["writes"] < at_least:
        assert time.monotonic() < deadline, "the update never started writing"
        time.sleep(0.1)


def wait_for_processing_job(env: Foundation, run: subprocess.Popen[str], timeout: float = 180) -> None:
    """Until ``run`` has a role delete job in flight.

    With ``job_delay_ms`` set long, the sandbox keeps the job PROCESSING and the client polls
    it (for up to 300 s), so the run holds its stack lock until ``control.complete_jobs()``:
    a hold the test ends when it chooses, where a fixed latency raced a loaded runner."""
    deadline = time.monotonic() + timeout
    while not env.control.processing_jobs():
        assert run.poll() is None, "the run ended before it deleted a role"
        assert time.monotonic() < deadline, "the run never started its role deletes"
        time.sleep(0.2)


def cf_access_cli(env: Foundation, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``cf-access`` helper CLI on this foundation's stack (its config file and backend)."""
    exe = Path(sys.executable).parent / "cf-access"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "components.cli"]
    where = [
        "--project-dir",
        str(REPO),
        "--stack",
        env.stack.stack,
        "--config-file",
        str(env.stack.config_file),
    ]
    return subprocess.run(
        [*cmd, *args, *where],
        cwd=REPO,
        env=env.stack.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def use_client(env: Foundation, client: tuple[str, str]) -> None:
    """Run the stack's next commands with this CF client (the environment wins over config)."""
    env.stack.env = {**env.stack.env, "CF_CLIENT_ID": client[0], "CF_CLIENT_SECRET": client[1]}


def grant_by_hand(env: Foundation, username: str, role_type: str, org: str, space: str | None = None) -> None:
    """A role granted outside cf-access (through the CC API), organization_user first for a space role."""
    with CloudFoundryClient(env.url, "cf-access", SECRET) as client:
        user = client.ensure_user(username, ORIGIN)
        org_guid = next(o.guid for o in client.list_orgs([org]))
        if space is None:
            client.create_role(role_type, user.guid, org_guid=org_guid)
            return
        space_guid = next(s.guid for s in client.list_spaces([org_guid], names=[space]))
        roles, _ = client.list_roles(
            types=["organization_user"], user_guids=[user.guid], organization_guids=[org_guid]
        )
        if not roles:
            client.create_role("organization_user", user.guid, org_guid=org_guid)
        client.create_role(role_type, user.guid, space_guid=space_guid)


@contextmanager
def foundation(tmp_path: Path, *, policy: str = "roles-only") -> Iterator[Foundation]:
    mappings_dir = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings_dir)
    directory_file = tmp_path / "directory.yaml"
    shutil.copy(REPO / "directory" / "example.yaml", directory_file)
    with SandboxServer.start(seed=SEED) as server:
        stack = new_stack(REPO, tmp_path)
        stack.config_set("cfApiUrl", server.url)
        stack.config_set("cfClientSecret", SECRET, secret=True)
        stack.config_set("mappingsDir", str(mappings_dir))
        stack.config_set("directoryFile", str(directory_file))
        stack.config_set("directoryOrigin", ORIGIN)
        stack.config_set("deprovisionPolicy", policy)
        stack.config_set_list("protectedUsers", PROTECTED)
        yield Foundation(server.url, SandboxControl(server.url), stack, mappings_dir, directory_file)
