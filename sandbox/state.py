"""The sandbox's process state: data store, tokens, counters, faults, runtime config, jobs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .counters import Counters
from .faults import FaultConfig, RateLimiter
from .store import Job, Store, now_iso
from .tokens import TokenService


@dataclass(slots=True)
class RuntimeConfig:
    """Behaviour knobs (``PUT /_sandbox/config`` or the seed's ``config`` key)."""

    job_delay_ms: float = 20.0  # time until an async delete job completes
    job_polls: int = 0  # if > 0: the job reports PROCESSING for this many polls, then completes
    token_validity_s: int | None = None  # default access-token lifetime (None: UAA's 43199)
    job_fail_rate: float = 0.0  # probability that an async delete job ends FAILED (nothing deleted)
    # CC config cc.allow_user_creation_by_org_manager: org roles by username+origin (origin != uaa)
    # create a UAA shadow user when missing. CC's default is false; the sandbox defaults to true.
    allow_user_creation_by_org_manager: bool = True

    KNOBS = (
        "job_delay_ms",
        "job_polls",
        "token_validity_s",
        "job_fail_rate",
        "allow_user_creation_by_org_manager",
    )


class SandboxState:
    def __init__(self, state_file: Path | None = None) -> None:
        self.store = Store()
        self.tokens = TokenService()
        self.counters = Counters()
        self.faults = FaultConfig()
        self.limiter = RateLimiter()
        self.config = RuntimeConfig()
        self.state_file = state_file
        self._save_handle: asyncio.TimerHandle | None = None
        self._saved_version = -1
        self._job_rng = random.Random()

    # ---- config ------------------------------------------------------------------------------
    def apply_config(self, knobs: dict[str, Any]) -> None:
        unknown = set(knobs) - set(RuntimeConfig.KNOBS)
        if unknown:
            raise ValueError(f"unknown config knob(s): {sorted(unknown)}")
        for k, v in knobs.items():
            setattr(self.config, k, v)
        if "token_validity_s" in knobs:
            v = knobs["token_validity_s"]
            self.tokens.default_validity = int(v) if v is not None else 43199

    def public_config(self) -> dict[str, Any]:
        return {k: getattr(self.config, k) for k in RuntimeConfig.KNOBS}

    # ---- jobs --------------------------------------------------------------------------------
    def start_job(self, operation: str, resource_type: str, resource_guid: str) -> Job:
        job = self.store.add_job(operation, resource_type, resource_guid, self.config.job_polls)
        if job.polls_left <= 0:
            delay = max(0.0, self.config.job_delay_ms) / 1000.0
            job.due = time.monotonic() + delay
            if delay == 0:
                self.complete_job(job)
            else:
                with contextlib.suppress(RuntimeError):
                    asyncio.get_running_loop().call_later(delay, self.complete_job, job)
        return job

    def poll_job(self, job: Job) -> None:
        """Advance a job on GET /v3/jobs/:guid."""
        if job.state != "PROCESSING":
            return
        if job.polls_left > 0:
            job.polls_left -= 1
            if job.polls_left == 0:
                self.complete_job(job)
        elif time.monotonic() >= job.due:
            self.complete_job(job)

    def complete_job(self, job: Job) -> None:
        if job.state != "PROCESSING":
            return
        job.updated_at = now_iso()
        if self.config.job_fail_rate and self._job_rng.random() < self.config.job_fail_rate:
            job.state = "FAILED"
            job.errors = [{"detail": "An unknown error occurred.", "title": "UnknownError", "code": 10001}]
            return
        if job.operation == "role.delete":
            self.store.remove_role(job.resource_guid)  # "already deleted" races are ignored
        elif job.operation == "user.delete":
            self.store.delete_cc_user(job.resource_guid)
        elif job.operation == "space.delete":
            self.store.delete_space(job.resource_guid)
        job.state = "COMPLETE"
        self.mark_dirty()

    def job_resource_exists(self, job: Job) -> bool:
        if job.resource_type == "role":
            return job.resource_guid in self.store.roles
        if job.resource_type == "user":
            return job.resource_guid in self.store.cc_users
        if job.resource_type == "space":
            return job.resource_guid in self.store.spaces
        return False

    # ---- persistence -------------------------------------------------------------------------
    def load(self) -> None:
        if self.state_file is not None and self.state_file.exists():
            self.store.load_dict(json.loads(self.state_file.read_text()))
            self._saved_version = self.store.version

    def save(self) -> None:
        self._save_handle = None
        if self.state_file is None or self._saved_version == self.store.version:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        tmp.write_text(json.dumps(self.store.to_dict(), indent=1))
        tmp.replace(self.state_file)
        self._saved_version = self.store.version

    def mark_dirty(self) -> None:
        """Schedule a debounced save of the state file (if any)."""
        if self.state_file is None or self._save_handle is not None:
            return
        try:
            self._save_handle = asyncio.get_running_loop().call_later(1.0, self.save)
        except RuntimeError:
            self.save()
