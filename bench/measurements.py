"""Latency measurements: in-process baselines (Argon2id, certificate issuance), registration,
login paired with an Argon2id verify, one-at-a-time /session/me against its floor, closed-loop load."""
from __future__ import annotations

import sys
import time

import requests
from cryptography.hazmat.primitives.asymmetric import ec

import flows
from citylogin.client.api import Client
from common.config import Settings
from common.crypto.certificates import certificate_pem, create_ca, issue_device_certificate
from common.crypto.passwords import PasswordHasher
from common.database import dynamo
from cpu import cpu_delta, tree_cpu_seconds
from flows import PASSWORD
from loadgen import closed_loop, local_session, summarize, time_calls

# ABBAAB rather than ABABAB: mean round positions 2.33 vs 2.67 instead of 2 vs 3, so a linear drift
# mostly cancels between the two endpoints.
ROUND_ORDER = ("A", "B", "B", "A", "A", "B")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- in-process baselines ------------------------------------------------------------------

def argon2_params() -> dict[str, int]:
    defaults = Settings()
    return {"time_cost": defaults.argon2_time_cost, "memory_cost": defaults.argon2_memory_cost,
            "parallelism": defaults.argon2_parallelism}


def verifier():
    """An in-process Argon2id verify of PASSWORD with the default parameters, ready to time."""
    hasher = PasswordHasher(**argon2_params())
    stored = hasher.hash(PASSWORD)
    return lambda: hasher.verify(stored, PASSWORD)


def bench_argon2(n: int) -> dict[str, dict]:
    """Argon2id hash() and verify() with the default parameters, in this process."""
    hasher = PasswordHasher(**argon2_params())
    stored = hasher.hash(PASSWORD)  # also warms the allocator
    hasher.verify(stored, PASSWORD)
    hashes = time_calls(lambda: hasher.hash(PASSWORD), count=n, max_seconds=120)
    verifies = time_calls(lambda: hasher.verify(stored, PASSWORD), count=n, max_seconds=120)
    return {"argon2_hash": summarize(hashes), "argon2_verify": summarize(verifies)}


def bench_certificate(n: int) -> dict[str, dict]:
    """Issuing one device certificate (build, sign, PEM), as registration does, in this process."""
    ca = create_ca()
    public_key = ec.generate_private_key(ec.SECP256R1()).public_key()

    def issue():
        cert = issue_device_certificate(ca, public_key=public_key, user_uuid="0" * 36,
                                        device_id="bench-device", days=365)
        return certificate_pem(cert)
    issue()
    return {"certificate_issue": summarize(time_calls(issue, count=n, max_seconds=60))}


# --- registration and login ----------------------------------------------------------------

def bench_registration(base_url: str, run_id: str, n: int) -> dict[str, dict]:
    """client.register (ECDSA P-256 key made on the client, then POST /registration/)."""
    counter = iter(range(n))
    latencies = time_calls(lambda: flows.register(base_url, f"b{run_id}_reg{next(counter)}"), count=n,
                           max_seconds=300)
    return {"registration": summarize(latencies)}


def bench_login(client: Client, n: int) -> dict[str, dict]:
    """Full client.login (challenge + login) and the login POST alone, each followed by an in-process
    Argon2id verify: the baseline in the same time window, and per-iteration (paired) differences,
    which cancel the drift of a noisy machine. A client.login whose connection the server dropped
    is counted as an error, not timed (see bench/README.md)."""
    http, verify = local_session(), verifier()
    flows.login_with_retry(client)  # warm-up
    full, post_only, verifies, full_paired, post_paired, dropped = [], [], [], [], [], 0
    deadline = time.monotonic() + 300
    for _ in range(n):
        start = time.perf_counter()
        try:
            client.login(PASSWORD)
            login_time = time.perf_counter() - start
        except requests.ConnectionError:
            login_time, dropped = None, dropped + 1
        post_time = flows.login_by_hand(client, http)
        verify_time = time_calls(verify, count=1, max_seconds=30)[0]
        post_only.append(post_time)
        verifies.append(verify_time)
        post_paired.append(post_time - verify_time)
        if login_time is not None:
            full.append(login_time)
            full_paired.append(login_time - verify_time)
        if time.monotonic() > deadline:
            break
    return {"login_full": {**summarize(full), "errors": dropped}, "login_post": summarize(post_only),
            "argon2_verify_login_window": summarize(verifies),
            "login_full_minus_verify_paired": summarize(full_paired),
            "login_post_minus_verify_paired": summarize(post_paired)}


