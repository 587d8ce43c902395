"""At most one fetch per URL in flight in a process (SPEC §14): a request that needs what another is fetching
waits for that fetch's answer, within its own deadline, unless a few already wait, in which case it fails at
once. So however many requests name one slow URL (140 token requests of one app whose jwks_uri trickles),
the URL holds at most 1 + MAX_WAITERS request threads, each for at most the deadline, and the process's
other requests find threads free. A failure may be remembered for a moment, so the next requests fail fast
instead of starting the same slow fetch again."""
from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

from common.outbound.fetch import FetchFailed

T = TypeVar("T")
MAX_WAITERS = 2
MAX_REMEMBERED = 10_000


class Busy(FetchFailed):
    """A fetch of the URL is under way and MAX_WAITERS wait for it already: this caller fails at once."""


@dataclass
class _Flight(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    waiters: int = 0
    result: T | None = None
    failure: FetchFailed | None = None


class SingleFlight(Generic[T]):
    """Runs `work` once per key at a time; the others share its outcome (a value or a FetchFailed)."""

    def __init__(self, *, max_waiters: int = MAX_WAITERS, remember_failures: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_waiters, self.remember_failures, self.clock = max_waiters, remember_failures, clock
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight[T]] = {}
        self._failed: dict[Hashable, tuple[float, FetchFailed]] = {}

    def run(self, key: Hashable, work: Callable[[], T], *, wait_seconds: float) -> T:
        """`work()`'s value, or that of the run of `key` already under way (waited for at most
        `wait_seconds`); FetchFailed if it failed (or failed a moment ago), or too many wait already."""
        with self._lock:
            self._recent_failure(key)
            flight = self._flights.get(key)
            leading = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            elif flight.waiters >= self.max_waiters:
                raise Busy("a fetch of this URL is under way and others wait for it already")
            else:
                flight.waiters += 1
        return self._lead(key, flight, work) if leading else self._follow(flight, wait_seconds)

    def _recent_failure(self, key: Hashable) -> None:
        failed = self._failed.get(key)
        if failed is not None:
            if self.clock() < failed[0]:
                raise FetchFailed(f"failed a moment ago: {failed[1].reason}")
            del self._failed[key]

    def _lead(self, key: Hashable, flight: _Flight[T], work: Callable[[], T]) -> T:
        try:
            flight.result = work()
            return flight.result
        except FetchFailed as failure:
            flight.failure = failure
            raise
        finally:
            with self._lock:
                del self._flights[key]
                if flight.failure is not None and self.remember_failures > 0:
                    if len(self._failed) >= MAX_REMEMBERED:
                        self._failed.clear()
                    self._failed[key] = (self.clock() + self.remember_failures, flight.failure)
            flight.done.set()

    def _follow(self, flight: _Flight[T], wait_seconds: float) -> T:
        if not flight.done.wait(max(wait_seconds, 0.0)):
            raise FetchFailed("the fetch of this URL under way did not end in time")
        if flight.failure is not None:
            raise FetchFailed(flight.failure.reason)
        if flight.result is None:  # the leader's work raised something else: it is the leader's to report
            raise FetchFailed("the fetch of this URL under way failed")
        return flight.result
