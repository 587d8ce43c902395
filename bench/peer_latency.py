"""Latency under load (issue 87): the peer bench's refresh and userinfo rows at 80 % of each side's maximum rate.

Per row and side, after the CPU rows of a run (bench/peer_bench.py):

1. the maximum rate: a closed loop (bench/peer_loop.py's run_block) of `latency_max_threads` threads, each
   calling again as soon as its last call returned, for `latency_max_s`: answers per second;
2. an open loop at `latency_load` (80 %) of that rate for `latency_s`: request i is due at t0 + i / rate,
   whatever happened before it, on a pool of `latency_threads` threads, each with its own keep-alive
   connection (and, for refresh, its own grant, which it rotates: one request in flight a thread). A thread
   takes the next request due, waits for its time if it is early, sends it and reads the answer. A
   request's latency runs from the time it was due to its answer, read and checked: a stall delays
   every request due during it, and each of those counts its wait (no coordinated omission);
3. p50, p95 and p99 of those latencies, the target and achieved rate, the errors (an answer that is not
   what the row counts, or a dropped connection: counted, not a sample) and the requests not sent at all
   (due, but no thread free before the deadline: errors too).
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.loadgen import percentile
from bench.peer_client import Call, OidcClient
from bench.peer_loop import run_block

if TYPE_CHECKING:
    from bench.peer_bench import Clients

ROWS = ("refresh", "userinfo")
DEFAULTS = {"latency_max_threads": 8, "latency_max_s": 4.0, "latency_threads": 16, "latency_s": 6.0,
            "latency_load": 0.8}
LEAD_S = 0.05  # t0 this long after the threads are released: each is waiting for its first request by then
GRACE_S = 30.0  # a request due this long before the last one ends without being sent is not sent: an error
UNBOUNDED = 1_000_000
_ROUNDS = itertools.count(1)  # each measurement's people are new accounts (their names unique in the process)


@dataclass
class OpenLoop:
    """One open loop: the samples (seconds, each from the request's due time to its checked answer)."""
    due: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    unsent: int = 0
    seconds: float = 0.0  # from t0 to the last answer


def schedule(rate: float, seconds: float) -> list[float]:
    """The due times (seconds after t0) of a constant `rate` for `seconds`: i / rate."""
    return [i / rate for i in range(max(1, int(rate * seconds)))]


class _Due:
    """The requests due, handed out in order to whichever thread asks next."""

    def __init__(self, offsets: list[float]) -> None:
        self.offsets, self.next, self.lock = offsets, 0, threading.Lock()
        self.t0, self.last_end = 0.0, 0.0

    def take(self) -> float | None:
        with self.lock:
            if self.next == len(self.offsets):
                return None
            self.next += 1
            return self.t0 + self.offsets[self.next - 1]


def _send(call: Call, due: float, cutoff: float, into: OpenLoop, lock: threading.Lock) -> None:
    """One request at its due time (now, if late); its latency from `due`, or an error."""
    wait = due - time.perf_counter()
    if wait > 0:
        time.sleep(wait)  # pacing: the request is not due yet
    elif time.perf_counter() > cutoff:
        with lock:
            into.unsent += 1
        return
    try:
        took = call()
    except Exception:  # noqa: BLE001 - a dropped connection or an unexpected answer is an error of the row
        took = None
    ended = time.perf_counter()
    with lock:
        if took is None:
            into.errors += 1
        else:
            into.latencies.append(ended - due)
        into.seconds = max(into.seconds, ended)


def _thread(call: Call, start: threading.Barrier, plan: _Due, cutoff: list[float], into: OpenLoop,
            lock: threading.Lock) -> None:
    start.wait()
    while (due := plan.take()) is not None:
        _send(call, due, cutoff[0], into, lock)


def open_loop(calls: list[Call], *, rate: float, seconds: float, grace_s: float = GRACE_S) -> OpenLoop:
    """Requests due at a constant `rate` for `seconds`, over one thread per call (each call one thread's
    own: its connection, its grant); every request due is sent, late if no thread was free."""
    plan, lock, cutoff = _Due(schedule(rate, seconds)), threading.Lock(), [0.0]
    into = OpenLoop(due=len(plan.offsets))
    start = threading.Barrier(len(calls) + 1)
    pool = [threading.Thread(target=_thread, args=(call, start, plan, cutoff, into, lock), daemon=True)
            for call in calls]
    for thread in pool:
        thread.start()
    plan.t0 = time.perf_counter() + LEAD_S
    cutoff[0] = plan.t0 + seconds + grace_s
    start.wait(timeout=30)
    for thread in pool:
        thread.join(timeout=seconds + grace_s + 60)
    into.seconds = max(0.0, into.seconds - plan.t0)
    return into


def summary(loop: OpenLoop) -> dict:
    """The open loop's figures: p50, p95 and p99 in ms, the samples, errors and unsent, the achieved rate."""
    ms = sorted(1000 * latency for latency in loop.latencies)
    at = {q: (percentile(ms, q) if ms else None) for q in (50, 95, 99)}
    return {"p50_ms": at[50], "p95_ms": at[95], "p99_ms": at[99], "max_ms": ms[-1] if ms else None,
            "samples": len(ms), "errors": loop.errors + loop.unsent, "unsent": loop.unsent, "due": loop.due,
            "seconds": loop.seconds, "achieved_rps": len(ms) / loop.seconds if loop.seconds > 0 else None}


# --- per row and side ----------------------------------------------------------------------------


def _row_calls(row: str, clients: Clients, threads: int, tag: str) -> list[Call]:
    """`threads` calls of `row` at one side, each its own thread's: refresh, each of a new person's grant
    (it rotates it: one request in flight); userinfo, each on its own connection with one access token."""
    side = clients.running.side
    if row == "refresh":
        if clients.sign_in is None:
            raise ValueError(f"{side.name}'s clients sign nobody in")
        people = [OidcClient(side, clients.sign_in(f"l{tag}r{i}")) for i in range(threads)]
        return [client.refresh_call(client.tokens()["refresh_token"]) for client in people]
    access_token = clients.token.tokens()["access_token"]
    return [OidcClient(side).userinfo_call(access_token) for _ in range(threads)]


def measure_side(row: str, clients: Clients, cfg: dict, tag: str) -> dict:
    """The side's maximum rate of `row` (closed loop), then the open loop at `latency_load` of it."""
    calls = _row_calls(row, clients, max(cfg["latency_threads"], cfg["latency_max_threads"]), tag)
    peak = run_block(calls[:cfg["latency_max_threads"]], seconds=cfg["latency_max_s"], count=UNBOUNDED,
                     pid=clients.running.pid)
    max_rps = len(peak.latencies) / peak.seconds if peak.seconds > 0 else 0.0
    out = {"max_rps": max_rps, "max_errors": peak.errors, "target_rps": cfg["latency_load"] * max_rps}
    if not max_rps:
        return out | {"p50_ms": None, "p95_ms": None, "p99_ms": None, "samples": 0, "errors": 0}
    loop = open_loop(calls[:cfg["latency_threads"]], rate=out["target_rps"], seconds=cfg["latency_s"])
    return out | summary(loop)


def settings(cfg: dict) -> dict:
    """The latency settings of a peer bench configuration (DEFAULTS for those it lacks)."""
    return {key: cfg.get(key, default) for key, default in DEFAULTS.items()}


def measure_latency(sides: dict[str, Clients], cfg: dict, rows: tuple[str, ...], log=print) -> dict:
    """Each of `rows` that is a latency row (refresh, userinfo), at every side running: {"method": ...,
    "rows": {row: {side: figures}}}."""
    kept, tag = settings(cfg), str(next(_ROUNDS))
    out: dict = {"method": kept, "rows": {}}
    for row in (row for row in rows if row in ROWS):
        for name, clients in sides.items():
            log(f"latency {row} at {name}: max rate ({kept['latency_max_threads']} threads, "
                f"{kept['latency_max_s']:g}s), then {kept['latency_load']:.0%} of it open loop "
                f"({kept['latency_threads']} threads, {kept['latency_s']:g}s)")
            out["rows"].setdefault(row, {})[name] = measure_side(row, clients, kept, tag)
    return out


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_latency(latency: dict) -> str:
    """Per row and side: the max rate, the open loop's target and achieved rate, p50, p95, p99, errors."""
    method = latency.get("method") or {}
    head = (f"{'latency':14} {'side':15} {'max req/s':>9} {'target':>8} {'achieved':>8} {'p50 ms':>8} "
            f"{'p95 ms':>8} {'p99 ms':>8} {'errors':>6} {'samples':>7}")
    lines = [head, "-" * len(head)]
    for row, at in (latency.get("rows") or {}).items():
        for i, (name, side) in enumerate(at.items()):
            lines.append(f"{row if i == 0 else '':14} {name:15} {_fmt(side.get('max_rps'), '.0f'):>9} "
                         f"{_fmt(side.get('target_rps'), '.0f'):>8} {_fmt(side.get('achieved_rps'), '.0f'):>8} "
                         f"{_fmt(side.get('p50_ms'), '.2f'):>8} {_fmt(side.get('p95_ms'), '.2f'):>8} "
                         f"{_fmt(side.get('p99_ms'), '.2f'):>8} {side.get('errors', 0):>6} "
                         f"{side.get('samples', 0):>7}")
    lines.append(f"open loop at {method.get('latency_load', 0):.0%} of the max rate (closed loop, "
                 f"{method.get('latency_max_threads')} threads, {method.get('latency_max_s')}s), "
                 f"{method.get('latency_threads')} threads, {method.get('latency_s')}s; latency from each "
                 "request's due time to its checked answer")
    return "\n".join(lines)
