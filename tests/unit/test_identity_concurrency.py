"""The async plumbing under the SDK-backed sources: worker-thread loop, retries, bounded fan-out."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from components.identity.base import IdentityReadError
from components.identity.concurrency import (
    Progress,
    RetryPolicy,
    TransientError,
    read_groups_concurrently,
    run_sync,
    scrub,
    with_retries,
)


def test_run_sync_from_plain_code_and_inside_a_running_loop() -> None:
    async def work() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert run_sync(work).startswith("cf-access-identity")

    async def program() -> str:  # a Pulumi program body runs inside a loop
        return run_sync(work)

    assert asyncio.run(program()).startswith("cf-access-identity")


def test_run_sync_propagates_errors() -> None:
    async def boom() -> None:
        raise IdentityReadError("okta", "g", "nope")

    with pytest.raises(IdentityReadError, match="okta:g: nope"):
        run_sync(boom)


def test_retries_until_success_and_honours_hint() -> None:
    calls: list[float] = []

    async def flaky() -> str:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) < 3:
            raise TransientError("HTTP 429", retry_after=0.05 if len(calls) == 1 else None)
        return "ok"

    policy = RetryPolicy(attempts=3, backoff_seconds=0.01, max_backoff_seconds=1)
    assert asyncio.run(with_retries(flaky, policy=policy, source="s", group="g", what="page 1")) == "ok"
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.045, "server hint used"


def test_retries_exhausted_become_identity_read_error() -> None:
    async def down() -> None:
        raise TransientError("HTTP 503 ServiceUnavailable")

    policy = RetryPolicy(attempts=2, backoff_seconds=0.0, max_backoff_seconds=0.0)
    with pytest.raises(IdentityReadError) as info:
        asyncio.run(with_retries(down, policy=policy, source="entra", group="g", what="member page 2"))
    assert str(info.value) == (
        "identity source entra:g: member page 2 failed after 2 attempt(s): HTTP 503 ServiceUnavailable"
    )


def test_permanent_errors_are_not_retried() -> None:
    calls = 0

    async def denied() -> None:
        nonlocal calls
        calls += 1
        raise IdentityReadError("okta", "g", "not authorised")

    with pytest.raises(IdentityReadError):
        asyncio.run(with_retries(denied, policy=RetryPolicy(5, 0, 0), source="okta", group="g", what="x"))
    assert calls == 1


def test_backoff_doubles_and_is_capped() -> None:
    p = RetryPolicy(attempts=10, backoff_seconds=1.0, max_backoff_seconds=5.0)
    assert 0.5 <= p.delay(1, None) <= 1.0
    assert 1.0 <= p.delay(2, None) <= 2.0
    assert p.delay(8, None) <= 5.0
    assert p.delay(1, 30.0) == 5.0, "a server hint is capped too"
    assert p.delay(1, 2.0) == 2.0


def test_concurrency_is_bounded_and_all_answered() -> None:
    active = 0
    peak = 0

    async def read(name: str) -> str:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return name.upper()

    names = [f"g{i}" for i in range(20)]
    got = asyncio.run(read_groups_concurrently("s", names, read, 4))
    assert got == {n: n.upper() for n in names}
    assert peak == 4


def test_first_failure_cancels_the_rest_and_names_others() -> None:
    finished: list[str] = []

    async def read(name: str) -> str:
        if name in ("a", "b"):
            await asyncio.sleep(0.01)
            raise IdentityReadError("s", name, "broken")
        await asyncio.sleep(5)
        finished.append(name)
        return name

    with pytest.raises(IdentityReadError) as info:
        asyncio.run(read_groups_concurrently("s", ["a", "b", "c", "d"], read, 8))
    assert info.value.group == "a"
    assert str(info.value) == "identity source s:a: broken (also failed: b)"
    assert finished == [], "slow reads were cancelled"


def test_unexpected_exception_becomes_identity_read_error() -> None:
    async def read(name: str) -> str:
        raise KeyError("surprise")

    with pytest.raises(IdentityReadError, match="s:x: read failed: KeyError: 'surprise'"):
        asyncio.run(read_groups_concurrently("s", ["x"], read, 2))


def test_scrub_removes_secrets_and_pem_lines() -> None:
    pem = "-----BEGIN KEY-----\nABCDEFGHIJKLMNOPQRSTUVWX\nYZ0123456789abcdefghijkl\n-----END KEY-----"
    text = "failed: token=s3cr3t-token and key line YZ0123456789abcdefghijkl"
    assert scrub(text, ["s3cr3t-token", pem, ""]) == "failed: token=*** and key line ***"


def test_progress_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cf_access.identity")
    progress = Progress("okta", 2, interval=0.0)
    progress.start(8)
    progress.page("g", 200, 1)
    progress.group_done("g", 200, 1)
    progress.finish()
    messages = [r.getMessage() for r in caplog.records if r.name == "cf_access.identity"]
    assert messages[0] == "okta: reading 2 group(s), up to 8 at a time"
    assert any("reading group 'g': 200 members so far (page 1)" in m for m in messages)
    assert messages[-1].startswith("okta: read 1 group(s), 200 memberships, 1 page(s) in ")
