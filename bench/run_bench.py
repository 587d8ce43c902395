"""citylogin benchmark: registration, login and protected-route cost as ratios and differences
against baselines measured in the same run (Argon2id, certificate issuance, /healthz, GetItem).

    .venv/bin/python bench/run_bench.py [--quick] [--out bench/results/latest.json]

Starts DynamoDB Local (in memory) and gunicorn on 127.0.0.1, stops both at the end.
Not a test: pytest never collects it. See bench/README.md for what each number means.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric import ec

from cpu import cpu_delta, tree_cpu_seconds
from loadgen import closed_loop, local_session, summarize, time_calls
from servers import LOCALHOST_ONLY, PROJECT_ROOT, app_environment, gunicorn_app, run_init
from citylogin.client import Client, KeyFile, sign_challenge
from common import dynamo
from common.certificates import certificate_pem, issue_device_certificate, load_or_create_ca
from common.config import Settings
from common.crypto import PasswordHasher
from common.dynamodb_local import DynamoDBLocal

PASSWORD = "Bench-" + secrets.token_hex(8)  # random: never in the common-password list
GOAL_ME_OVERHEAD_MS = 1.0
GOAL_LOGIN_OVERHEAD_MS = 15.0

FULL = {"argon2_n": 15, "cert_n": 50, "register_n": 20, "login_n": 20, "sequential_n": 300,
        "threads": 8, "warmup_s": 2.0, "load_s": 10.0, "rounds": 3, "watchdog_s": 900}
QUICK = {"argon2_n": 5, "cert_n": 10, "register_n": 5, "login_n": 5, "sequential_n": 100,
         "threads": 8, "warmup_s": 1.0, "load_s": 3.0, "rounds": 3, "watchdog_s": 150}
# ABBAAB rather than ABABAB: mean round positions 2.33 vs 2.67 instead of 2 vs 3, so a linear drift
# mostly cancels between the two endpoints.
ROUND_ORDER = ("me", "floor", "floor", "me", "me", "floor")


class WatchdogExpired(RuntimeError):
    pass


def _watchdog(seconds: int) -> None:
    def expire(*_):
        raise WatchdogExpired(f"benchmark exceeded its {seconds}s limit")
    signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- in-process baselines ------------------------------------------------------------------

def argon2_params() -> dict[str, int]:
    defaults = Settings()
    return {"time_cost": defaults.argon2_time_cost, "memory_cost": defaults.argon2_memory_cost,
            "parallelism": defaults.argon2_parallelism}


def bench_argon2(n: int) -> dict[str, dict]:
    """Argon2id hash() and verify() with the default parameters, in this process."""
    hasher = PasswordHasher(**argon2_params())
    stored = hasher.hash(PASSWORD)  # also warms the allocator
    hasher.verify(stored, PASSWORD)
    hashes = time_calls(lambda: hasher.hash(PASSWORD), count=n, max_seconds=120)
    verifies = time_calls(lambda: hasher.verify(stored, PASSWORD), count=n, max_seconds=120)
    return {"argon2_hash": summarize(hashes), "argon2_verify": summarize(verifies)}


def bench_certificate(n: int, work_dir: Path) -> dict[str, dict]:
    """Issuing one device certificate (build, sign, PEM), as registration does, in this process."""
    ca = load_or_create_ca(work_dir / "bench-ca")
    public_key = ec.generate_private_key(ec.SECP256R1()).public_key()

    def issue():
        cert = issue_device_certificate(ca, public_key=public_key, user_uuid="0" * 36,
                                        device_id="bench-device", days=365)
        return certificate_pem(cert)
    issue()
    return {"certificate_issue": summarize(time_calls(issue, count=n, max_seconds=60))}


# --- registration and login ----------------------------------------------------------------

def _new_client(base_url: str, *, key_file: KeyFile | None = None) -> Client:
    return Client(base_url, key_file=key_file, session=local_session(), timeout=30)


def register(base_url: str, name: str) -> Client:
    client = _new_client(base_url)
    client.register(username=name, email=f"{name}@example.com", password=PASSWORD, key_kind="ecdsa-p256")
    return client


def bench_registration(base_url: str, run_id: str, n: int) -> dict[str, dict]:
    """client.register (ECDSA P-256 key made on the client, then POST /registration/)."""
    counter = iter(range(n))
    latencies = time_calls(lambda: register(base_url, f"b{run_id}_reg{next(counter)}"), count=n, max_seconds=300)
    return {"registration": summarize(latencies)}


def _login_post_only(client: Client, http) -> float:
    """One login replicated by hand; returns the latency of POST /login/ alone."""
    key_file = client.key_file
    # No body here, unlike citylogin.client: the view never reads one, and an unread body can make
    # gunicorn 24's gthread worker swallow the next request on the connection (see bench/README.md).
    response = http.post(client.base_url + "/login/challenge", timeout=30)
    response.raise_for_status()
    challenge = response.json()["challenge"]
    body = {"username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge)}
    start = time.perf_counter()
    response = http.post(client.base_url + "/login/", json=body, timeout=30)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"login failed: {response.status_code} {response.text[:300]}")
    return elapsed


def login_with_retry(client: Client, attempts: int = 3) -> dict:
    """client.login for set-up steps, retried on a dropped connection (see bench/README.md)."""
    for attempt in range(attempts):
        try:
            return client.login(PASSWORD)
        except requests.ConnectionError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def bench_login(client: Client, n: int) -> dict[str, dict]:
    """Full client.login (challenge + login) and the login POST alone, each followed by an in-process
    Argon2id verify: the baseline in the same time window, and per-iteration (paired) differences,
    which cancel the drift of a noisy machine. A client.login whose connection the server dropped
    is counted as an error, not timed (see bench/README.md)."""
    http, hasher = local_session(), PasswordHasher(**argon2_params())
    stored = hasher.hash(PASSWORD)
    login_with_retry(client)  # warm-up
    full, post_only, verifies, full_paired, post_paired, dropped = [], [], [], [], [], 0
    deadline = time.monotonic() + 300
    for _ in range(n):
        start = time.perf_counter()
        try:
            client.login(PASSWORD)
            login_time = time.perf_counter() - start
        except requests.ConnectionError:
            login_time, dropped = None, dropped + 1
        post_time = _login_post_only(client, http)
        verify_time = time_calls(lambda: hasher.verify(stored, PASSWORD), count=1, max_seconds=30)[0]
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


# --- protected route --------------------------------------------------------------------------

def _checked_get(http, url: str, headers: dict[str, str]):
    def get():
        response = http.get(url, headers=headers, timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return get


def bench_sequential(base_url: str, headers: dict[str, str], get_item, n: int) -> dict[str, dict]:
    """One request at a time, /session/me, /healthz and GetItem interleaved: per-request cost."""
    http = local_session()
    me, floor = _checked_get(http, base_url + "/session/me", headers), _checked_get(http, base_url + "/healthz", {})
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


def bench_load(base_url: str, headers: dict[str, str], cfg: dict, pids: dict[str, int]) -> dict[str, dict]:
    """Closed-loop load, /session/me and /healthz in alternating rounds, latencies pooled per endpoint;
    plus the CPU each request cost the server, DynamoDB Local and this process (the load generator)."""
    targets = {"me": (base_url + "/session/me", headers), "floor": (base_url + "/healthz", {})}
    for url, hdrs in targets.values():
        closed_loop(url, headers=hdrs, threads=cfg["threads"], seconds=cfg["warmup_s"])
    round_s = cfg["load_s"] / cfg["rounds"]
    pooled = {name: {"latencies": [], "elapsed": 0.0, "errors": 0, "rounds_rps": [], "cpu": {}} for name in targets}
    for name in ROUND_ORDER[: 2 * cfg["rounds"]]:
        url, hdrs = targets[name]
        before = tree_cpu_seconds(pids)
        result = closed_loop(url, headers=hdrs, threads=cfg["threads"], seconds=round_s)
        used = cpu_delta(before, tree_cpu_seconds(pids))
        pool = pooled[name]
        pool["latencies"] += result.latencies
        pool["elapsed"] += result.elapsed
        pool["errors"] += result.errors
        pool["rounds_rps"].append(round(result.requests_per_second, 1))
        pool["cpu"] = {k: pool["cpu"].get(k, 0.0) + v for k, v in used.items()}
        _log(f"  load round {name}: {result.requests_per_second:.0f} req/s, {result.errors} errors")
    out = {}
    for name, pool in pooled.items():
        count = len(pool["latencies"])
        stats = summarize(pool["latencies"])
        stats.update(rps=count / pool["elapsed"], errors=pool["errors"], rounds_rps=pool["rounds_rps"],
                     seconds=pool["elapsed"],
                     cpu_ms_per_request={k: 1000 * v / count for k, v in pool["cpu"].items()} if count else {})
        out[f"load_{name}"] = stats
    return out


def make_get_item(endpoint_url: str, user_uuid: str):
    client = dynamo.make_client(region="us-east-1", endpoint_url=endpoint_url)
    key = {"user_uuid": {"S": user_uuid}}

    def get_item():
        if "Item" not in client.get_item(TableName="bench_users", Key=key, ConsistentRead=True):
            raise RuntimeError("GetItem baseline: the user item is missing")
    return get_item


# --- report -------------------------------------------------------------------------------------

def derived(results: dict) -> dict[str, dict]:
    p50 = {name: stats["p50"] for name, stats in results.items() if stats.get("n")}
    out = {
        "registration_over_argon2_hash": {"value": p50["registration"] / p50["argon2_hash"], "unit": "x"},
        "certificate_share_of_registration": {"value": p50["certificate_issue"] / p50["registration"],
                                              "unit": "fraction"},
        "login_minus_argon2_verify_ms": {"value": p50["login_full"] - p50["argon2_verify"], "unit": "ms",
                                         "goal": GOAL_LOGIN_OVERHEAD_MS},
        "login_post_minus_argon2_verify_ms": {"value": p50["login_post"] - p50["argon2_verify"], "unit": "ms",
                                              "goal": GOAL_LOGIN_OVERHEAD_MS},
        "login_minus_verify_paired_ms": {"value": p50["login_full_minus_verify_paired"], "unit": "ms",
                                         "goal": GOAL_LOGIN_OVERHEAD_MS},
        "login_post_minus_verify_paired_ms": {"value": p50["login_post_minus_verify_paired"], "unit": "ms",
                                              "goal": GOAL_LOGIN_OVERHEAD_MS},
        "load_me_minus_floor_plus_getitem_ms": {
            "value": p50["load_me"] - (p50["load_floor"] + p50["seq_getitem"]), "unit": "ms",
            "goal": GOAL_ME_OVERHEAD_MS},
        "load_me_rps_over_floor_rps": {"value": results["load_me"]["rps"] / results["load_floor"]["rps"],
                                       "unit": "x"},
        "seq_me_minus_floor_plus_getitem_ms": {
            "value": p50["seq_me"] - (p50["seq_floor"] + p50["seq_getitem"]), "unit": "ms",
            "goal": GOAL_ME_OVERHEAD_MS},
    }
    for item in out.values():
        if "goal" in item:
            item["met"] = item["value"] <= item["goal"]
    return out


ROW_LABELS = {
    "argon2_hash": "Argon2id hash (in-process)", "argon2_verify": "Argon2id verify (in-process)",
    "certificate_issue": "certificate issue (in-process)", "registration": "POST /registration/ (client)",
    "login_full": "login: challenge + POST", "login_post": "login: POST /login/ alone",
    "argon2_verify_login_window": "Argon2id verify (during logins)",
    "seq_floor": "seq GET /healthz (floor)", "seq_me": "seq GET /session/me",
    "seq_getitem": "seq DynamoDB GetItem (boto3)", "load_floor": "load GET /healthz (floor)",
    "load_me": "load GET /session/me",
}


def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def render_table(results: dict, ratios: dict, info: dict) -> str:
    a2 = info["argon2_params"]
    lines = [f"cpus {info['cpus_usable']}/{info['cpu_count']}, Python {info['python']}, Argon2id t={a2['time_cost']} "
             f"m={a2['memory_cost']} KiB p={a2['parallelism']}, load average at start "
             f"{info['loadavg_start'][0]:.2f}, at end {info['loadavg_end'][0]:.2f}", "",
             f"{'measurement':34} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'req/s':>8} {'err':>4}",
             "-" * 84]
    for key, label in ROW_LABELS.items():
        s = results[key]
        lines.append(f"{label:34} {s['n']:>6} {_fmt(s.get('p50')):>9} {_fmt(s.get('p95')):>9} "
                     f"{_fmt(s.get('p99')):>9} {_fmt(s.get('rps'), '.0f'):>8} {_fmt(s.get('errors'), 'd'):>4}")
    lines += ["", f"{'CPU ms per request under load':34} {'server':>9} {'dynamodb':>9} {'loadgen':>9} {'total':>8}",
              "-" * 84]
    for key in ("load_floor", "load_me"):
        cpu = results[key].get("cpu_ms_per_request", {})
        parts = [cpu.get(k) for k in ("server", "dynamodb", "loadgen")]
        total = sum(parts) if None not in parts else None
        lines.append(f"{ROW_LABELS[key]:34} " + " ".join(f"{_fmt(v):>9}" for v in parts) + f" {_fmt(total):>8}")
    lines += ["", f"{'derived (p50)':44} {'value':>10}  goal"]
    lines.append("-" * 84)
    for key, item in ratios.items():
        goal = f"<= {item['goal']:g} ms  {'MET' if item['met'] else 'MISSED'}" if "goal" in item else ""
        lines.append(f"{key:44} {item['value']:>10.3f}  {goal}")
    return "\n".join(lines)


def machine_info() -> dict:
    versions = {}
    for package in ("argon2-cffi", "argon2-cffi-bindings", "gunicorn", "flask", "boto3", "cryptography", "requests"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine(), "loadavg_start": os.getloadavg(),
            "argon2_params": argon2_params(), "versions": versions}


# --- main ----------------------------------------------------------------------------------------

def run(cfg: dict) -> dict:
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="citylogin-bench-") as tmp:
        work_dir = Path(tmp)
        _log("argon2id and certificate baselines (in-process)")
        results |= bench_argon2(cfg["argon2_n"])
        results |= bench_certificate(cfg["cert_n"], work_dir)
        _log("starting DynamoDB Local (in memory)")
        with DynamoDBLocal() as db:
            env = app_environment(endpoint_url=db.endpoint_url, data_dir=work_dir / "data")
            _log("citylogin init: " + run_init(env).replace("\n", "; "))
            with gunicorn_app(env, log_path=work_dir / "gunicorn.log") as app:
                _log(f"gunicorn ready on {app.base_url}")
                pids = {"server": app.pid, "dynamodb": db.process.pid}
                results |= bench_server(app.base_url, db.endpoint_url, cfg, pids)
    return results


def bench_server(base_url: str, endpoint_url: str, cfg: dict, pids: dict[str, int]) -> dict[str, dict]:
    run_id = secrets.token_hex(3)
    results: dict[str, dict] = {}
    # Two untimed registrations warm both workers and give the login and load users.
    login_client = register(base_url, f"b{run_id}_login")
    load_client = register(base_url, f"b{run_id}_load")
    _log(f"registration x{cfg['register_n']}")
    results |= bench_registration(base_url, run_id, cfg["register_n"])
    _log(f"login x{cfg['login_n']} (full and POST-only, interleaved)")
    results |= bench_login(login_client, cfg["login_n"])
    login_with_retry(load_client)
    headers = {"Authorization": f"Bearer {load_client.access_token}"}
    get_item = make_get_item(endpoint_url, load_client.key_file.user_uuid)
    _log(f"sequential /session/me, /healthz, GetItem x{cfg['sequential_n']}")
    results |= bench_sequential(base_url, headers, get_item, cfg["sequential_n"])
    _log(f"closed-loop load: {cfg['threads']} threads, {cfg['load_s']:g}s per endpoint in {cfg['rounds']} rounds")
    results |= bench_load(base_url, headers, cfg, pids)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N and short load: a smoke run under 60 s")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "latest.json", help="JSON results file")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    os.environ.update(LOCALHOST_ONLY)  # boto3 and requests must not route 127.0.0.1 through a proxy
    _watchdog(cfg["watchdog_s"])
    info, started = machine_info(), time.monotonic()
    started_at = datetime.now(timezone.utc).isoformat()
    try:
        results = run(cfg)
    finally:
        signal.alarm(0)
    ratios = derived(results)
    info["loadavg_end"] = os.getloadavg()
    table = render_table(results, ratios, info)
    print(table)
    report = {"started_at": started_at, "mode": "quick" if args.quick else "full",
              "config": cfg, "server": {"workers": 2, "threads": 8, "worker_class": "gthread"},
              "machine": info, "results": results, "derived": ratios,
              "wall_seconds": time.monotonic() - started, "table": table}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    _log(f"wrote {args.out} ({report['wall_seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
