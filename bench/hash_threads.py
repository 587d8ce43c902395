"""Argon2id verify CPU: on the thread of whichever request asks (gunicorn's gthread workers take
turns, so each verify meets memory another thread used last) against on the hash slots' own thread
(common/crypto/hash_slots.py), in blocks that alternate, in this one process.

    .venv/bin/python bench/hash_threads.py [--blocks 16] [--per-block 8]

Each verify's CPU is `time.thread_time()` around `argon2.PasswordHasher.verify` at the Settings
defaults, on the thread that runs it; `--request-threads` threads (8, as a gunicorn worker has) ask
in turn, one at a time. Not a test.
"""
from __future__ import annotations

import argparse
import os
import queue
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argon2  # noqa: E402

from common.config import Settings
from common.crypto.hash_slots import HashSlots

PASSWORD = "bench-hash-threads"


class RequestThread:
    """A long-lived thread that runs what it is handed, as a gthread worker's request thread does."""

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], queue.SimpleQueue]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, daemon=True).start()

    def call(self, work: Callable[[], Any]) -> Any:
        answer: queue.SimpleQueue = queue.SimpleQueue()
        self._calls.put((work, answer))
        return answer.get()

    def _serve(self) -> None:
        while True:
            work, answer = self._calls.get()
            answer.put(work())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=16, help="blocks, alternating (default 16)")
    parser.add_argument("--per-block", type=int, default=8, help="verifies per block (default 8)")
    parser.add_argument("--request-threads", type=int, default=8)
    args = parser.parse_args(argv)
    defaults = Settings()
    hasher = argon2.PasswordHasher(time_cost=defaults.argon2_time_cost, memory_cost=defaults.argon2_memory_cost,
                                   parallelism=defaults.argon2_parallelism, type=argon2.Type.ID)
    stored = hasher.hash(PASSWORD)
    slots = HashSlots(slots=2, queue=16)

    def timed() -> float:
        started = time.thread_time()
        hasher.verify(stored, PASSWORD)
        return (time.thread_time() - started) * 1000

    threads = [RequestThread() for _ in range(args.request_threads)]
    kinds = {"on the request's thread": lambda: timed(), "on a hash slot's thread": lambda: slots.run(timed)}
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    turn = 0
    for block in range(args.blocks):
        kind = list(kinds)[block % 2]
        for _ in range(args.per_block):
            samples[kind].append(threads[turn % len(threads)].call(kinds[kind]))
            turn += 1
    print(f"Argon2id t={defaults.argon2_time_cost} m={defaults.argon2_memory_cost} KiB "
          f"p={defaults.argon2_parallelism}; {args.request_threads} request threads taking turns; "
          f"load average {os.getloadavg()[0]:.2f}")
    for kind, values in samples.items():
        print(f"  verify CPU {kind:26} p50 {statistics.median(values):6.2f} ms  mean {statistics.mean(values):6.2f} ms"
              f"  (n={len(values)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
