"""How many password hashes run at once in this process, and how many may wait.

Argon2id is memory-hard and CPU-bound: a burst of logins that all hash at once thrashes memory
and cores and every one of them gets slow. `HashSlots` lets `slots` hashes run and `queue` more
wait; the next one is refused at once (`HashingBusy` -> 503 with Retry-After) instead of joining
a wait that would end in a client's timeout."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

QUEUE_PER_SLOT = 8


class HashingBusy(Exception):
    """Every hash slot is busy and the queue is full: answer 503, retry in a second."""

    RETRY_AFTER = 1


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers, taskset)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_slots(*, memory_cost_kib: int, parallelism: int, memory_budget_mib: int) -> int:
    """One hash per core (a hash with p lanes uses p of them), no more than the budget holds."""
    by_cores = max(1, available_cores() // parallelism)
    by_memory = max(1, (memory_budget_mib * 1024) // memory_cost_kib)
    return min(by_cores, by_memory)


class HashSlots:
    def __init__(self, *, slots: int, queue: int) -> None:
        self.slots, self.queue = slots, queue
        self._running = threading.BoundedSemaphore(slots)
        self._admitted = threading.BoundedSemaphore(slots + queue)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Run the body in a slot, waiting behind at most `queue` others; else raise HashingBusy."""
        if not self._admitted.acquire(blocking=False):
            raise HashingBusy()
        try:
            with self._running:
                yield
        finally:
            self._admitted.release()
