"""Shared helpers for the register-level model tests: a StandaloneHost and a bounded poll."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peripherals.standalone_host import StandaloneHost


@pytest.fixture
def host() -> StandaloneHost:
    return StandaloneHost()


@pytest.fixture
def poll(host: StandaloneHost) -> Callable[[Callable[[], bool], int], int]:
    """Advance virtual time in 1 us steps until ``condition()`` holds; return the ns it took.

    Fails the test when the condition is still false after ``limit_ns`` (the firmware's timeout).
    """

    def wait(condition: Callable[[], bool], limit_ns: int, step_ns: int = 1_000) -> int:
        start = host.now_ns()
        while not condition():
            if host.now_ns() - start >= limit_ns:
                pytest.fail(f"condition still false after {limit_ns} ns of virtual time")
            host.advance(step_ns)
        return host.now_ns() - start

    return wait
