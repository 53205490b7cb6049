"""Async plumbing shared by the SDK-backed identity sources (Okta, Entra).

* ``run_sync`` runs a coroutine to completion from synchronous code, on a worker thread with
  its own event loop: the Pulumi program body already runs inside the SDK's asyncio loop, so
  ``asyncio.run`` there would fail, and the IdentitySource protocol is synchronous.
* ``with_retries``: bounded retries with exponential backoff (and the server's hint, e.g.
  ``Retry-After`` / ``X-Rate-Limit-Reset``) on top of the SDKs' own retry logic.
* ``read_groups_concurrently``: every group read at once with a bound; the first failure
  cancels the rest and is raised (fail closed, never a partial answer).
* ``Progress``: periodic progress messages on the ``cf_access.identity`` logger.
* ``SdkSource``: what the Okta and Entra sources share around their SDK calls (settings, the
  synchronous entry point, scrubbed errors, the fan-out over groups, exact-name matching);
  ``MemberTally``: the fail-closed checks on one group's member pages.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from components.identity.base import IdentityReadError, Person, normalise_username

T = TypeVar("T")
logger = logging.getLogger("cf_access.identity")
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


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


def first_line(text: str, limit: int = 300) -> str:
    """The first line of ``text``, cut to ``limit`` characters (for SDK error messages)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


ErrorFactory = Callable[[str | None, str], IdentityReadError]


class MemberTally:
    """One group's members as their pages arrive, failing closed on what would make the answer
    wrong: a user seen twice, two users with one username, a paging link seen before, or a total
    that differs from the one the IdP reported."""

    def __init__(self, group: str, error: ErrorFactory, progress: Progress) -> None:
        self.group = group
        self.pages = 0
        self._error = error
        self._progress = progress
        self._people: dict[str, Person] = {}
        self._by_username: dict[str, str] = {}
        self._links: set[str] = set()

    def next_page(self) -> int:
        self.pages += 1
        return self.pages

    def add(self, uid: str, person: Person) -> None:
        if uid in self._people:
            raise self._error(self.group, f"user {uid} appeared twice while paging (page {self.pages})")
        other = self._by_username.get(person.username)
        if other is not None:
            raise self._error(self.group, f"users {other} and {uid} both map to username {person.username!r}")
        self._people[uid] = person
        self._by_username[person.username] = uid

    def page_done(self, link: str | None, kind: str) -> bool:
        """Report the page; True when ``link`` (the next page's cursor, a ``kind``) is set and new."""
        self._progress.page(self.group, len(self._people), self.pages)
        if not link:
            return False
        if link in self._links:
            raise self._error(self.group, f"paging loop: {kind} repeated at page {self.pages}")
        self._links.add(link)
        return True

    def finish(self, expected: int | None, reported: str) -> tuple[Person, ...]:
        """The members by username, once their number matches ``expected`` (``reported`` says
        where that number came from), if the IdP gave one."""
        if expected is not None and expected != len(self._people):
            raise self._error(
                self.group,
                f"read {len(self._people)} members over {self.pages} page(s) but {reported} "
                f"{expected}: the result looks truncated (if membership is changing right now, run again)",
            )
        self._progress.group_done(self.group, len(self._people), self.pages)
        return tuple(sorted(self._people.values(), key=lambda p: p.username))


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


ClientT = TypeVar("ClientT")
GroupT = TypeVar("GroupT", bound=_HasId)


