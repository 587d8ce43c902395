"""The peer bench's closed loop (bench/peer_bench.py, bench/peer_latency.py): threads that each call
again as soon as their last call returned, and the server's CPU around them."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from bench.cpu import cpu_delta, tree_cpu_seconds
from bench.peer_client import Call


@dataclass
class Block:
    """One block of one row on one server."""
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    loadgen_cpu_s: float = 0.0


def _worker(call: Call, start: threading.Barrier, stop_at: list[float], count: int, block: Block,
            lock: threading.Lock) -> None:
    latencies, errors = [], 0
    start.wait()
    for _ in range(count):
        if time.monotonic() >= stop_at[0]:
            break
        try:
            took = call()
        except Exception:  # noqa: BLE001 - a dropped connection or an unexpected answer is an error of the row
            took = None
        if took is None:
            errors += 1
        else:
            latencies.append(took)
    with lock:
        block.latencies += latencies
        block.errors += errors


def merged(batches: list[Block]) -> Block:
    return Block(latencies=[latency for b in batches for latency in b.latencies], errors=sum(b.errors for b in batches),
                 seconds=sum(b.seconds for b in batches), server_cpu_s=sum(b.server_cpu_s for b in batches),
                 loadgen_cpu_s=sum(b.loadgen_cpu_s for b in batches))


def run_block(calls: list[Call], *, seconds: float, count: int, pid: int) -> Block:
    """One thread per call, each calling again as soon as its last call returned, until `seconds` have
    passed or it made `count` calls; the server's CPU (the process tree of `pid`) around it all."""
    block, spent = closed_loop(calls, seconds=seconds, count=count, roots={"server": pid})
    block.server_cpu_s, block.loadgen_cpu_s = spent["server"], spent["loadgen"]
    return block


def closed_loop(calls: list[Call], *, seconds: float, count: int,
                roots: dict[str, int]) -> tuple[Block, dict[str, float]]:
    """run_block's loop, with the CPU seconds each named process tree (and "loadgen", this process) spent
    around it (bench/server_choice.py: the app servers' trees and nginx's apart)."""
    block, lock, stop_at = Block(), threading.Lock(), [0.0]
    start = threading.Barrier(len(calls) + 1)
    pool = [threading.Thread(target=_worker, args=(call, start, stop_at, count, block, lock), daemon=True)
            for call in calls]
    for thread in pool:
        thread.start()
    before = tree_cpu_seconds(roots)
    began = time.monotonic()
    stop_at[0] = began + seconds
    start.wait(timeout=30)
    for thread in pool:
        thread.join(timeout=seconds + 60)
    block.seconds = time.monotonic() - began
    return block, cpu_delta(before, tree_cpu_seconds(roots))
