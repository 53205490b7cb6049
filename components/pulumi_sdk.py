"""Workarounds for measured costs of the pinned Pulumi Python SDK (3.260.0) at scale.

Each one is narrow, leaves the SDK's behaviour as the engine sees it unchanged, and is
applied once per program run by ``components/resources.py``. docs/performance.md has the
figures that justified them. When the SDK pin moves, re-measure: the ``sdk_version`` check
below skips a workaround whose target changed shape, rather than patching blind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from types import ModuleType
from typing import Any

log = logging.getLogger("cf_access.pulumi_sdk")

PINNED_SDK = "3.260.0"


def sdk_version() -> str:
    from importlib.metadata import version

    return version("pulumi")


def serialize_providers_once(providers: Collection[Any]) -> None:
    """Serialize each of the given provider objects once per program run, not once per resource.

    The SDK (``dynamic.serialize_provider``) wraps ``pickle._Pickler._batch_setitems`` in a new
    sorting closure on every call and never restores it, so the N-th dynamic resource pickles
    through N nested wrappers: past ~960 resources in one program the default recursion limit
    is hit (RecursionError, pulumi/pulumi#17803) - the M and L benchmarks cannot run without
    this. Our providers pickle to the same bytes every time (class by reference, a fixed
    ``__getstate__``) and capture no Outputs, so caching is exact; it also saves the dill call
    per resource (pulumi/pulumi#6675). Other providers are left to the SDK.
    """
    from pulumi.dynamic import dynamic

    original: Callable[[Any], Any] = dynamic.serialize_provider
    if getattr(original, "_cf_access_once", False):
        return
    ours = tuple(providers)
    cache: dict[int, str] = {}

    def serialize_provider(provider: Any) -> str:
        if not any(provider is p for p in ours):
            return str(original(provider))
        key = id(provider)
        if key not in cache:
            cache[key] = str(original(provider))
        return cache[key]

    serialize_provider._cf_access_once = True  # type: ignore[attr-defined]
    dynamic.serialize_provider = serialize_provider


class _AsyncioWaitingForAll(ModuleType):
    """``asyncio`` as ``pulumi.runtime.stack`` sees it, except that ``wait`` always waits
    for every task it is given (``ALL_COMPLETED``).

    Why: at the end of the program, ``wait_for_rpcs`` drains every outstanding Output task
    with ``asyncio.wait(pending, FIRST_COMPLETED)`` in a loop. Each call attaches and removes a
    callback on *every* pending task, and there are several per resource (urn, id, each
    property), so the drain is O(outputs x completions): at 10,000 people it was 42 % of the
    program's CPU on the initial ``up`` (py-spy, docs/performance.md). Waiting for all of them
    at once makes it O(outputs) per round. Nothing is lost: the loop awaits every finished task
    either way (so errors are raised the same), it just wakes up once per batch instead of
    once per task.
    """

    def __init__(self) -> None:
        super().__init__("asyncio")

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def wait(fs: Any, *, timeout: float | None = None, return_when: str = asyncio.ALL_COMPLETED) -> Any:
        del return_when  # every caller in pulumi.runtime.stack drains in a loop; see class doc
        return await asyncio.wait(fs, timeout=timeout, return_when=asyncio.ALL_COMPLETED)


def drain_outputs_in_batches() -> bool:
    """Install ``_AsyncioWaitingForAll`` into ``pulumi.runtime.stack`` (pinned SDK only).

    Returns whether it was installed."""
    from pulumi.runtime import stack

    namespace = vars(stack)  # the module's globals, where its functions look up ``asyncio``
    if isinstance(namespace.get("asyncio"), _AsyncioWaitingForAll):
        return True
    if sdk_version() != PINNED_SDK:
        log.warning(
            "pulumi SDK %s is not the pinned %s: leaving wait_for_rpcs as it is (re-measure, "
            "docs/performance.md)",
            sdk_version(),
            PINNED_SDK,
        )
        return False
    namespace["asyncio"] = _AsyncioWaitingForAll()
    return True


DEBUG_LOGS_ENV = "CF_ACCESS_PULUMI_DEBUG_LOGS"


def quiet_sdk_debug_logs(env: Mapping[str, str]) -> bool:
    """Drop the SDK's own debug messages unless ``CF_ACCESS_PULUMI_DEBUG_LOGS=true``.

    Why: ``pulumi.log.debug`` is a synchronous gRPC call to the engine, made on the event
    loop thread, and the SDK makes three per resource registration ("registering resource",
    "prepared", "successful"). The engine shows them only with ``--debug``/``-v``, but the
    program pays the round trip either way: at 10,000 people, 35 % of the program's samples
    on a no-op ``up`` were blocked in those calls (py-spy, docs/performance.md). Set the
    variable when you need the SDK's trace next to ``pulumi up --debug``.

    Returns whether debug messages are dropped."""
    import pulumi.log

    if env.get(DEBUG_LOGS_ENV, "").strip().lower() in ("1", "true", "yes"):
        return False
    if getattr(pulumi.log.debug, "_cf_access_quiet", False):
        return True

    def debug(
        msg: str, resource: Any = None, stream_id: int | None = None, ephemeral: bool | None = None
    ) -> None:
        del msg, resource, stream_id, ephemeral

    debug._cf_access_quiet = True  # type: ignore[attr-defined]
    pulumi.log.debug = debug
    return True


def keep_only_source_positions() -> bool:
    """Record each resource's source position, not the program's whole call stack (pinned SDK only).

    Why: the SDK sends the full Python stack (17 frames here: our components, asyncio, the
    language host) with every registration, and the engine stores it in state: 12 MB of the
    34 MB state at 10,000 people, parsed, diffed and rewritten by the CLI on every run
    (docs/performance.md). The first frame - where the resource was declared - is what the
    engine uses as ``sourcePosition``; it is kept, so that is unchanged.

    Returns whether it was installed."""
    from pulumi.runtime import resource
    from pulumi.runtime.proto import source_pb2

    original: Callable[[], Any] = resource._get_stack_trace
    if getattr(original, "_cf_access_trimmed", False):
        return True
    if sdk_version() != PINNED_SDK:
        log.warning(
            "pulumi SDK %s is not the pinned %s: stack traces left as they are", sdk_version(), PINNED_SDK
        )
        return False

    def first_frame_only() -> Any:
        trace = original()
        return source_pb2.StackTrace(frames=list(trace.frames)[:1])

    first_frame_only._cf_access_trimmed = True  # type: ignore[attr-defined]
    resource._get_stack_trace = first_frame_only
    return True


def exit_when_engine_is_gone(argv: list[str], interval_s: float = 1.0, misses: int = 3) -> bool:
    """In the dynamic provider host, exit once the engine that started it is gone.

    The 3.260 host (``python -m pulumi.dynamic``) serves forever and never looks at the
    engine address the engine passes as its argument: when the CLI dies abruptly (kill -9,
    a CI job killed, ``pulumi preview | head``), the provider process lives on, holding its
    CF connections. Upstream Go providers watch the engine; this does the same with a TCP
    probe of the engine's gRPC port every ``interval_s`` (``misses`` failures in a row: exit).
    Returns whether the watch was started (only in the provider host, once)."""
    import os
    import socket
    import threading

    global _engine_watch_started
    address = provider_engine_address(argv)
    if _engine_watch_started or address is None:
        return False
    host, _, port = address.rpartition(":")
    _engine_watch_started = True

    def watch() -> None:
        missed = 0
        while True:
            try:
                socket.create_connection((host.strip("[]"), int(port)), timeout=interval_s).close()
                missed = 0
            except OSError:
                missed += 1
                if missed >= misses:
                    log.warning("the Pulumi engine at %s is gone; the provider exits", address)
                    os._exit(0)
            threading.Event().wait(interval_s)

    threading.Thread(target=watch, name="cf-access-engine-watch", daemon=True).start()
    return True


_engine_watch_started = False


def provider_engine_address(argv: list[str]) -> str | None:
    """In the dynamic provider host, the engine address the engine passed as its argument."""
    if not argv or not argv[0].replace("\\", "/").endswith("pulumi/dynamic/__main__.py"):
        return None
    return next((a for a in reversed(argv[1:]) if _looks_like_address(a)), None)


def _looks_like_address(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit())
