"""Async plumbing shared by the SDK-backed identity sources (Okta, Entra).

* ``run_sync`` runs a coroutine to completion from synchronous code, on a worker thread with
  its own event loop: the Pulumi program body already runs inside the SDK's asyncio loop, so
  ``asyncio.run`` there would fail, and the IdentitySource protocol is synchronous.
* ``with_retries``: bounded retries with exponential backoff (and the server's hint, e.g.
  ``Retry-After`` / ``X-Rate-Limit-Reset``) on top of the SDKs' own retry logic.
* ``read_groups_concurrently``: every group read at once with a bound; the first failure
  cancels the rest and is raised (fail closed, never a partial answer).
* ``Progress``: periodic progress messages on the ``cf_access.identity`` logger.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from components.identity.base import IdentityReadError

T = TypeVar("T")
logger = logging.getLogger("cf_access.identity")


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``factory()`` on a fresh event loop in a worker thread and return its result."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cf-access-identity") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


class TransientError(Exception):
    """A failure worth retrying (429, 5xx, connection error, timeout).

    ``retry_after`` is the server's hint in seconds, if it gave one. The message must
    already be safe to show (no secrets).
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """Our retries on top of the SDK's: ``attempts`` in total per request, backoff doubling
    from ``backoff_seconds`` up to ``max_backoff_seconds`` (with jitter); a server hint wins
    but is capped at ``max_backoff_seconds`` too."""

    attempts: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0

    def delay(self, attempt: int, hint: float | None) -> float:
        if hint is not None and hint > 0:
            return min(hint, self.max_backoff_seconds)
        base = self.backoff_seconds * (2 ** (attempt - 1))
        return float(min(base * (0.5 + random.random() / 2), self.max_backoff_seconds))


async def with_retries(
    op: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    source: str,
    group: str | None,
    what: str,
) -> T:
    """Run ``op`` until it succeeds, retrying ``TransientError`` up to ``policy.attempts`` times.

    ``IdentityReadError`` (and anything else) passes straight through; running out of
    attempts raises ``IdentityReadError`` naming the source, group and last failure.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return await op()
        except TransientError as exc:
            if attempt >= policy.attempts:
                raise IdentityReadError(
                    source, group, f"{what} failed after {attempt} attempt(s): {exc.message}"
                ) from None
            wait = policy.delay(attempt, exc.retry_after)
            logger.warning(
                "%s: %s failed (%s); retry %d/%d in %.1fs",
                f"{source}:{group}" if group else source,
                what,
                exc.message,
                attempt,
                policy.attempts - 1,
                wait,
            )
            await asyncio.sleep(wait)


async def read_groups_concurrently(
    source: str,
    names: Collection[str],
    read_one: Callable[[str], Awaitable[T]],
    max_concurrency: int,
) -> dict[str, T]:
    """``read_one`` for every name, at most ``max_concurrency`` at a time; all or an error.

    The first failing group cancels the others; its ``IdentityReadError`` is raised (an
    unexpected exception becomes one naming the group). Other groups that failed by then
    are mentioned in the message.
    """
    semaphore = asyncio.Semaphore(max(1, max_concurrency))
    results: dict[str, T] = {}

    async def guarded(name: str) -> None:
        async with semaphore:
            results[name] = await read_one(name)

    tasks = {name: asyncio.create_task(guarded(name), name=f"{source}:{name}") for name in names}
    failures: list[tuple[str, BaseException]] = []
    pending: Iterable[asyncio.Task[None]] = tasks.values()
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for name, task in tasks.items():
                if task in done and not task.cancelled() and task.exception() is not None:
                    failures.append((name, task.exception()))  # type: ignore[arg-type]
            if failures:
                break
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    if failures:
        failures.sort(key=lambda f: f[0])
        name, exc = failures[0]
        others = [n for n, _ in failures[1:]]
        suffix = f" (also failed: {', '.join(others)})" if others else ""
        if isinstance(exc, IdentityReadError):
            raise IdentityReadError(exc.source, exc.group, exc.message + suffix) from None
        raise IdentityReadError(source, name, f"read failed: {type(exc).__name__}: {exc}{suffix}") from None
    return results


class Progress:
    """Logs progress of a long read at most every ``interval`` seconds (and at the end)."""

    def __init__(self, source: str, total_groups: int, interval: float = 5.0) -> None:
        self.source = source
        self.total_groups = total_groups
        self.interval = interval
        self.started = time.monotonic()
        self._last = self.started
        self.groups_done = 0
        self.members = 0
        self.pages = 0
        self.requests = 0

    def page(self, group: str, members_so_far: int, page_number: int) -> None:
        self.pages += 1
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            logger.info(
                "%s: reading group %r: %d members so far (page %d); %d/%d groups done, %.0fs elapsed",
                self.source,
                group,
                members_so_far,
                page_number,
                self.groups_done,
                self.total_groups,
                now - self.started,
            )

    def group_done(self, group: str, members: int, pages: int) -> None:
        self.groups_done += 1
        self.members += members
        logger.debug("%s: group %r: %d members in %d page(s)", self.source, group, members, pages)

    def start(self, max_concurrency: int) -> None:
        logger.info(
            "%s: reading %d group(s), up to %d at a time", self.source, self.total_groups, max_concurrency
        )

    def finish(self) -> None:
        logger.info(
            "%s: read %d group(s), %d memberships, %d page(s) in %.1fs",
            self.source,
            self.groups_done,
            self.members,
            self.pages,
            time.monotonic() - self.started,
        )


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in ``text`` with ``***`` (multi-line secrets such as PEM keys
    also line by line, so a partial quote of a key is caught too)."""
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        text = text.replace(secret, "***")
        for line in secret.splitlines():
            if len(line.strip()) >= 16:
                text = text.replace(line.strip(), "***")
    return text
