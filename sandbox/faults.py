"""Fault injection knobs and a CC-like rate limiter.

Faults are off unless configured. Each request (optionally only under ``path_prefix``) gets
``latency_ms`` ± ``jitter_ms`` delay, then with the given probabilities is dropped (connection
closed without a response), answered 429 like CC's rate limiter, or answered 500/502/503.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class FaultConfig:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    rate_429: float = 0.0
    drop_rate: float = 0.0
    retry_after_s: int = 1
    path_prefix: str | None = None
    seed: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    KNOBS = (
        "latency_ms",
        "jitter_ms",
        "error_rate",
        "rate_429",
        "drop_rate",
        "retry_after_s",
        "path_prefix",
        "seed",
    )

    @classmethod
    def from_knobs(cls, knobs: dict[str, Any]) -> FaultConfig:
        unknown = set(knobs) - set(cls.KNOBS)
        if unknown:
            raise ValueError(f"unknown fault knob(s): {sorted(unknown)}")
        cfg = cls(**{k: v for k, v in knobs.items() if k in cls.KNOBS})
        for name in ("error_rate", "rate_429", "drop_rate"):
            if not 0.0 <= float(getattr(cfg, name)) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        cfg.rng = random.Random(cfg.seed)
        return cfg

    @property
    def active(self) -> bool:
        return bool(self.latency_ms or self.jitter_ms or self.error_rate or self.rate_429 or self.drop_rate)

    def applies_to(self, path: str) -> bool:
        return self.path_prefix is None or path.startswith(self.path_prefix)

    def delay_s(self) -> float:
        if not self.latency_ms and not self.jitter_ms:
            return 0.0
        ms = self.latency_ms + (self.rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0)
        return max(0.0, ms) / 1000.0

    def pick(self) -> str | None:
        """One of "drop", "429", "500", "502", "503" or None."""
        r = self.rng.random()
        if r < self.drop_rate:
            return "drop"
        r -= self.drop_rate
        if r < self.rate_429:
            return "429"
        r -= self.rate_429
        if r < self.error_rate:
            return self.rng.choice(("500", "502", "503"))
        return None

    def public(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("rng", None)
        return d


@dataclass(slots=True)
class RateLimiter:
    """CC ``rate_limiter``: per-user request budget per window, headers on every response."""

    enabled: bool = False
    limit: int = 2000
    reset_interval_s: float = 3600.0
    exempt_admin: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    window_start: float = field(default_factory=time.time)

    KNOBS = ("enabled", "limit", "reset_interval_s", "exempt_admin")

    def _roll(self, now: float) -> None:
        if now >= self.window_start + self.reset_interval_s:
            elapsed = now - self.window_start
            self.window_start += self.reset_interval_s * math.floor(elapsed / self.reset_interval_s)
            self.counts = {}

    def hit(self, key: str) -> tuple[bool, dict[str, str]]:
        """Count one request for ``key``; returns (allowed, headers)."""
        now = time.time()
        self._roll(now)
        count = self.counts.get(key, 0) + 1
        self.counts[key] = count
        reset = int(self.window_start + self.reset_interval_s)
        remaining = max(0, self.limit - count)
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }
        if count > self.limit:
            headers["Retry-After"] = str(max(1, math.ceil(reset - now)))
            return False, headers
        return True, headers

    def public(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KNOBS}
