"""Fault injection knobs and a CC-like rate limiter.

Faults are off unless configured. Each request (optionally only under ``path_prefix``) gets
``latency_ms`` ± ``jitter_ms`` delay, then with the given probabilities is dropped (connection
closed without a response), answered 429 like CC's rate limiter, or answered 500/502/503 — all
before the request reaches the API. ``drop_after_rate`` and ``error_after_rate`` let the API
process the request first and then lose the response (connection closed, or a gorouter-style 502),
which is what makes clients prove their writes are idempotent.

``reject_usernames`` is not random: creating a role for one of those users (by guid or by
username), or creating that CC or UAA user, is refused with the error CC/UAA give for a request
they will not carry out (422 ``CF-UnprocessableEntity`` naming the user; UAA: 400
``invalid_scim_resource``), and nothing is stored. Partial-failure tests use it to make exactly
one member of a change fail.

``refuse_uaa_user_deletes`` makes UAA refuse ``DELETE /Users/:id`` for those usernames (403
``access_denied``) while CC deletes the CC user as usual: a user deletion that stops half-way,
the CC user gone and the UAA account left.
"""

from __future__ import annotations

import math
import random
import time
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class FaultConfig:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    rate_429: float = 0.0
    drop_rate: float = 0.0
    drop_after_rate: float = 0.0
    error_after_rate: float = 0.0
    retry_after_s: int = 1
    # CC's UAA client gets 429 when creating a shadow user -> CF-UaaRateLimited, Retry-After 5..20
    uaa_rate_429: float = 0.0
    uaa_retry_after_s: int | None = None
    path_prefix: str | None = None
    seed: int | None = None
    # usernames (compared case-insensitively, any origin) whose role/user creation is refused
    reject_usernames: list[str] = field(default_factory=list)
    # usernames whose UAA user deletion is refused (the CC user deletion still happens)
    refuse_uaa_user_deletes: list[str] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    KNOBS = (
        "latency_ms",
        "jitter_ms",
        "error_rate",
        "rate_429",
        "drop_rate",
        "drop_after_rate",
        "error_after_rate",
        "retry_after_s",
        "uaa_rate_429",
        "uaa_retry_after_s",
        "path_prefix",
        "seed",
        "reject_usernames",
        "refuse_uaa_user_deletes",
    )

    @classmethod
    def from_knobs(cls, knobs: dict[str, Any]) -> FaultConfig:
        unknown = set(knobs) - set(cls.KNOBS)
        if unknown:
            raise ValueError(f"unknown fault knob(s): {sorted(unknown)}")
        cfg = cls(**{k: v for k, v in knobs.items() if k in cls.KNOBS})
        for name in (
            "error_rate",
            "rate_429",
            "drop_rate",
            "drop_after_rate",
            "error_after_rate",
            "uaa_rate_429",
        ):
            if not 0.0 <= float(getattr(cfg, name)) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("reject_usernames", "refuse_uaa_user_deletes"):
            names = getattr(cfg, name)
            if not isinstance(names, list) or not all(isinstance(u, str) and u for u in names):
                raise ValueError(f"{name} must be a list of non-empty usernames")
        cfg.rng = random.Random(cfg.seed)
        return cfg

    @property
    def active(self) -> bool:
        return bool(
            self.latency_ms
            or self.jitter_ms
            or self.error_rate
            or self.rate_429
            or self.drop_rate
            or self.drop_after_rate
            or self.error_after_rate
        )

    def applies_to(self, path: str) -> bool:
        return self.path_prefix is None or path.startswith(self.path_prefix)

    def delay_s(self) -> float:
        if not self.latency_ms and not self.jitter_ms:
            return 0.0
        ms = self.latency_ms + (self.rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0)
        return max(0.0, ms) / 1000.0

    def pick(self) -> str | None:
        """One of "drop", "429", "500", "502", "503", "drop_after", "502_after" or None."""
        r = self.rng.random()
        if r < self.drop_rate:
            return "drop"
        r -= self.drop_rate
        if r < self.rate_429:
            return "429"
        r -= self.rate_429
        if r < self.error_rate:
            return self.rng.choice(("500", "502", "503"))
        r -= self.error_rate
        if r < self.drop_after_rate:
            return "drop_after"
        r -= self.drop_after_rate
        if r < self.error_after_rate:
            return "502_after"
        return None

    def uaa_rate_limited(self) -> int | None:
        """Retry-After seconds when this shadow-user creation should hit a UAA 429, else None."""
        if not self.uaa_rate_429 or self.rng.random() >= self.uaa_rate_429:
            return None
        return self.uaa_retry_after_s if self.uaa_retry_after_s is not None else self.rng.randint(5, 20)

    def rejects(self, username: str | None) -> bool:
        """Whether creating a role for, or creating, the user ``username`` must be refused."""
        return _listed(username, self.reject_usernames)

    def refuses_uaa_delete(self, username: str) -> bool:
        """Whether UAA must refuse to delete the user ``username``."""
        return _listed(username, self.refuse_uaa_user_deletes)

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("rng", None)
        return d


