"""Round trips per operation on an AWS-shaped network: citylogin (its own gunicorn, the same
settings) reaches DynamoDB Local through bench/dynamo_proxy.py, which adds N ms each way when
asked. One request at a time, rounds ABBA between no delay (A) and N ms (B), in the same run:

    round trips = (p50 with the delay - p50 without) / (2 N ms)

which counts the sequential waits (requests made in parallel count once). The proxy also counts
the DynamoDB requests each operation makes (raw count, parallel or not), in the rounds without delay."""
from __future__ import annotations

import time
from collections import Counter

import flows
from citylogin.client import Client
from dynamo_proxy import DelayProxy
from loadgen import local_session, summarize

ABBA = ("A", "B", "B", "A")
SETTLE_SECONDS = 0.5  # what a request set off after its answer (a history row) lands meanwhile
OPERATIONS = {"refresh": flows.timed_refresh, "pairing": flows.timed_pairing, "login": flows.timed_login,
              "me": flows.timed_me}


def network_users(base_url: str, run: str) -> dict[str, Client]:
    """One user per operation, logged in (the pairing user gains a token per request)."""
    users = {op: flows.register(base_url, f"b{run}_net_{op}") for op in OPERATIONS}
    for user in users.values():
        flows.login_with_retry(user)
    return users


def _count(proxy: DelayProxy, measure, client: Client, http, n: int) -> tuple[list[float], Counter]:
    time.sleep(SETTLE_SECONDS)
    mark = proxy.mark()
    latencies = [measure(client, http) for _ in range(n)]
    time.sleep(SETTLE_SECONDS)
    return latencies, Counter((r.operation, r.tables) for r in proxy.since(mark))


def bench_round_trips(proxy: DelayProxy, users: dict[str, Client], *, delay_ms: float, rounds: int, prefix: str,
                      per_round: int, max_seconds: float = 300) -> dict:
    http = local_session()
    for user in users.values():  # fresh tokens: the access tokens of the previous run have expired
        flows.login_with_retry(user)
    for op, measure in OPERATIONS.items():  # warm-up
        for _ in range(3):
            measure(users[op], http)
    samples = {op: {"A": [], "B": []} for op in OPERATIONS}
    counts = {op: Counter() for op in OPERATIONS}
    counted = dict.fromkeys(OPERATIONS, 0)
    deadline = time.monotonic() + max_seconds
    try:
        for letter in ABBA * rounds:
            proxy.delay = delay_ms / 1000 if letter == "B" else 0.0
            for op, measure in OPERATIONS.items():
                if letter == "A":
                    latencies, seen = _count(proxy, measure, users[op], http, per_round)
                    counts[op].update(seen)
                    counted[op] += per_round
                else:
                    latencies = [measure(users[op], http) for _ in range(per_round)]
                samples[op][letter] += latencies
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
