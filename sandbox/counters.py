"""Request counters keyed by ``METHOD route-template`` (e.g. ``GET /v3/roles/{guid}``)."""

from __future__ import annotations

from typing import Any

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Counters:
    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.writes = 0
        self.total = 0
        self.faults: dict[str, int] = {}

    def fault(self, outcome: str) -> None:
        self.faults[outcome] = self.faults.get(outcome, 0) + 1

    def count(self, method: str, template: str) -> None:
        key = f"{method} {template}"
        self.requests[key] = self.requests.get(key, 0) + 1
        self.total += 1
        # A token request changes nothing in the foundation: not a write.
        if method not in _READ_METHODS and not template.endswith("/oauth/token"):
            self.writes += 1

    def reset(self) -> None:
        self.requests = {}
        self.writes = 0
        self.total = 0
        self.faults = {}

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "writes": self.writes,
            "total": self.total,
            "faults": dict(sorted(self.faults.items())),  # injected faults by outcome
        }