def _listed(username: str | None, usernames: list[str]) -> bool:
    folded = (username or "").casefold()
    return bool(folded) and any(folded == u.casefold() for u in usernames)


@dataclass(slots=True)
class RateLimiter:
    """CC's ``RateLimiter`` middleware (one process): per-user request budgets per reset interval.

    Token-bearing requests count against ``limit`` per user guid (error CF-RateLimitExceeded);
    requests without a valid token count per client IP against ``unauthenticated_limit``
    (CF-IPBasedRateLimitExceeded). Admin and admin_read_only tokens use ``admin_limit``; CC's
    default is -1 (admins exempt, no headers), but here the default (None) is "same as ``limit``"
    because the sync client under test is an admin client. ``X-RateLimit-Remaining`` is CC's estimate
    (10 % steps of the global limit); each user's window starts at a fixed per-user offset.
    """

    enabled: bool = False
    limit: int = 2000
    global_limit: int | None = None
    unauthenticated_limit: int = 100
    global_unauthenticated_limit: int | None = None
    admin_limit: int | None = None  # None: same as limit; -1: exempt (CC's default)
    reset_interval_s: int = 3600
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)

    KNOBS = (
        "enabled",
        "limit",
        "global_limit",
        "unauthenticated_limit",
        "global_unauthenticated_limit",
        "admin_limit",
        "reset_interval_s",
    )

    def _limits(self, kind: str) -> tuple[int, int]:
        if kind == "admin" and self.admin_limit is not None:
            return self.admin_limit, self.admin_limit
        if kind in ("user", "admin"):
            return self.limit, self.global_limit if self.global_limit is not None else self.limit
        glob = self.global_unauthenticated_limit
        return self.unauthenticated_limit, glob if glob is not None else self.unauthenticated_limit

    def applies(self, kind: str) -> bool:
        return self._limits(kind)[0] >= 0

    def _increment(self, key: str, now: int) -> tuple[int, int]:
        entry = self.counts.get(key)
        if entry is None or entry[1] - now <= 0:
            interval = max(1, int(self.reset_interval_s))
            offset = zlib.crc32(key.encode()) % interval
            expires_in = interval - (now - offset) % interval
            self.counts[key] = (1, now + expires_in)
            return 1, expires_in
        self.counts[key] = (entry[0] + 1, entry[1])
        return entry[0] + 1, entry[1] - now

    def hit(self, key: str, kind: str) -> tuple[bool, dict[str, str]]:
        """Count one request of ``kind`` ("user", "admin", "unauthenticated") for ``key``."""
        per_process, global_limit = self._limits(kind)
        now = int(time.time())
        count, expires_in = self._increment(f"{kind}:{key}", now)
        if per_process > 0:
            estimate = math.floor((per_process - count) / per_process * 10) / 10 * global_limit
            remaining = str(int(max(0.0, estimate)))
        else:
            remaining = "0"
        headers = {
            "X-RateLimit-Limit": str(global_limit),
            "X-RateLimit-Reset": str(now + expires_in),
            "X-RateLimit-Remaining": remaining,
        }
        if count > per_process:
            headers["Retry-After"] = str(expires_in)
            return False, headers
        return True, headers

    def public(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KNOBS}
