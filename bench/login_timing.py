"""Username enumeration by timing: failed logins (wrong password) of known usernames against
failed logins of unknown ones, interleaved, POST /login/ alone timed.

    .venv/bin/python bench/login_timing.py [-n 300] [--argon2-time-cost 3 ...] [--out FILE]
    .venv/bin/python bench/login_timing.py [--dormant t=3,m=65536,p=4] [--legacy t=3,m=65536,p=4]

With --dormant the known users are dormant accounts: they register on a first server run with
those (older) parameters, which records them as every process does (docs/guides/operating.md, "Passwords"); that
server stops and the one measured starts with the current parameters, as after a change of the
settings, with nothing declared. --legacy sets CITYLOGIN_ARGON2_LEGACY_PARAMETERS as well.

Starts DynamoDB Local (in memory) and gunicorn on 127.0.0.1 as run_bench.py does, with the
lockout limits raised so that nothing locks, and stops both at the end. Not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from loadgen import local_session, percentile
from servers import LOCALHOST_ONLY, app_environment, gunicorn_app, run_init
from citylogin.client.api import Client, sign_challenge
from common.config import Settings, parse_argon2_parameter_sets
from common.database.dynamodb_local import DynamoDBLocal

PASSWORD = "Bench-" + secrets.token_hex(8)
WRONG_PASSWORD = "Wrong-" + secrets.token_hex(8)
NAMES_PER_KIND = 4
WARMUP = 20
BOOTSTRAP_RESAMPLES = 2000
# Nothing locks and the challenges are not rate-limited: every attempt is a plain wrong password.
NO_LIMITS = {"CITYLOGIN_LOGIN_MAX_FAILURES": "1000000000", "CITYLOGIN_LOGIN_MAX_FAILURES_PER_IP": "1000000000",
             "CITYLOGIN_CHALLENGES_PER_MINUTE_PER_IP": "1000000000"}


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _watchdog(seconds: int) -> None:
    def expire(*_):
        raise TimeoutError(f"benchmark exceeded its {seconds}s limit")
    signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)


def register(base_url: str, name: str) -> Client:
    client = Client(base_url, session=local_session(), timeout=30)
    client.register(username=name, email=f"{name}@example.com", password=PASSWORD, key_kind="ecdsa-p256")
    return client


class FailedLogin:
    """One attacker device: a fresh challenge signed with its own key, then POST /login/ with a
    wrong password for any username. Only the POST is timed."""

    def __init__(self, attacker: Client) -> None:
        self.base_url, self.key_file, self.http = attacker.base_url, attacker.key_file, local_session()

    def __call__(self, username: str) -> float:
        # No body: see "A dropped connection after POST /login/challenge" in bench/README.md.
        response = self.http.post(self.base_url + "/login/challenge", timeout=30)
        response.raise_for_status()
        challenge = response.json()["challenge"]
        body = {"username": username, "password": WRONG_PASSWORD, "client_cert": self.key_file.client_cert_b64(),
                "challenge": challenge, "signature": sign_challenge(self.key_file.private_key(), challenge)}
        start = time.perf_counter()
        response = self.http.post(self.base_url + "/login/", json=body, timeout=30)
        elapsed = time.perf_counter() - start
        code = response.json().get("code") if response.headers.get("content-type", "").endswith("json") else None
        if (response.status_code, code) != (401, "invalid_credentials"):
            raise RuntimeError(f"expected 401 invalid_credentials, got {response.status_code} {response.text[:300]}")
        return elapsed * 1000


def register_known(base_url: str, run_id: str) -> list[str]:
    """NAMES_PER_KIND users (their hashes of this server's parameters); their usernames."""
    return [register(base_url, f"t{run_id}_known{i}").require_key_file().username for i in range(NAMES_PER_KIND)]


def measure(base_url: str, n: int, run_id: str, known: list[str]) -> dict[str, list[float]]:
    """n failed logins of the `known` usernames and of unknown ones, alternating; the order within
    each pair flips every pair so that neither kind always follows the other. Each kind cycles
    through NAMES_PER_KIND names, so the per-username failure counters grow alike on both sides."""
    attacker = register(base_url, f"t{run_id}_attacker")
    names = {"known": known, "unknown": [f"t{run_id}_nobody_{secrets.token_hex(6)}" for _ in range(NAMES_PER_KIND)]}
    fail = FailedLogin(attacker)
    for i in range(WARMUP):
        for kind in names:
            fail(names[kind][i % NAMES_PER_KIND])
    samples: dict[str, list[float]] = {"known": [], "unknown": []}
    deadline = time.monotonic() + 1200
    for i in range(n):
        pair = [(kind, names[kind][i % NAMES_PER_KIND]) for kind in ("known", "unknown")]
        for kind, username in pair if i % 2 == 0 else reversed(pair):
            samples[kind].append(fail(username))
        if time.monotonic() > deadline:
            _log(f"deadline reached after {i + 1} pairs")
            break
    return samples


def argon2_environment(time_cost: int, memory_cost: int, parallelism: int) -> dict[str, str]:
    return {"CITYLOGIN_ARGON2_TIME_COST": str(time_cost), "CITYLOGIN_ARGON2_MEMORY_COST": str(memory_cost),
            "CITYLOGIN_ARGON2_PARALLELISM": str(parallelism)}


# --- statistics (pure Python: numpy and scipy are not dependencies) -----------------------------

def bootstrap_median_difference(a: list[float], b: list[float], *, resamples: int,
                                seed: int = 1) -> tuple[float, float]:
    """95% percentile-bootstrap interval of median(a) - median(b), each resampled independently."""
    rng = random.Random(seed)
    diffs = sorted(statistics.median(rng.choices(a, k=len(a))) - statistics.median(rng.choices(b, k=len(b)))
                   for _ in range(resamples))
    return percentile(diffs, 2.5), percentile(diffs, 97.5)


def mann_whitney_z(a: list[float], b: list[float]) -> float:
    """The normal-approximation z of the Mann-Whitney U test (no tie correction; latencies rarely tie)."""
    ranked = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    rank_sum_a = sum(rank for rank, (_, group) in enumerate(ranked, start=1) if group == 0)
    u = rank_sum_a - len(a) * (len(a) + 1) / 2
    mean, sd = len(a) * len(b) / 2, (len(a) * len(b) * (len(a) + len(b) + 1) / 12) ** 0.5
    return (u - mean) / sd


def report(samples: dict[str, list[float]]) -> dict:
    known, unknown = samples["known"], samples["unknown"]
    paired = [k - u for k, u in zip(known, unknown, strict=False)]
    low, high = bootstrap_median_difference(known, unknown, resamples=BOOTSTRAP_RESAMPLES)
    return {
        **{kind: {"n": len(v), "p50": percentile(v, 50), "p90": percentile(v, 90)} for kind, v in samples.items()},
        "median_difference_ms": statistics.median(known) - statistics.median(unknown),
        "median_difference_ci95_ms": [low, high],
        "paired_median_difference_ms": statistics.median(paired),
        "mann_whitney_z": mann_whitney_z(known, unknown),
    }


def render(result: dict, argon2: dict[str, int], known_as: str = "") -> str:
    lines = [f"cpus {len(os.sched_getaffinity(0))}, Argon2id t={argon2['time_cost']} m={argon2['memory_cost']} KiB "
             f"p={argon2['parallelism']}, load average {os.getloadavg()[0]:.2f}{known_as}", "",
             f"{'failed login (wrong password)':32} {'n':>5} {'p50 ms':>9} {'p90 ms':>9}", "-" * 58]
    for kind in ("known", "unknown"):
        s = result[kind]
        lines.append(f"{kind + ' username':32} {s['n']:>5} {s['p50']:>9.2f} {s['p90']:>9.2f}")
    low, high = result["median_difference_ci95_ms"]
    lines += ["", f"median(known) - median(unknown)   {result['median_difference_ms']:+.2f} ms "
                  f"(95% bootstrap CI {low:+.2f} .. {high:+.2f})",
              f"median of paired differences      {result['paired_median_difference_ms']:+.2f} ms",
              f"Mann-Whitney z (known > unknown)  {result['mann_whitney_z']:+.2f}  (|z| > 1.96: p < 0.05)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    defaults = Settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=300, help="failed logins of each kind (default 300)")
    parser.add_argument("--argon2-time-cost", type=int, default=defaults.argon2_time_cost)
    parser.add_argument("--argon2-memory-cost", type=int, default=defaults.argon2_memory_cost, help="KiB")
    parser.add_argument("--argon2-parallelism", type=int, default=defaults.argon2_parallelism)
    parser.add_argument("--dormant", help="known users register on a server with these parameters, e.g. "
                                          "t=3,m=65536,p=4, and are measured on one with the current ones")
    parser.add_argument("--legacy", help="CITYLOGIN_ARGON2_LEGACY_PARAMETERS for the server")
    parser.add_argument("--out", type=Path, help="also write the samples and the summary as JSON")
    args = parser.parse_args(argv)
    dormant_parameters = parse_argon2_parameter_sets(args.dormant)[0] if args.dormant else None
    argon2 = {"time_cost": args.argon2_time_cost, "memory_cost": args.argon2_memory_cost,
              "parallelism": args.argon2_parallelism}
    os.environ.update(LOCALHOST_ONLY)
    _watchdog(1800)
    run_id = secrets.token_hex(3)
    try:
        with tempfile.TemporaryDirectory(prefix="citylogin-timing-") as tmp, DynamoDBLocal() as db:
            env = app_environment(endpoint_url=db.endpoint_url, data_dir=Path(tmp) / "data") | NO_LIMITS
            if args.legacy:
                env["CITYLOGIN_ARGON2_LEGACY_PARAMETERS"] = args.legacy
            _log("citylogin init: " + run_init(env).replace("\n", "; "))
            known = None
            if dormant_parameters is not None:  # the accounts of an earlier release's settings
                with gunicorn_app(env | argon2_environment(*dormant_parameters),
                                  log_path=Path(tmp) / "gunicorn-dormant.log") as old:
                    _log(f"dormant users registered on {old.base_url} with {args.dormant}")
                    known = register_known(old.base_url, run_id)
            current = argon2_environment(argon2["time_cost"], argon2["memory_cost"], argon2["parallelism"])
            with gunicorn_app(env | current, log_path=Path(tmp) / "gunicorn.log") as app:
                _log(f"gunicorn ready on {app.base_url}; {args.n} failed logins of each kind, interleaved")
                samples = measure(app.base_url, args.n, run_id, known or register_known(app.base_url, run_id))
    finally:
        signal.alarm(0)
    result = report(samples)
    known_as = (f"; known users dormant ({args.dormant})" if args.dormant else "") + \
               (f"; legacy parameters {args.legacy}" if args.legacy else "")
    print(render(result, argon2, known_as))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"argon2": argon2, "dormant": args.dormant, "legacy": args.legacy,
                                        "summary": result, "samples_ms": samples}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
