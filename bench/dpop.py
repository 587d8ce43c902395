"""What binding tokens to the device key costs (issue 19, SPEC §12: "≤ 0.3 ms added at p50 for ES256
and EdDSA"), per key kind, and what the two ways of refusing a replayed proof on every host cost.

    .venv/bin/python bench/dpop.py [--n 300]

Not a test. Three parts, each against a floor measured in the same run:
1. In this process, the server's check of one proof (common.crypto.dpop: parse, verify the signature with
   the key in its header, the claims) and of a nonce: p50/p99 in µs per algorithm.
2. One all-in-one app in this process (Flask's threaded server) on DynamoDB Local in memory. Per key
   kind, one user with two devices (no limit): one bearer session (a login without a proof) and one
   bound session. GET /session/me and POST /session/refresh, bearer and bound interleaved one at a
   time (the proof is made before the clock starts: the client's signing is not the server's cost);
   the added p50 is the median of the paired differences. DynamoDB calls per request are counted
   with botocore's event hook.
3. The replay check: a conditional PutItem on DynamoDB Local (what each bound request adds), against
   a nonce check and one more round trip (what a per-host nonce would cost a client whose request
   reaches another host: (H - 1) / H of requests behind a round-robin balancer of H hosts)."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from citylogin.app import create_app  # noqa: E402
from citylogin.client.keys import dpop_proof, generate_key  # noqa: E402
from common.crypto import dpop  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal  # noqa: E402
from tests.support.live import PASSWORD, add_device, bearer_login, register_device, serving  # noqa: E402

KINDS = {"ES256": "ecdsa-p256", "EdDSA": "ed25519", "ML-DSA-87": "ml-dsa-87"}
REFRESHER = "citylogin-key-ring-refresher"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def in_process(n: int) -> dict:
    """µs per proof check (read_proof + check_proof) and per nonce check, by algorithm."""
    out = {}
    url = "https://login.example/session/me"
    for alg, kind in KINDS.items():
        key, token = generate_key(kind), "a.b.c"
        proofs = [dpop_proof(key, method="GET", url=url, access_token=token) for _ in range(n)]
        times = []
        for proof in proofs:
            start = time.perf_counter()
            checked, _ = dpop.read_proof(proof)
            dpop.check_proof(checked, method="GET", urls=[url], now=int(time.time()), access_token=token)
            times.append((time.perf_counter() - start) * 1e6)
        out[alg] = {"p50_us": round(pct(times, 0.5), 1), "p99_us": round(pct(times, 0.99), 1),
                    "proof_bytes": len(proofs[0])}
    secret, now = b"s" * 32, int(time.time())
    nonce = dpop.make_nonce(secret=secret, kid="k", now=now)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        dpop.nonce_is_current(nonce, secret_of=lambda _kid: secret, now=now)
        times.append((time.perf_counter() - start) * 1e6)
    out["nonce_check"] = {"p50_us": round(pct(times, 0.5), 1)}
    return out


class Calls:
    def __init__(self, client) -> None:
        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        client.meta.events.register("before-parameter-build.dynamodb", self._count)

    def _count(self, model, **_):
        if not threading.current_thread().name.startswith(REFRESHER):
            with self.lock:
                self.counts[model.name] += 1

    def take(self) -> Counter:
        with self.lock:
            taken, self.counts = self.counts, Counter()
        return taken


def paired(n: int, bearer, bound) -> dict:
    """Interleaved one at a time; each callable returns its latency in s. Added = median of pairs."""
    a, b = [], []
    for i in range(n):
        first, second = (bearer, bound) if i % 2 else (bound, bearer)
        x, y = first(), second()
        (a, b)[first is bound].append(x)
        (a, b)[second is bound].append(y)
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    return {"bearer_p50_ms": round(statistics.median(a) * 1e3, 3), "bound_p50_ms": round(statistics.median(b) * 1e3, 3),
            "added_p50_ms": round(statistics.median(diffs) * 1e3, 3)}


def timed(method: str, url: str, **kwargs) -> float:
    start = time.perf_counter()
    response = requests.request(method, url, timeout=30, **kwargs)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:200]}")
    return elapsed


def over_http(url: str, ctx, n: int) -> dict:
    out = {}
    calls = Calls(ctx.dynamodb)
    for alg, kind in KINDS.items():
        out[alg] = measure_kind(url, ctx, calls, kind, n)
        print(json.dumps({alg: out[alg]}), flush=True)
    return out


def measure_kind(url: str, ctx, calls: Calls, kind: str, n: int) -> dict:
    """A bearer and a bound device of one user, with keys of `kind`, measured side by side."""
    bearer = register_device(url, key_kind=kind)
    bearer_login(bearer)
    bound = add_device(ctx, bearer, key_kind=kind)
    bound.login(PASSWORD)
    me = url + "/session/me"

    def bearer_me() -> float:
        return timed("GET", me, headers={"Authorization": f"Bearer {bearer.access_token}"})

    def bound_me() -> float:
        return timed("GET", me, headers=bound.auth_headers("GET", me))

    for _ in range(20):  # warm-up: connections, caches
        bearer_me(), bound_me()
    row = {"me": paired(n, bearer_me, bound_me)}
    calls.take()
    bearer_me()
    bearer_calls = calls.take()
    bound_me()
    row["calls_per_me"] = {"bearer": dict(bearer_calls), "bound": dict(calls.take())}

    def bearer_refresh() -> float:
        response = requests.post(url + "/session/refresh", json={"refresh_token": bearer.refresh_token},
                                 timeout=30)
        bearer._keep_tokens(response.json())
        return response.elapsed.total_seconds()

    def bound_refresh() -> float:
        headers = {"DPoP": bound.proof("POST", url + "/session/refresh")}
        response = requests.post(url + "/session/refresh", json={"refresh_token": bound.refresh_token},
                                 headers=headers, timeout=30)
        bound._keep_tokens(response.json())
        return response.elapsed.total_seconds()

    row["refresh"] = paired(max(20, n // 3), bearer_refresh, bound_refresh)
    calls.take()
    bound_refresh()
    row["calls_per_refresh"] = {"bound": dict(calls.take())}
    return row


def replay_designs(url: str, ctx, n: int) -> dict:
    """The conditional write each bound request makes, against one more round trip (a 401 answer)."""
    table = ctx.tables.one_time_tokens
    puts = []
    for _ in range(n):
        start = time.perf_counter()
        ctx.dynamodb.put_item(TableName=table, Item={"token_digest": {"S": uuid.uuid4().hex}, "kind": {"S": "bench"},
                                                     "expires_epoch": {"N": "1"}, "expires_ttl": {"N": "1"}},
                              ConditionExpression="attribute_not_exists(token_digest)")
        puts.append(time.perf_counter() - start)
    trips = []
    for _ in range(n):  # a refused request: what a retry with another host's nonce costs at least
        start = time.perf_counter()
        requests.get(url + "/session/me", headers={"Authorization": "Bearer x"}, timeout=30)
        trips.append(time.perf_counter() - start)
    return {"conditional_put_p50_ms": round(statistics.median(puts) * 1e3, 3),
            "round_trip_p50_ms": round(statistics.median(trips) * 1e3, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    results: dict = {"in_process": in_process(max(args.n, 1000))}
    print(json.dumps(results), flush=True)
    with DynamoDBLocal() as local, tempfile.TemporaryDirectory() as data:
        app = create_app({"dynamodb_endpoint_url": local.endpoint_url, "data_dir": data, "log_level": "WARNING",
                          "table_prefix": f"d{uuid.uuid4().hex[:6]}_", "max_concurrent_devices": 0,
                          "argon2_time_cost": 1, "argon2_memory_cost": 8192, "deletion_sweep_interval": 0,
                          "session_sweep_interval": 0, "ssf_push_interval": 0})
        ctx = app.extensions["citylogin"]
        with serving(app) as url:
            results["http"] = over_http(url, ctx, args.n)
            results["replay"] = replay_designs(url, ctx, args.n)
    print(json.dumps(results, indent=1))
    report(results)


def report(results: dict) -> None:
    print("\n| alg | proof check p50 (µs, in process) | /session/me added p50 (ms) | refresh added p50 (ms) |"
          " calls per bound request | per bound refresh |")
    print("|---|---|---|---|---|---|")
    for alg in KINDS:
        cpu, http = results["in_process"][alg], results["http"][alg]
        print(f"| {alg} | {cpu['p50_us']} | {http['me']['added_p50_ms']} | {http['refresh']['added_p50_ms']} | "
              f"{http['calls_per_me']['bound']} | {http['calls_per_refresh']['bound']} |")
    replay = results["replay"]
    print(f"\nreplay check: conditional PutItem p50 {replay['conditional_put_p50_ms']} ms on every bound request; "
          f"a per-host nonce: {results['in_process']['nonce_check']['p50_us']} µs, plus one round trip "
          f"(p50 {replay['round_trip_p50_ms']} ms) for (H-1)/H of requests behind H round-robin hosts")


if __name__ == "__main__":
    main()
