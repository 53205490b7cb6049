"""Retry policy for the Cloud Foundry / UAA client.

What is retried: HTTP 429/500/502/503/504 responses, connect errors, timeouts
and dropped connections. Waits use exponential backoff with full jitter
(``uniform(0, min(max, base * 2**(n-1)))``) unless the server said how long to
wait: ``Retry-After`` (seconds or an HTTP date) or, on a 429,
``X-RateLimit-Reset`` (Unix epoch seconds). Server hints are capped by the
maximum backoff.

Ambiguity: a failure is *ambiguous* when the server may have processed the
request (5xx, read timeouts, dropped connections). Idempotent requests are
simply retried; non-idempotent writes pass a ``recover`` callback that looks up
whether the write already happened before trying again (see
``CloudFoundryClient._with_retries``).
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable

import httpx
import tenacity

RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})

# Transport errors worth retrying. Anything else (invalid URL, unsupported
# protocol, TLS misconfiguration surfaced as ConnectError is the exception) is
# a configuration problem and fails fast.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,  # connect / read / write / pool timeouts
    httpx.NetworkError,  # connect / read / write / close errors
    httpx.RemoteProtocolError,  # server dropped the connection mid-exchange
)

# Failures where the request provably never reached the server's handler.
UNAMBIGUOUS_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)


class RetryableStatus(Exception):
    """Internal signal: the server answered with a retryable status.

    Converted into a :class:`CloudFoundryError`/:class:`UaaError` when the
    retries are exhausted. Never escapes the client.
    """

    def __init__(self, response: httpx.Response, method: str, path: str, service: str = "cc") -> None:
        self.response = response
        self.method = method
        self.path = path
        self.service = service
        super().__init__(f"{method} {path}: HTTP {response.status_code}")


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, (RetryableStatus, *RETRYABLE_TRANSPORT_ERRORS))


def is_ambiguous(exc: BaseException) -> bool:
    """Might the failed request have been applied by the server?"""
    if isinstance(exc, RetryableStatus):
        # 429 is rejected by the rate limiter before the request is handled.
        return exc.response.status_code != 429
    if isinstance(exc, UNAMBIGUOUS_TRANSPORT_ERRORS):
        return False
    return isinstance(exc, RETRYABLE_TRANSPORT_ERRORS)


def parse_retry_after(value: str, now_epoch: float) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None
        return None
    return max(0.0, when.timestamp() - now_epoch)


def server_wait_hint(response: httpx.Response, now_epoch: float) -> float | None:
    """How long the server asked us to wait, if it said so."""
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        parsed = parse_retry_after(retry_after, now_epoch)
        if parsed is not None:
            return parsed
    # X-RateLimit-Reset is sent on *every* response when the CC rate limiter
    # is on, and points at the end of a (possibly 60 min) window: only a 429
    # means "wait until then".
    if response.status_code == 429:
        reset = response.headers.get("X-RateLimit-Reset")
        if reset is not None:
            try:
                return max(0.0, float(reset.strip()) - now_epoch)
            except ValueError:
                return None
    return None


class BackoffWait:
    """tenacity wait strategy: server hint if present, else full-jitter exponential backoff."""

    def __init__(
        self,
        base_s: float,
        max_s: float,
        *,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float],
    ) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self._rng = rng or random.Random()
        self._wall_clock = wall_clock

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(exc, RetryableStatus):
            hint = server_wait_hint(exc.response, self._wall_clock())
            if hint is not None:
                return min(hint, self.max_s)
        attempt = max(1, retry_state.attempt_number)
        ceiling = min(self.max_s, self.base_s * (2 ** (attempt - 1)))
        return self._rng.uniform(0.0, ceiling)
