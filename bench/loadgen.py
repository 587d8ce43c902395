"""Latency statistics and a closed-loop HTTP load generator (threads in this process, keep-alive).
Every loop here is bounded both by a count and by a deadline."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import requests


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99, mean, min and max in milliseconds of latencies given in seconds."""
    ms = [s * 1000 for s in seconds]
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
            "mean": sum(ms) / len(ms), "min": min(ms), "max": max(ms)}


def time_calls(call: Callable[[], object], *, count: int, max_seconds: float) -> list[float]:
    """Latencies (s) of up to `count` sequential calls, stopping early after `max_seconds`."""
    latencies: list[float] = []
    deadline = time.monotonic() + max_seconds
    for _ in range(count):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
        if time.monotonic() > deadline:
            break
    return latencies


def local_session() -> requests.Session:
    """A keep-alive session that ignores proxy variables: traffic goes straight to 127.0.0.1."""
    session = requests.Session()
    session.trust_env = False
    return session


@dataclass
class LoadRound:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


def _worker(call: Callable[[], bool], start: threading.Barrier, stop_at: list[float],
            max_requests: int, result: LoadRound, lock: threading.Lock) -> None:
    latencies, errors = [], 0
    start.wait()
    for _ in range(max_requests):
        if time.monotonic() >= stop_at[0]:
            break
        begin = time.perf_counter()
        try:
            ok = call()
        except (requests.RequestException, RuntimeError, KeyError, ValueError):
            ok = False
        if ok:
            latencies.append(time.perf_counter() - begin)
        else:
            errors += 1
    with lock:
        result.latencies.extend(latencies)
        result.errors += errors


def closed_loop_calls(calls: list[Callable[[], bool]], *, seconds: float,
                      max_requests_per_thread: int = 200_000) -> LoadRound:
    """One thread per callable, each calling again as soon as the previous call returned; a call
    returns True for a success. Its latency counts only then."""
    result, lock = LoadRound(), threading.Lock()
    stop_at = [0.0]
    # The last party (this thread) sets the deadline once every worker is ready.
    start = threading.Barrier(len(calls) + 1)
    pool = [threading.Thread(target=_worker, daemon=True,
                             args=(call, start, stop_at, max_requests_per_thread, result, lock))
            for call in calls]
    for thread in pool:
        thread.start()
    began = time.monotonic()
    stop_at[0] = began + seconds
    start.wait(timeout=30)
    for thread in pool:
        thread.join(timeout=seconds + 60)
    result.elapsed = time.monotonic() - began
    return result


def _getter(url: str, headers: dict[str, str]) -> Callable[[], bool]:
    http = local_session()
    return lambda: http.get(url, headers=headers, timeout=10).status_code == 200


def closed_loop(url: str, *, headers: dict[str, str] | None = None, threads: int = 8,
                seconds: float = 10.0, max_requests_per_thread: int = 200_000) -> LoadRound:
    """`threads` clients, each with its keep-alive session, sending the next GET as soon as the
    previous one answered."""
    return closed_loop_calls([_getter(url, headers or {}) for _ in range(threads)], seconds=seconds,
                             max_requests_per_thread=max_requests_per_thread)
