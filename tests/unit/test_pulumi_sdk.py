"""The SDK workarounds (components/pulumi_sdk.py) do what they say and nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pulumi.dynamic import dynamic
from pulumi.runtime import stack

from components import pulumi_sdk
from components.cloudfoundry.providers import MembershipProvider


def test_wait_waits_for_every_task_whatever_the_caller_asks() -> None:
    shim = pulumi_sdk._AsyncioWaitingForAll()

    async def scenario() -> tuple[int, int, list[float]]:
        finished: list[float] = []

        async def work(delay: float) -> None:
            await asyncio.sleep(delay)
            finished.append(delay)

        tasks = [asyncio.ensure_future(work(d)) for d in (0.0, 0.01, 0.05)]
        done, not_done = await shim.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return len(done), len(not_done), finished

    done, not_done, finished = asyncio.run(scenario())
    assert (done, not_done) == (3, 0)
    assert sorted(finished) == [0.0, 0.01, 0.05]


def test_wait_still_surfaces_task_errors() -> None:
    shim = pulumi_sdk._AsyncioWaitingForAll()

    async def scenario() -> None:
        async def boom() -> None:
            raise RuntimeError("registration failed")

        done, _ = await shim.wait([asyncio.ensure_future(boom())], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            await task

    with pytest.raises(RuntimeError, match="registration failed"):
        asyncio.run(scenario())


def test_shim_forwards_the_rest_of_asyncio() -> None:
    shim = pulumi_sdk._AsyncioWaitingForAll()
    assert shim.FIRST_COMPLETED == asyncio.FIRST_COMPLETED
    assert shim.sleep is asyncio.sleep
    assert shim.Task is asyncio.Task


def test_installed_once_for_the_pinned_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(vars(stack), "asyncio", asyncio)
    assert pulumi_sdk.sdk_version() == pulumi_sdk.PINNED_SDK, "requirements pin the SDK"
    assert pulumi_sdk.drain_outputs_in_batches()
    installed = vars(stack)["asyncio"]
    assert isinstance(installed, pulumi_sdk._AsyncioWaitingForAll)
    assert pulumi_sdk.drain_outputs_in_batches()
    assert vars(stack)["asyncio"] is installed


def test_not_installed_on_another_sdk(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(vars(stack), "asyncio", asyncio)
    monkeypatch.setattr(pulumi_sdk, "sdk_version", lambda: "9.9.9")
    assert not pulumi_sdk.drain_outputs_in_batches()
    assert vars(stack)["asyncio"] is asyncio
    assert "pulumi SDK 9.9.9 is not the pinned 3.260.0" in caplog.text


def test_providers_serialized_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    def original(provider: Any) -> str:
        calls.append(provider)
        return f"pickled-{len(calls)}"

    monkeypatch.setattr(dynamic, "serialize_provider", original)
    ours, other = MembershipProvider(stack="s"), MembershipProvider(stack="t")
    pulumi_sdk.serialize_providers_once([ours])
    assert [dynamic.serialize_provider(ours) for _ in range(3)] == ["pickled-1"] * 3
    assert dynamic.serialize_provider(other) == "pickled-2", "providers not ours go to the SDK every time"
    assert dynamic.serialize_provider(other) == "pickled-3"
    pulumi_sdk.serialize_providers_once([other])  # already installed: no second layer
    assert dynamic.serialize_provider(other) == "pickled-4"


def test_sdk_debug_logs_dropped_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi.log

    sent: list[str] = []
    monkeypatch.setattr(pulumi.log, "debug", lambda msg, *a, **k: sent.append(msg))
    assert not pulumi_sdk.quiet_sdk_debug_logs({pulumi_sdk.DEBUG_LOGS_ENV: "true"})
    pulumi.log.debug("kept")
    assert sent == ["kept"]

    assert pulumi_sdk.quiet_sdk_debug_logs({})
    pulumi.log.debug("registering resource: ty=cf:RoleMembership")
    assert sent == ["kept"], "the SDK's debug chatter no longer reaches the engine"
    assert pulumi_sdk.quiet_sdk_debug_logs({}), "idempotent"


def test_stack_traces_keep_only_the_source_position(monkeypatch: pytest.MonkeyPatch) -> None:
    from pulumi.runtime import resource
    from pulumi.runtime.proto import source_pb2

    def frame(line: int) -> Any:
        return source_pb2.StackFrame(pc=source_pb2.SourcePosition(uri="file:///p/resources.py", line=line))

    full = source_pb2.StackTrace(frames=[frame(64), frame(93), frame(640)])
    monkeypatch.setattr(resource, "_get_stack_trace", lambda: full)
    assert pulumi_sdk.keep_only_source_positions()
    trimmed = resource._get_stack_trace()
    assert [f.pc.line for f in trimmed.frames] == [64]
    assert resource._get_source_position(trimmed) == resource._get_source_position(full), (
        "sourcePosition unchanged"
    )
    assert pulumi_sdk.keep_only_source_positions(), "idempotent"
    assert [f.pc.line for f in resource._get_stack_trace().frames] == [64]


def test_stack_traces_left_alone_on_another_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    from pulumi.runtime import resource

    sentinel = object()
    monkeypatch.setattr(resource, "_get_stack_trace", lambda: sentinel)
    monkeypatch.setattr(pulumi_sdk, "sdk_version", lambda: "9.9.9")
    assert not pulumi_sdk.keep_only_source_positions()
    assert resource._get_stack_trace() is sentinel
