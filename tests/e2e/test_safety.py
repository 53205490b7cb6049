"""Safety and reliability through the real CLI: bad input refused, guards,
interrupted runs, concurrent runs. Every check on CF goes through its API."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.bad_inputs import CASES
from tests.e2e.foundation import Foundation, foundation, start_up, wait_for_processing_job, wait_for_writes
from tests.pulumi_harness import kill_session

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Foundation]:
    with foundation(tmp_path) as f:
        yield f


def test_bad_input_corpus_fails_with_located_messages_and_no_writes(env: Foundation, tmp_path: Path) -> None:
    assert len(CASES) >= 30
    pristine_mappings = tmp_path / "pristine-mappings"
    shutil.copytree(env.mappings_dir, pristine_mappings)
    pristine_directory = env.directory_file.read_bytes()
    failures: list[str] = []
    for case in CASES:
        shutil.rmtree(env.mappings_dir)
        shutil.copytree(pristine_mappings, env.mappings_dir)
        env.directory_file.write_bytes(pristine_directory)
        overrides = case.apply(env.mappings_dir, env.directory_file)
        previous = {key: env.stack.run("config", "get", key, check=False).output.strip() for key in overrides}
        for key, value in overrides.items():
            env.stack.config_set(key, value)
        env.control.reset_counters()
        result = env.stack.preview(check=False)
        writes = env.control.counters()["writes"]
        missing = [text for text in case.expect if text not in result.output]
        if result.ok or missing or "Traceback" in result.output or writes:
            failures.append(
                f"{case.name}: ok={result.ok} writes={writes} missing={missing}\n"
                + "\n".join(line for line in result.output.splitlines() if "error" in line)[:1500]
            )
        for key, value in previous.items():
            if value and "not found" not in value:
                env.stack.config_set(key, value)
            else:
                env.stack.run("config", "rm", key, check=False)
    assert env.roles() == []
    assert not failures, "\n\n".join(failures)


def _write_bulk_inputs(env: Foundation, people: int) -> None:
    """One authoritative org whose single group grants dev space_developer."""
    users = [{"username": f"p{i}@corp.com", "status": "ACTIVE"} for i in range(people)]
    data = {"users": users, "groups": {"bulk-devs": [u["username"] for u in users]}}
    env.directory_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    for file in env.mappings_dir.glob("*.yaml"):
        file.unlink()
    (env.mappings_dir / "payments.yaml").write_text(
        "org: payments\nownership: authoritative\n"
        "spaces:\n  dev:\n    space_developer: {groups: [bulk-devs]}\n",
        encoding="utf-8",
    )


def test_brake_refuses_a_60_percent_removal_and_the_override_applies_it(env: Foundation) -> None:
    _write_bulk_inputs(env, 20)
    env.stack.up()
    assert len(env.roles()) == 40  # 20 developers + their implied organization_user

    def keep_first(n: int) -> None:
        data = yaml.safe_load(env.directory_file.read_text(encoding="utf-8"))
        data["groups"]["bulk-devs"] = data["groups"]["bulk-devs"][:n]
        env.directory_file.write_text(yaml.safe_dump(data), encoding="utf-8")

    keep_first(8)  # 12 people leave: 24 of 40 assignments (60%)
    env.stack.config_set_list("allowShrunkGroups", ["directory:bulk-devs"])  # let the brake speak
    env.control.reset_counters()
    refused = env.stack.up(check=False)
    assert not refused.ok
    assert (
        "mass-removal brake: this run would remove 24 of 40 managed role assignments (60%" in refused.output
    )
    assert "orgs over the limit: payments (-24 of 40, 60%)" in refused.output
    assert "CF_ACCESS_ALLOW_MASS_REMOVAL=true" in refused.output
    assert env.control.counters()["writes"] == 0
    assert len(env.roles()) == 40

    env.stack.env["CF_ACCESS_ALLOW_MASS_REMOVAL"] = "true"
    try:
        applied = env.stack.up()
    finally:
        del env.stack.env["CF_ACCESS_ALLOW_MASS_REMOVAL"]
    assert "allowed by the mass-removal override" in applied.output
    assert len(env.roles()) == 16
    assert env.roles() == env.expected()


def test_directory_failures_stop_before_any_removal(env: Foundation) -> None:
    env.stack.up()
    before = env.roles()
    data = yaml.safe_load(env.directory_file.read_text(encoding="utf-8"))

    def attempt(change: dict[str, object], expect: str) -> None:
        env.directory_file.write_text(yaml.safe_dump({**data, **change}), encoding="utf-8")
        env.control.reset_counters()
        result = env.stack.up(check=False)
        assert not result.ok
        assert expect in result.output, result.output
        assert env.control.counters()["writes"] == 0
        assert env.roles() == before

    groups = dict(data["groups"])
    attempt(
        {"groups": {**groups, "payments-dev": []}}, "group directory:payments-dev returned no active members"
    )
    attempt({"groups": {k: v for k, v in groups.items() if k != "platform-engineers"}}, "platform-engineers")
    # 90% shrink of a group that alone grants a role (simulated with a 10-person group).
    big = [f"p{i}@corp.com" for i in range(10)]
    users = data["users"] + [{"username": u, "status": "ACTIVE"} for u in big]
    env.directory_file.write_text(
        yaml.safe_dump({"users": users, "groups": {**groups, "data-analysts": big}}), encoding="utf-8"
    )
    env.stack.up()
    before = env.roles()
    data = {"users": users, "groups": {**groups, "data-analysts": big}}
    attempt(
        {"groups": {**groups, "data-analysts": big[:1]}}, "group directory:data-analysts has 1 active members"
    )
    # A truncated or unreadable directory file.
    env.directory_file.write_text("users:\n  - {username: a@corp.com\n", encoding="utf-8")
    env.control.reset_counters()
    result = env.stack.up(check=False)
    assert not result.ok and "directory.yaml:" in result.output
    assert env.control.counters()["writes"] == 0
    assert env.roles() == before


def test_killed_up_is_recovered_by_the_documented_procedure(env: Foundation) -> None:
    env.control.set_faults(latency_ms=60)
    running = start_up(env.stack)
    wait_for_writes(env, 15)
    # kill -9 the CLI, the language host, the program and the provider process
    assert kill_session(running.pid) >= 3
    running.communicate(timeout=30)
    env.control.clear_faults()
    partial = env.roles()
    assert len(partial) < len(env.expected())

    locked = env.stack.up(check=False)
    # No "failed to load checkpoint: EOF": the backend writes no sidecar a kill can truncate
    # (tests/e2e/test_file_backend.py).
    assert not locked.ok and "the stack is currently locked" in locked.output, locked.output

    # README "Operations → Interrupted run": cancel, refresh (clearing pending creates), up.
    env.stack.run("cancel", "--yes")
    env.stack.refresh("--clear-pending-creates")
    env.stack.up()
    roles = env.roles()
    assert roles == env.expected()
    assert len(roles) == len(set(roles))
    clean = env.stack.preview("--refresh", "--expect-no-changes")
    assert "interrupted while creating" not in clean.output


def test_concurrent_up_is_refused_by_the_backend_lock(env: Foundation) -> None:
    env.stack.up()
    # The first run removes a leaver's roles; the sandbox holds its delete jobs PROCESSING, so it
    # holds the lock until the second CLI has come and gone (latencies raced a loaded runner).
    env.edit_directory(lambda d: d["groups"]["payments-dev"].remove("dave@corp.com"))
    env.control.set_config(job_delay_ms=240_000)
    first = start_up(env.stack)
    try:
        wait_for_processing_job(env, first)
        second = env.stack.up(check=False)
        assert env.control.processing_jobs(), "the first run was still inside its update"
    finally:
        env.control.set_config(job_delay_ms=20)
        env.control.complete_jobs()
        output, _ = first.communicate(timeout=600)
    assert not second.ok, second.output
    assert "the stack is currently locked by 1 lock(s)" in second.output, second.output
    # Read while the first run writes state: no torn sidecar (test_file_backend.py).
    assert "failed to load checkpoint" not in second.output
    assert first.returncode == 0, output
    assert env.roles() == env.expected()
