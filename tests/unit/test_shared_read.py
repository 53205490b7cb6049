"""The refresh read handed from the provider to the program of the same run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from components.cloudfoundry import shared_read
from components.cloudfoundry.models import CfUser, Org, Role, Space

ENGINE = "127.0.0.1:40111"
API = "http://127.0.0.1:9022"


@pytest.fixture(autouse=True)
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CF_ACCESS_SHARED_READ_DIR", str(tmp_path))
    return tmp_path


def read(taken_at: float | None = None) -> shared_read.FoundationRead:
    return shared_read.FoundationRead(
        orgs=[Org("o1", "payments")],
        spaces=[Space("s1", "dev", "o1")],
        users=[CfUser("u1", "alice@corp.com", "corp-sso")],
        roles=[Role("r1", "space_developer", "u1", None, "s1")],
        taken_at=time.time() if taken_at is None else taken_at,
    )


def test_the_program_of_the_same_run_takes_it_once(folder: Path) -> None:
    shared_read.publish(read(), ENGINE, API, "cf-access")
    taken = shared_read.take(ENGINE, API, "cf-access")
    assert taken is not None and taken.roles == read().roles and taken.users == read().users
    assert shared_read.take(ENGINE, API, "cf-access") is None, "taken once, then gone"
    assert list(folder.iterdir()) == []


def test_another_run_client_or_foundation_does_not_see_it() -> None:
    shared_read.publish(read(), ENGINE, API, "cf-access")
    assert shared_read.take("127.0.0.1:40112", API, "cf-access") is None
    assert shared_read.take(ENGINE, "http://other", "cf-access") is None
    assert shared_read.take(ENGINE, API, "cf-access-reader") is None
    assert shared_read.take(None, API, "cf-access") is None, "no engine address: read CF"


def test_a_stale_or_broken_read_is_ignored(folder: Path) -> None:
    shared_read.publish(read(taken_at=time.time() - shared_read.MAX_AGE_S - 5), ENGINE, API, "cf-access")
    assert shared_read.take(ENGINE, API, "cf-access") is None
    shared_read.publish(read(), ENGINE, API, "cf-access")
    (path,) = folder.iterdir()
    path.write_text("{not json")
    assert shared_read.take(ENGINE, API, "cf-access") is None


def test_the_program_finds_its_engine_address_on_its_command_line() -> None:
    cmdline = ["python", "-u", "exec.py", "--monitor", "127.0.0.1:1", "--engine", ENGINE, "--project", "p"]
    assert shared_read.engine_of_program(cmdline) == ENGINE
    assert shared_read.engine_of_program(["python", "x.py"]) is None
