"""How many password hashes run at once in this process, how many may wait, and on which threads.

Argon2id is memory-hard and CPU-bound: a burst of logins that all hash at once thrashes memory
and cores and every one of them gets slow. `HashSlots` lets `slots` hashes run and `queue` more
wait; the next one is refused at once (`HashingBusy` -> 503 with Retry-After) instead of joining
a wait that would end in a client's timeout.

The hashes run on the slots' own threads, not on the request's, the one that hashed last first:
a thread's allocator keeps the memory of its last hash (19 MiB by default) for its next, so a
process keeps one hash's memory per slot, not one per request thread that ever hashed (a gunicorn
worker's eight: bench/README.md, "Logins against bare Argon2id")."""
from __future__ import annotations

import os
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

QUEUE_PER_SLOT = 8
THREAD_NAME = "citylogin-hash"
T = TypeVar("T")


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


class _SlotThread:
    """One slot's thread: runs the calls it is handed, one at a time, for the life of the process."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any] | None, Future[Any] | None]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name=THREAD_NAME, daemon=True).start()

    def call(self, hash_call: Callable[[], T]) -> T:
        done: Future[T] = Future()
        self._calls.put((hash_call, done))
        return done.result()

    def stop(self) -> None:
        """End the thread once it has run what it was handed."""
        self._calls.put((None, None))

    def _serve(self) -> None:
        while True:
            hash_call, done = self._calls.get()
            if hash_call is None or done is None:
                return
            try:
                done.set_result(hash_call())
            except BaseException as failure:  # noqa: BLE001 - handed to the caller, which raises it
                done.set_exception(failure)


class HashSlots:
    def __init__(self, *, slots: int, queue: int) -> None:
        self.slots, self.queue = slots, queue
        self._admitted = threading.BoundedSemaphore(slots + queue)
        self._changed = threading.Condition()
        self._idle: list[_SlotThread] = []  # the one idle longest first: the last is handed out next
        self._made, self._pid = 0, os.getpid()
        # The threads end with their slots (an app dropped, as in the tests), not with the process.
        self._threads: list[_SlotThread] = []
        weakref.finalize(self, _stop_all, self._threads)

    def run(self, hash_call: Callable[[], T]) -> T:
        """`hash_call()` on one of the slots' threads, waiting behind at most `queue` others; else
        raise HashingBusy. What it raises is raised here."""
        if not self._admitted.acquire(blocking=False):
            raise HashingBusy()
        try:
            thread = self._take()
            try:
                return thread.call(hash_call)
            finally:
                self._give_back(thread)
        finally:
            self._admitted.release()

    def _take(self) -> _SlotThread:
        """The slot thread that hashed last, whose memory is the warmest; a new one while fewer than
        `slots` exist; else wait for one."""
        with self._changed:
            if self._pid != os.getpid():  # forked: the parent's threads are not in this process
                self._idle, self._made, self._pid = [], 0, os.getpid()
                self._threads.clear()
            while not self._idle and self._made >= self.slots:
                self._changed.wait()
            if self._idle:
                return self._idle.pop()
            self._made += 1
            thread = _SlotThread()
            self._threads.append(thread)
        return thread

    def _give_back(self, thread: _SlotThread) -> None:
        with self._changed:
            self._idle.append(thread)
            self._changed.notify()


def _stop_all(threads: list[_SlotThread]) -> None:
    for thread in threads:
        thread.stop()