def bench_login_post_paired(client: Client, n: int) -> dict[str, dict]:
    """POST /login/ alone, each followed by an in-process verify: p50 and the paired difference."""
    http, verify = local_session(), verifier()
    for _ in range(3):  # warm-up (after seeding, DynamoDB Local may still be collecting garbage)
        flows.login_by_hand(client, http)
    posts, paired = [], []
    deadline = time.monotonic() + 120
    for _ in range(n):
        post_time = flows.login_by_hand(client, http)
        posts.append(post_time)
        paired.append(post_time - time_calls(verify, count=1, max_seconds=30)[0])
        if time.monotonic() > deadline:
            break
    return {"login_post": summarize(posts), "login_post_minus_verify_paired": summarize(paired)}


# --- protected route --------------------------------------------------------------------------

def checked_get(http, url: str, headers: dict[str, str]):
    def get():
        response = http.get(url, headers=headers, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return get


def bench_sequential(base_url: str, headers: dict[str, str], get_item, n: int) -> dict[str, dict]:
    """One request at a time, /session/me, /healthz and GetItem interleaved: per-request cost."""
    http = local_session()
    me, floor = checked_get(http, base_url + "/session/me", headers), checked_get(http, base_url + "/healthz", {})
    for call in (me, floor, get_item):  # warm the connections and code paths
        time_calls(call, count=20, max_seconds=30)
    samples = {"me": [], "floor": [], "getitem": []}
    deadline = time.monotonic() + 180
    for _ in range(n):
        for name, call in (("me", me), ("floor", floor), ("getitem", get_item)):
            samples[name] += time_calls(call, count=1, max_seconds=30)
        if time.monotonic() > deadline:
            break
    return {f"seq_{name}": summarize(values) for name, values in samples.items()}


def make_get_item(endpoint_url: str, table: str, user_uuid: str):
    client = dynamo.make_client(region="us-east-1", endpoint_url=endpoint_url)
    key = {"user_uuid": {"S": user_uuid}}

    def get_item():
        if "Item" not in client.get_item(TableName=table, Key=key, ConsistentRead=True):
            raise RuntimeError("GetItem baseline: the user item is missing")
    return get_item


def alternating_load(targets: dict[str, tuple[str, dict]], *, threads: int, warmup_s: float, load_s: float,
                     rounds: int, pids: dict[str, int]) -> dict[str, dict]:
    """Closed-loop load on two targets (name -> (url, headers)) in alternating rounds (ABBAAB),
    latencies pooled per target; plus the CPU each request cost the processes in `pids` and this
    process (the load generator)."""
    names = list(targets)
    for url, headers in targets.values():
        closed_loop(url, headers=headers, threads=threads, seconds=warmup_s)
    pooled = {name: {"latencies": [], "elapsed": 0.0, "errors": 0, "rounds_rps": [], "cpu": {}} for name in names}
    for letter in ROUND_ORDER[: 2 * rounds]:
        name = names[0] if letter == "A" else names[1]
        url, headers = targets[name]
        before = tree_cpu_seconds(pids)
        result = closed_loop(url, headers=headers, threads=threads, seconds=load_s / rounds)
        used = cpu_delta(before, tree_cpu_seconds(pids))
        pool = pooled[name]
        pool["latencies"] += result.latencies
        pool["elapsed"] += result.elapsed
        pool["errors"] += result.errors
        pool["rounds_rps"].append(round(result.requests_per_second, 1))
        pool["cpu"] = {k: pool["cpu"].get(k, 0.0) + v for k, v in used.items()}
        log(f"  load round {name}: {result.requests_per_second:.0f} req/s, {result.errors} errors")
    return {name: _pooled_summary(pool) for name, pool in pooled.items()}


def _pooled_summary(pool: dict) -> dict:
    count = len(pool["latencies"])
    stats = summarize(pool["latencies"])
    stats.update(rps=count / pool["elapsed"] if pool["elapsed"] else 0.0, errors=pool["errors"],
                 rounds_rps=pool["rounds_rps"], seconds=pool["elapsed"],
                 cpu_ms_per_request={k: 1000 * v / count for k, v in pool["cpu"].items()} if count else {})
    return stats


def bench_load(base_url: str, headers: dict[str, str], cfg: dict, pids: dict[str, int]) -> dict[str, dict]:
    """/session/me and /healthz under closed-loop load, alternating."""
    targets = {"load_me": (base_url + "/session/me", headers), "load_floor": (base_url + "/healthz", {})}
    return alternating_load(targets, threads=cfg["threads"], warmup_s=cfg["warmup_s"], load_s=cfg["load_s"],
                            rounds=cfg["rounds"], pids=pids)
