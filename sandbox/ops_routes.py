"""Operations API under ``/_sandbox`` (no auth, not counted, never faulted)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from .faults import FaultConfig, RateLimiter
from .responses import raw_json
from .seed import SeedError, apply_default_clients, apply_seed, load_seed_text
from .state import SandboxState
from .store import Store

router = APIRouter(prefix="/_sandbox")


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _ok(obj: Any, status: int = 200) -> Response:
    return raw_json(json.dumps(obj), status)


def _bad(message: str) -> Response:
    return _ok({"error": message}, 400)


async def _body(request: Request) -> dict[str, Any]:
    raw = (await request.body()).decode()
    data = load_seed_text(raw) if raw.strip() else {}
    return data


@router.get("/health")
async def health() -> Response:
    return _ok({"status": "ok"})


@router.post("/seed")
async def seed(request: Request) -> Response:
    try:
        result = apply_seed(_state(request), await _body(request))
    except (SeedError, KeyError, TypeError, ValueError) as exc:
        return _bad(f"invalid seed: {exc}")
    return _ok(result)


@router.post("/reset")
async def reset(request: Request) -> Response:
    """Drop all data and non-default clients; counters, faults and config are reset too."""
    state = _state(request)
    state.store = Store()
    state.tokens.clients.clear()
    apply_default_clients(state)
    state.counters.reset()
    state.faults = FaultConfig()
    state.limiter = RateLimiter()
    state.mark_dirty()
    return _ok({"reset": True})


@router.get("/counters")
async def counters(request: Request) -> Response:
    return _ok(_state(request).counters.snapshot())


@router.post("/counters/reset")
async def counters_reset(request: Request) -> Response:
    _state(request).counters.reset()
    return _ok({"reset": True})


@router.get("/faults")
async def get_faults(request: Request) -> Response:
    return _ok(_state(request).faults.public())


@router.put("/faults")
async def put_faults(request: Request) -> Response:
    try:
        _state(request).faults = FaultConfig.from_knobs(await _body(request))
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    return _ok(_state(request).faults.public())


@router.delete("/faults")
async def delete_faults(request: Request) -> Response:
    _state(request).faults = FaultConfig()
    return _ok(_state(request).faults.public())


@router.get("/rate-limit")
async def get_rate_limit(request: Request) -> Response:
    return _ok(_state(request).limiter.public())


@router.put("/rate-limit")
async def put_rate_limit(request: Request) -> Response:
    knobs = await _body(request)
    unknown = set(knobs) - set(RateLimiter.KNOBS)
    if unknown:
        return _bad(f"unknown rate-limit knob(s): {sorted(unknown)}")
    knobs.setdefault("enabled", True)
    _state(request).limiter = RateLimiter(**knobs)
    return _ok(_state(request).limiter.public())


@router.delete("/rate-limit")
async def delete_rate_limit(request: Request) -> Response:
    _state(request).limiter = RateLimiter()
    return _ok(_state(request).limiter.public())


@router.get("/config")
async def get_config(request: Request) -> Response:
    return _ok(_state(request).public_config())


@router.put("/config")
async def put_config(request: Request) -> Response:
    try:
        _state(request).apply_config(await _body(request))
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    return _ok(_state(request).public_config())


@router.post("/jobs/complete")
async def complete_jobs(request: Request) -> Response:
    """Finish every job still PROCESSING now, as if its delay had passed (tests hold a run in a
    job poll with a long ``job_delay_ms``, then release it at a moment they choose)."""
    state = _state(request)
    processing = [job for job in state.store.jobs.values() if job.state == "PROCESSING"]
    for job in processing:
        state.complete_job(job)
    return _ok({"completed": len(processing)})


@router.get("/state")
async def dump_state(request: Request) -> Response:
    state = _state(request)
    data = state.store.to_dict()
    data["clients"] = [
        {"id": c.client_id, "authorities": c.authorities} for c in state.tokens.clients.values()
    ]
    data["jobs"] = [
        {"guid": j.guid, "operation": j.operation, "state": j.state, "resource_guid": j.resource_guid}
        for j in state.store.jobs.values()
    ]
    return _ok(data)


@router.post("/save")
async def save(request: Request) -> Response:
    _state(request).save()
    return _ok({"saved": _state(request).state_file is not None})