class SdkSource(ABC, Generic[ClientT, GroupT]):
    """The part of an SDK-backed identity source that does not depend on the SDK.

    A subclass opens its SDK client (``_connect``), finds one group by exact name
    (``_find_group``) and reads its members (``_members``); this class runs those for every
    group, concurrently and fail closed, and turns failures into scrubbed ``IdentityReadError``s.
    """

    idp = "IdP"  # how messages name the IdP ("Okta", "Entra")

    def __init__(
        self,
        *,
        name: str,
        origin: str,
        page_size: int,
        max_concurrency: int,
        retry: RetryPolicy | None,
        sdk_max_retries: int,
        request_timeout: float,
        ca_file: Path | None,
        progress_interval: float,
    ) -> None:
        self.name = name
        self.origin = origin
        self.page_size = page_size
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        self.sdk_max_retries = sdk_max_retries
        self.request_timeout = request_timeout
        self.ca_file = ca_file
        self.progress_interval = progress_interval

    # -- IdentitySource --------------------------------------------------------------------------
    def read_groups(self, names: Collection[str]) -> dict[str, tuple[Person, ...]]:
        wanted = sorted(set(names))
        if not wanted:
            return {}
        return run_sync(lambda: self._read_all(wanted))

    # -- what a subclass provides ----------------------------------------------------------------
    @abstractmethod
    def _secrets(self) -> list[str]:
        """Secret values that must never appear in an error message."""

    @abstractmethod
    def _connect(self) -> AbstractAsyncContextManager[ClientT]:
        """The SDK client, open for the duration of one read."""

    @abstractmethod
    async def _find_group(self, client: ClientT, name: str) -> GroupT: ...

    @abstractmethod
    async def _members(self, client: ClientT, group: GroupT, progress: Progress) -> tuple[Person, ...]: ...

    # -- shared ----------------------------------------------------------------------------------
    def _error(self, group: str | None, message: str) -> IdentityReadError:
        return IdentityReadError(self.name, group, scrub(message, self._secrets()))

    def _tls(self) -> ssl.SSLContext | bool:
        """TLS verification: our CA bundle when one is configured, else the system's."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file is not None else True

    async def _read_all(self, names: list[str]) -> dict[str, tuple[Person, ...]]:
        progress = Progress(self.name, len(names), self.progress_interval)
        progress.start(self.max_concurrency)
        async with self._connect() as client:
            # Find the first group before fanning out, so concurrent reads share the access token.
            first = await self._find_group(client, names[0])

            async def read_one(name: str) -> tuple[Person, ...]:
                group = first if name == names[0] else await self._find_group(client, name)
                return await self._members(client, group, progress)

            result = await read_groups_concurrently(self.name, names, read_one, self.max_concurrency)
        progress.finish()
        return result

    async def _retrying(self, group: str, what: str, once: Callable[[], Awaitable[T]]) -> T:
        """``once`` (one SDK call, which raises ``TransientError`` for what is worth retrying)
        with our retries; any other unexpected exception becomes a scrubbed ``IdentityReadError``."""

        async def guarded() -> T:
            try:
                return await once()
            except (IdentityReadError, TransientError):
                raise
            except Exception as exc:
                raise self._error(
                    group, f"{what} failed: {type(exc).__name__}: {first_line(str(exc))}"
                ) from None

        return await with_retries(guarded, policy=self.retry, source=self.name, group=group, what=what)

    def _one_group(self, name: str, exact: Sequence[GroupT], near: Iterable[str], where: str) -> GroupT:
        """The one group named exactly ``name``; ``near`` (names that differ, e.g. in case) make
        the hint when there is none, ``where`` says where it was looked for."""
        if not exact:
            close = sorted(near)
            hint = (
                f" (did you mean {', '.join(repr(n) for n in close)}? names are case-sensitive)"
                if close
                else ""
            )
            raise self._error(name, f"group not found in {where}{hint}")
        if len(exact) > 1:
            ids = ", ".join(sorted(g.id for g in exact))
            raise self._error(
                name,
                f"{len(exact)} {self.idp} groups are named exactly {name!r} (ids {ids}); "
                "names must be unique",
            )
        return exact[0]

    def _usernames(self, group: str, uid: str, raw: object, mail: object) -> tuple[str, str | None]:
        """The normalised username (from ``raw``) and email, or an error naming the user."""
        try:
            return normalise_username(str(raw)), normalise_username(str(mail)) if mail else None
        except ValueError as exc:
            raise self._error(group, f"user {uid}: {exc}") from None
