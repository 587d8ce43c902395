"""A transmitter and a guard listening to it, both stopped after the test."""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import pytest

from citylogin_guard import Guard
from tests.guard.transmitter import Transmitter
from tests.support.waiting import wait_until

MakeGuard = Callable[..., Guard]
# One host, one clock: the skew allowed can be small, and the tests need not wait 10 s.
LEEWAY = 0.3
# How long the guards of the tests wait for each call to citylogin. A machine kept busy answers a healthy
# citylogin late now and then, and past the guard's 0.5 s that is a 503: only test_guard_deadline.py,
# whose subject the deadline is, sets its own.
CALL_TIMEOUT = 10.0


@pytest.fixture
def transmitter() -> Iterator[Transmitter]:
    started = Transmitter()
    yield started
    started.stop()


@pytest.fixture
def make_guard(transmitter: Transmitter) -> Iterator[MakeGuard]:
    """Guard(transmitter, **options), once its feed has been heard."""
    guards: list[Guard] = []

    def make(*, heard: bool = True, **options: Any) -> Guard:
        guard = Guard(transmitter.url, transmitter.client_id, transmitter.client_secret,
                      **{"leeway": LEEWAY, "call_timeout": CALL_TIMEOUT, **options})
        guards.append(guard)
        if heard:
            wait_until(guard.heard, timeout=30, what="the guard hears the feed")
            # Tokens issued from now on come after the guard started listening (beyond the clock
            # skew allowed): the feed alone speaks for their sessions.
            time.sleep(guard.leeway + 0.05)
        return guard

    yield make
    for guard in guards:
        guard.close()


@pytest.fixture
def guard(make_guard: MakeGuard) -> Guard:
    return make_guard()
