"""Waiting for a condition instead of sleeping for a guess: a poll with a deadline."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """Calls `check` until it returns something truthy, and returns that; fails the test with
    `what` and the last value if `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or check!r} (last: {value!r})")
        time.sleep(interval)
