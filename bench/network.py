"""Round trips per operation on an AWS-shaped network: citylogin (its own gunicorn, the same
settings) reaches DynamoDB Local through bench/dynamo_proxy.py, which adds N ms each way when
asked. One request at a time, rounds ABBA between no delay (A) and N ms (B), in the same run:

    round trips = (p50 with the delay - p50 without) / (2 N ms)

which counts the sequential waits (requests made in parallel count once). The proxy also counts
the DynamoDB requests each operation makes (raw count, parallel or not), in the rounds without delay.
The operations are bench/trip_operations.py's; what a batch needs (a code to redeem) is made before
it, untimed and outside the count."""
from __future__ import annotations

import time
from collections import Counter

from dynamo_proxy import DelayProxy
from loadgen import summarize
from trip_operations import Operation

ABBA = ("A", "B", "B", "A")
SETTLE_SECONDS = 0.5  # what a request set off after its answer (a history row) lands meanwhile
WARMUP = 3


def _batch(proxy: DelayProxy, operation: Operation, n: int, *, count: bool) -> tuple[list[float], Counter]:
    """n requests one at a time, each with an item made beforehand; when `count`, the DynamoDB
    requests the proxy carried for them (after what the preparation set off has landed)."""
    items = operation.items(n)
    if not (count or operation.prepare):
        return [operation.timed(item) for item in items], Counter()
    time.sleep(SETTLE_SECONDS)
    mark = proxy.mark()
    latencies = [operation.timed(item) for item in items]
    if not count:
        return latencies, Counter()
    time.sleep(SETTLE_SECONDS)
    return latencies, Counter((r.operation, r.tables) for r in proxy.since(mark))


def bench_round_trips(proxy: DelayProxy, operations: dict[str, Operation], *, delay_ms: float, rounds: int,
                      prefix: str, per_round: int, max_seconds: float = 300) -> dict:
    for operation in operations.values():  # warm-up: connections, code paths
        _batch(proxy, operation, WARMUP, count=False)
    samples = {op: {"A": [], "B": []} for op in operations}
    counts = {op: Counter() for op in operations}
    counted = dict.fromkeys(operations, 0)
    deadline = time.monotonic() + max_seconds
    try:
        for letter in ABBA * rounds:
            proxy.delay = delay_ms / 1000 if letter == "B" else 0.0
            for op, operation in operations.items():
                latencies, seen = _batch(proxy, operation, per_round, count=letter == "A")
                samples[op][letter] += latencies
                if letter == "A":
                    counts[op].update(seen)
                    counted[op] += per_round
            if time.monotonic() > deadline:
                break
    finally:
        proxy.delay = 0.0
    out: dict = {"delay_ms": delay_ms, "operations": {}}
    for op, by_letter in samples.items():
        without, with_delay = summarize(by_letter["A"]), summarize(by_letter["B"])
        trips = (with_delay["p50"] - without["p50"]) / (2 * delay_ms) if without.get("n") and with_delay.get("n") \
            else None
        n = counted[op] or 1
        out["operations"][op] = {
            "without_delay": without, "with_delay": with_delay, "round_trips": trips,
            "dynamodb_requests": sum(counts[op].values()) / n,
            "by_request": {f"{operation} {'+'.join(t.removeprefix(prefix) for t in tables)}": count / n
                           for (operation, tables), count in sorted(counts[op].items())}}
    return out
