"""citylogin benchmark: the goals of issue 12 ("the benchmark grows up"), each measured in one run
against that run's own baselines (Argon2id, /healthz, GetItem, a 1k-user table, one worker).

    .venv/bin/python bench/run_bench.py [--quick] [--out bench/results/latest.json]

Starts DynamoDB Local (in memory) and gunicorn on 127.0.0.1, stops both at the end.
Not a test: pytest never collects it. See bench/README.md for what each number means.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import dynamo_calls
import flows
import measurements as m
from common import dynamo
from common.dynamodb_local import DynamoDBLocal
from goals import goal_rows, render_goals
from report import machine_info, render_measurements
from scale import bench_scale
from servers import LOCALHOST_ONLY, PROJECT_ROOT, app_environment, gunicorn_app, run_init
from throughput import bench_saturation, bench_two_processes

TABLE_PREFIX = "bench_"  # servers.app_environment sets CITYLOGIN_TABLE_PREFIX to it
WORKERS, THREADS = 2, 8

FULL = {"argon2_n": 15, "cert_n": 50, "register_n": 20, "login_n": 20, "calls_n": 20, "sequential_n": 300,
        "threads": 8, "warmup_s": 2.0, "load_s": 10.0, "rounds": 3, "saturation_threads": 8,
        "saturation_s": 10.0, "scaling_s": 9.0, "scale_users": [1_000, 100_000], "scale_me_n": 200,
        "scale_login_n": 30, "seed_threads": 8, "watchdog_s": 1200}
QUICK = {"argon2_n": 5, "cert_n": 10, "register_n": 5, "login_n": 5, "calls_n": 5, "sequential_n": 100,
         "threads": 8, "warmup_s": 1.0, "load_s": 3.0, "rounds": 3, "saturation_threads": 8,
         "saturation_s": 3.0, "scaling_s": 3.0, "scale_users": [1_000, 10_000], "scale_me_n": 60,
         "scale_login_n": 8, "seed_threads": 8, "watchdog_s": 300}


class WatchdogExpired(RuntimeError):
    pass


def _watchdog(seconds: int) -> None:
    def expire(*_):
        raise WatchdogExpired(f"benchmark exceeded its {seconds}s limit")
    signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)


def phase(results: dict, name: str, measure: Callable[[], dict]) -> None:
    """Run one part; a failure (e.g. an endpoint an older checkout lacks) is recorded, not fatal."""
    m.log(name)
    started = time.monotonic()
    try:
        results |= measure()
    except WatchdogExpired:
        raise
    except Exception as exc:  # noqa: BLE001 - the other parts still run; the error goes to the report
        traceback.print_exc()
        results.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
    results.setdefault("phase_seconds", {})[name] = round(time.monotonic() - started, 1)


def bench_server(app, db, work_dir: Path, env: dict, cfg: dict, results: dict) -> None:
    base_url, run = app.base_url, secrets.token_hex(3)
    pids = {"server": app.pid, "dynamodb": db.process.pid}
    users = {role: flows.register(base_url, f"b{run}_{role}") for role in ("login", "load", "calls", "pairing")}
    phase(results, f"registration x{cfg['register_n']}", lambda: m.bench_registration(base_url, run, cfg["register_n"]))
    phase(results, f"login x{cfg['login_n']} (full and POST-only, paired with a verify)",
          lambda: m.bench_login(users["login"], cfg["login_n"]))
    flows.login_with_retry(users["calls"])
    flows.login_with_retry(users["pairing"])
    phase(results, f"DynamoDB calls per request x{cfg['calls_n']} each",
          lambda: {"dynamodb_calls": dynamo_calls.measure_all(base_url, user=users["calls"],
                                                              pairing_user=users["pairing"], n=cfg["calls_n"])})
    flows.login_with_retry(users["load"])
    headers = flows.auth_headers(users["load"])
    get_item = m.make_get_item(db.endpoint_url, TABLE_PREFIX + "users", users["load"].key_file.user_uuid)
    phase(results, f"sequential /session/me, /healthz, GetItem x{cfg['sequential_n']}",
          lambda: m.bench_sequential(base_url, headers, get_item, cfg["sequential_n"]))
    phase(results, f"closed-loop load: {cfg['threads']} threads, {cfg['load_s']:g}s per endpoint",
          lambda: m.bench_load(base_url, headers, cfg, pids))
    saturation_users = [flows.register(base_url, f"b{run}_sat{i}") for i in range(cfg["saturation_threads"])]
    phase(results, f"saturation: logins and refreshes, {cfg['saturation_threads']} threads, "
                   f"{cfg['saturation_s']:g}s each", lambda: bench_saturation(saturation_users, cfg, pids))
    phase(results, "two app processes: /session/me with 1 worker vs 2 workers",
          lambda: _two_processes(app, db, work_dir, env, headers, cfg))
    names = dynamo.TableNames.with_prefix(TABLE_PREFIX)
    phase(results, f"latency at {' and '.join(f'{n:,}' for n in cfg['scale_users'])} users",
          lambda: {"scale": bench_scale(base_url, db.endpoint_url, names, run, cfg)})


def _two_processes(app, db, work_dir: Path, env: dict, headers: dict, cfg: dict) -> dict:
    with gunicorn_app(env, log_path=work_dir / "gunicorn-1worker.log", workers=1, threads=THREADS) as single:
        pids = {"server_1_worker": single.pid, "server_2_workers": app.pid, "dynamodb": db.process.pid}
        return {"two_processes": bench_two_processes(single.base_url, app.base_url, headers, cfg, pids)}


def run(cfg: dict) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="citylogin-bench-") as tmp:
        work_dir = Path(tmp)
        phase(results, "argon2id and certificate baselines (in-process)",
              lambda: m.bench_argon2(cfg["argon2_n"]) | m.bench_certificate(cfg["cert_n"]))
        m.log("starting DynamoDB Local (in memory)")
        with DynamoDBLocal() as db:
            env = app_environment(endpoint_url=db.endpoint_url, data_dir=work_dir / "data")
            m.log("citylogin init: " + run_init(env).replace("\n", "; "))
            with gunicorn_app(env, log_path=work_dir / "gunicorn.log", workers=WORKERS, threads=THREADS) as app:
                m.log(f"gunicorn ready on {app.base_url}")
                bench_server(app, db, work_dir, env, cfg, results)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N, short loads, 1k/10k users: a smoke run")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "latest.json",
                        help="JSON results file")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    os.environ.update(LOCALHOST_ONLY)  # boto3 and requests must not route 127.0.0.1 through a proxy
    _watchdog(cfg["watchdog_s"])
    info, started = machine_info(m.argon2_params()), time.monotonic()
    started_at = datetime.now(timezone.utc).isoformat()
    try:
        results = run(cfg)
    finally:
        signal.alarm(0)
    info["loadavg_end"] = os.getloadavg()
    rows = goal_rows(results)
    text = render_measurements(results, info) + "\n\n" + render_goals(rows)
    print(text)
    report = {"started_at": started_at, "mode": "quick" if args.quick else "full", "config": cfg,
              "server": {"workers": WORKERS, "threads": THREADS, "worker_class": "gthread"},
              "machine": info, "results": results, "goals": rows,
              "wall_seconds": time.monotonic() - started, "table": text}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    m.log(f"wrote {args.out} ({report['wall_seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
