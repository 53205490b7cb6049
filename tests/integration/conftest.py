"""Shared fixtures: one empty sandbox per test module, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.control import SandboxControl
from sandbox.server import SandboxServer


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer.start(seed=None) as sb:
        yield sb


@pytest.fixture
def ctl(sandbox: SandboxServer) -> Iterator[SandboxControl]:
    with SandboxControl(sandbox.url) as control:
        control.reset()
        yield control
        control.clear_faults()
        control.clear_rate_limit()
