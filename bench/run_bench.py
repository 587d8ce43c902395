"""citylogin benchmark: the goals of issues 12, 20, 44 and 53, each measured in one run against that run's
own baselines (Argon2id, /healthz, GetItem, the floor app, no network delay, a 1k-user table, one worker,
GET /session/me beside the OpenID Provider's steps and the console's page, POST /session/refresh beside
the refresh grant, bare Argon2id verifies beside the logins, node-oidc-provider beside the OpenID Provider).

    .venv/bin/python bench/run_bench.py [--quick] [--runs 3] [--network-delay-ms 5] [--only PART,...] [--out FILE]

Starts DynamoDB Local (in memory), registers one OpenID app (`citylogin apps add`), the gunicorns
(citylogin, its floor, citylogin and its floor behind the delaying proxy, one per seeded table set) on 127.0.0.1,
stops them all at the end; each run's peer part (bench/peer_bench.py) starts and stops its own servers
(citylogin, node-oidc-provider on memory and on DynamoDB). `--only` runs some parts (PARTS) and only the
set-up they need: `--only oidc,logins_floor` seeds no users and starts no floor the other parts need.
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
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import admin_figures
import dynamo_calls
import flows
import import_bench
import measurements as m
import network
import oidc_figures
import peer_bench
import trip_operations
import versus_floor
from common.database.dynamodb_local import DynamoDBLocal
from dynamo_proxy import DelayProxy
from oidc_bench import add_app
from goals import goal_rows, merge_runs, render_goals
from report import machine_info, render_measurements
from scale import ScaleSetup, bench_scale, start_scale
from servers import FLOOR_APP, LOCALHOST_ONLY, PROJECT_ROOT, RunningApp, app_environment, gunicorn_app, run_init
from throughput import bench_saturation, bench_two_processes, logins_against_floor

TABLE_PREFIX = "bench_"  # servers.app_environment sets CITYLOGIN_TABLE_PREFIX to it
WORKERS, THREADS = 2, 8

FULL = {"argon2_n": 15, "cert_n": 50, "register_n": 20, "login_n": 60, "calls_n": 20, "sequential_n": 300,
        "threads": 8, "warmup_s": 2.0, "load_s": 10.0, "rounds": 3, "saturation_threads": 8,
        "saturation_s": 10.0, "scaling_s": 9.0, "scale_users": [1_000, 100_000], "scale_me_n": 200,
        "scale_login_n": 48, "seed_threads": 8, "floor_rounds": 3, "floor_per_round": 10,
        "network_rounds": 2, "network_per_round": 10, "saturation_rounds": 2, "oidc_flows": 40,
        "oidc_calls_n": 10, "refresh_cpu_threads": 4, "refresh_cpu_s": 12.0, "refresh_cpu_rounds": 2,
        "admin_pages": 40, "admin_calls_n": 10, "floor_logins_s": 10.0, "floor_logins_rounds": 2,
        "peer": peer_bench.FULL, "import_accounts": import_bench.FULL_COUNT, "watchdog_s": 1700}
QUICK = {"argon2_n": 5, "cert_n": 10, "register_n": 5, "login_n": 5, "calls_n": 5, "sequential_n": 100,
         "threads": 8, "warmup_s": 1.0, "load_s": 3.0, "rounds": 3, "saturation_threads": 8,
         "saturation_s": 3.0, "scaling_s": 3.0, "scale_users": [1_000, 10_000], "scale_me_n": 60,
         "scale_login_n": 12, "seed_threads": 8, "floor_rounds": 1, "floor_per_round": 5,
         "network_rounds": 1, "network_per_round": 5, "saturation_rounds": 1, "oidc_flows": 10,
         "oidc_calls_n": 5, "refresh_cpu_threads": 4, "refresh_cpu_s": 4.0, "refresh_cpu_rounds": 1,
         "admin_pages": 15, "admin_calls_n": 5, "floor_logins_s": 4.0, "floor_logins_rounds": 1,
         "peer": peer_bench.QUICK, "import_accounts": import_bench.QUICK_COUNT, "watchdog_s": 540}
# The parts `--only` names, in the order a run measures them. The set-up each needs beyond the first gunicorn:
# floor: the floor app; logins_floor: the delaying proxy, citylogin and the floor behind it, their users;
# round_trips: the proxy and citylogin behind it; scale: the seeded table sets; import: nothing (tables of its own).
PARTS = ("login", "calls", "load", "saturation", "oidc", "admin", "peer", "two_processes", "floor", "logins_floor",
         "round_trips", "scale", "import")
SETUP_WATCHDOG_S = 1500  # start-up and seeding (~9 min for 101k users on 2 busy cores); each run adds watchdog_s


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


@dataclass
class Stage:
    """What the measured parts run against, set up once: the servers, their users, the proxy."""
    db: DynamoDBLocal
    work_dir: Path
    env: dict
    app: RunningApp
    run_id: str
    oidc_app: dict | None = None  # client_id, client_secret of the app `citylogin apps add` registered
    users: dict = field(default_factory=dict)
    floor_pair: tuple | None = None
    proxy: DelayProxy | None = None
    proxied: RunningApp | None = None  # citylogin, its DynamoDB through the proxy
    proxied_floor: RunningApp | None = None  # the floor, the same
    net_users: dict | None = None
    floor_logins: tuple[list, list] | None = None  # (citylogin's users, the floor's) for the login rates
    scale: ScaleSetup | None = None
    parts: frozenset[str] = frozenset(PARTS)


def set_up(stack: ExitStack, stage: Stage, cfg: dict, setup: dict) -> None:
    """The floor, the proxied server, the seeded table sets: each a phase (a failure there leaves
    only its own parts out)."""
    base_url, run_id, parts = stage.app.base_url, stage.run_id, stage.parts
    if parts & {"login", "calls", "load", "two_processes"}:
        stage.users = {role: flows.register(base_url, f"b{run_id}_{role}") for role in ("login", "load", "calls")}

    def floor() -> dict:
        floor_app = stack.enter_context(gunicorn_app(stage.env, log_path=stage.work_dir / "gunicorn-floor.log",
                                                     workers=WORKERS, threads=THREADS, app=FLOOR_APP))
        stage.floor_pair = versus_floor.floor_users(base_url, floor_app.base_url, run_id)
        return {}
    if "floor" in parts:
        phase(setup, "the floor: bench/floor_app.py under gunicorn", floor)
    if cfg["network_delay_ms"] > 0 and parts & {"logins_floor", "round_trips"}:
        def network_server() -> dict:
            stage.proxy = stack.enter_context(DelayProxy(upstream_port=int(stage.db.endpoint_url.rsplit(":", 1)[1])))
            env = {**stage.env, "CITYLOGIN_DYNAMODB_ENDPOINT_URL": stage.proxy.endpoint_url}
            # The same tables as the first server's: the OpenID app added before it started is known here too.
            stage.proxied = stack.enter_context(gunicorn_app(env, log_path=stage.work_dir / "gunicorn-proxied.log",
                                                             workers=WORKERS, threads=THREADS))
            if "round_trips" in parts:
                stage.net_users = trip_operations.session_users(stage.proxied.base_url, run_id)
            return {}
        phase(setup, "citylogin behind the delaying DynamoDB proxy", network_server)
        if stage.proxied and "logins_floor" in parts:
            phase(setup, "the floor behind the delaying DynamoDB proxy, and the login users of both",
                  lambda: _proxied_floor(stack, stage, cfg))

    def scale() -> dict:
        stage.scale = start_scale(stack, endpoint_url=stage.db.endpoint_url, work_dir=stage.work_dir, cfg=cfg,
                                  run=run_id, workers=WORKERS, threads=THREADS)
        return {}
    if "scale" in parts:
        phase(setup, f"seeding {' and '.join(f'{n:,}' for n in cfg['scale_users'])} users (two table sets)", scale)


def _proxied_floor(stack: ExitStack, stage: Stage, cfg: dict) -> dict:
    """The floor on the proxy too, and one user per login thread on each server (the floor's registered
    by citylogin, then handed over): the same login bodies on both."""
    assert stage.proxy and stage.proxied
    env = {**stage.env, "CITYLOGIN_DYNAMODB_ENDPOINT_URL": stage.proxy.endpoint_url}
    floor = stack.enter_context(gunicorn_app(env, log_path=stage.work_dir / "gunicorn-proxied-floor.log",
                                             workers=WORKERS, threads=THREADS, app=FLOOR_APP))
    threads, url, run_id = cfg["saturation_threads"], stage.proxied.base_url, stage.run_id
    mine = [flows.register(url, f"b{run_id}_fl{i}") for i in range(threads)]
    theirs = [flows.hand_to_floor(flows.register(url, f"b{run_id}_ff{i}"), floor.base_url) for i in range(threads)]
    stage.proxied_floor, stage.floor_logins = floor, (mine, theirs)
    return {}


def measure(stage: Stage, cfg: dict, run_number: int) -> dict:
    """Every measured part of `stage.parts` once; `run_number` keeps the users and names of runs apart."""
    results: dict = {"loadavg_start": os.getloadavg()}
    app, db, parts = stage.app, stage.db, stage.parts
    base_url, run = app.base_url, f"{stage.run_id}r{run_number}"
    pids = {"server": app.pid, "dynamodb": db.process.pid}
    users = stage.users
    if "login" in parts:
        phase(results, "argon2id and certificate baselines (in-process)",
              lambda: m.bench_argon2(cfg["argon2_n"]) | m.bench_certificate(cfg["cert_n"]))
        phase(results, f"registration x{cfg['register_n']}",
              lambda: m.bench_registration(base_url, run, cfg["register_n"]))
        phase(results, f"login x{cfg['login_n']} (full and POST-only, paired with a verify)",
              lambda: m.bench_login(users["login"], cfg["login_n"]))
    if "calls" in parts:
        pairing_user = flows.register(base_url, f"b{run}_pairing")  # gains calls_n devices per run
        flows.login_with_retry(users["calls"])
        flows.login_with_retry(pairing_user)
        phase(results, f"DynamoDB calls per request x{cfg['calls_n']} each",
              lambda: {"dynamodb_calls": dynamo_calls.measure_all(base_url, user=users["calls"],
                                                                  pairing_user=pairing_user, n=cfg["calls_n"])})
    headers: dict = {}
    if parts & {"load", "two_processes"}:
        flows.login_with_retry(users["load"])
        headers = flows.auth_headers(users["load"])
    if "load" in parts:
        get_item = m.make_get_item(db.endpoint_url, TABLE_PREFIX + "users", users["load"].key_file.user_uuid)
        phase(results, f"sequential /session/me, /healthz, GetItem x{cfg['sequential_n']}",
              lambda: m.bench_sequential(base_url, headers, get_item, cfg["sequential_n"]))
        phase(results, f"closed-loop load: {cfg['threads']} threads, {cfg['load_s']:g}s per endpoint",
              lambda: m.bench_load(base_url, headers, cfg, pids))
    if "saturation" in parts:
        saturation_users = [flows.register(base_url, f"b{run}_sat{i}") for i in range(cfg["saturation_threads"])]
        phase(results, f"saturation: logins (ABBA with bare Argon2id verifies in {app.workers} processes) and "
                       f"refreshes, {cfg['saturation_threads']} threads, {cfg['saturation_s']:g}s each",
              lambda: bench_saturation(saturation_users, cfg, pids, workers=app.workers))
    _oidc_and_admin(stage, cfg, results, run, pids)
    if "peer" in parts:
        phase(results, f"the peer: citylogin (deploy/gunicorn.conf.py) vs node-oidc-provider on memory and on "
                       f"DynamoDB, {cfg['peer']['rounds']} x ABCCBA per row, {cfg['peer']['threads']} threads",
              lambda: peer_bench.bench_peer(db.endpoint_url, stage.work_dir / f"peer-{run_number}", cfg["peer"],
                                            run=run))
    if "two_processes" in parts:
        phase(results, "two app processes: /session/me with 1 worker vs 2 workers",
              lambda: _two_processes(app, db, stage.work_dir, stage.env, headers, cfg))
    if stage.floor_pair:
        phase(results, f"citylogin vs its floor: {cfg['floor_rounds']} x ABBA, {cfg['floor_per_round']} each",
              lambda: {"versus_floor": versus_floor.bench_versus_floor(
                  *stage.floor_pair, rounds=cfg["floor_rounds"], per_round=cfg["floor_per_round"])})
    _behind_the_proxy(stage, cfg, results, run)
    if stage.scale:
        scale = stage.scale
        phase(results, f"latency at {' and '.join(f'{n:,}' for n in cfg['scale_users'])} users, interleaved",
              lambda: {"scale": bench_scale(scale, cfg)})
    if "import" in parts:
        phase(results, f"citylogin accounts import of {cfg['import_accounts']:,} CSV rows (bcrypt), then again",
              lambda: import_bench.measure_import(db.endpoint_url, stage.work_dir / f"import-{run_number}",
                                                  count=cfg["import_accounts"], run=run))
    results["loadavg_end"] = os.getloadavg()
    return results


def _behind_the_proxy(stage: Stage, cfg: dict, results: dict, run: str) -> None:
    """The parts whose servers reach DynamoDB through the delaying proxy: logins per server CPU second
    against the floor (the delay on throughout), and the round trips (the delay on and off)."""
    proxy, delay_ms = stage.proxy, cfg["network_delay_ms"]
    if proxy and stage.proxied and stage.proxied_floor and stage.floor_logins and "logins_floor" in stage.parts:
        mine, theirs = stage.floor_logins
        pids = {"citylogin": stage.proxied.pid, "floor": stage.proxied_floor.pid, "dynamodb": stage.db.process.pid}
        phase(results, f"logins per server CPU second: citylogin vs its floor, DynamoDB {delay_ms:g} ms away, "
                       f"{cfg['floor_logins_rounds']} x ABBA, {len(mine)} threads",
              lambda: logins_against_floor(mine, theirs, proxy=proxy, delay_ms=delay_ms, cfg=cfg, pids=pids))
    if proxy and stage.proxied and stage.net_users and "round_trips" in stage.parts:
        base_url, net_users = stage.proxied.base_url, stage.net_users

        def round_trips() -> dict:
            operations = trip_operations.session_operations(net_users)
            if stage.oidc_app:
                devices = max(cfg["network_per_round"], network.WARMUP)  # a code per device in a batch
                operations |= trip_operations.oidc_operations(base_url, stage.oidc_app, run=f"{run}n",
                                                              devices=devices)
            operations |= trip_operations.console_operations(base_url, stage.env, run=f"{run}n")
            return {"network": network.bench_round_trips(
                proxy, operations, delay_ms=delay_ms, rounds=cfg["network_rounds"],
                per_round=cfg["network_per_round"], prefix=TABLE_PREFIX)}
        phase(results, f"round trips: {delay_ms:g} ms each way vs none, {cfg['network_rounds']} x ABBA", round_trips)


def _oidc_and_admin(stage: Stage, cfg: dict, results: dict, run: str, pids: dict[str, int]) -> None:
    """The OpenID Provider's code flow and refresh grant, and the console's account page (issue 44)."""
    base_url, oidc_app = stage.app.base_url, stage.oidc_app
    if oidc_app and "oidc" in stage.parts:
        phase(results, f"OIDC code flow x{cfg['oidc_flows']}, each step beside GET /session/me",
              lambda: oidc_figures.bench_code_flow(base_url, oidc_app, run=run, n=cfg["oidc_flows"],
                                                   calls_n=cfg["oidc_calls_n"]))
        phase(results, f"refreshes per server CPU second: refresh grant vs POST /session/refresh, "
                       f"{cfg['refresh_cpu_rounds']} x ABBA, {cfg['refresh_cpu_threads']} threads",
              lambda: oidc_figures.bench_refresh_cpu(
                  base_url, oidc_app, run=run, pids=pids, threads=cfg["refresh_cpu_threads"],
                  seconds=cfg["refresh_cpu_s"], rounds=cfg["refresh_cpu_rounds"], warmup_s=cfg["warmup_s"]))
    if "admin" in stage.parts:
        phase(results, f"admin account page x{cfg['admin_pages']}, interleaved with the operator's GET /session/me",
              lambda: admin_figures.bench_account_page(base_url, stage.env, run=run, n=cfg["admin_pages"],
                                                       calls_n=cfg["admin_calls_n"]))


def _two_processes(app, db, work_dir: Path, env: dict, headers: dict, cfg: dict) -> dict:
    with gunicorn_app(env, log_path=work_dir / "gunicorn-1worker.log", workers=1, threads=THREADS) as single:
        pids = {"server_1_worker": single.pid, "server_2_workers": app.pid, "dynamodb": db.process.pid}
        return {"two_processes": bench_two_processes(single.base_url, app.base_url, headers, cfg, pids)}


def run(cfg: dict, runs: int, parts: frozenset[str] = frozenset(PARTS)) -> dict:
    """Set up once (what `parts` need), then every measured part of `parts` `runs` times."""
    setup: dict = {}
    with tempfile.TemporaryDirectory(prefix="citylogin-bench-") as tmp, ExitStack() as stack:
        work_dir = Path(tmp)
        m.log("starting DynamoDB Local (in memory)")
        db = stack.enter_context(DynamoDBLocal())
        env = app_environment(endpoint_url=db.endpoint_url, data_dir=work_dir / "data")
        m.log("citylogin init: " + run_init(env).replace("\n", "; "))
        phase(setup, "an OpenID app: citylogin apps add", lambda: {"oidc_app": add_app(env, None)})
        oidc_app = setup.pop("oidc_app", None)
        app = stack.enter_context(gunicorn_app(env, log_path=work_dir / "gunicorn.log", workers=WORKERS,
                                               threads=THREADS))
        m.log(f"gunicorn ready on {app.base_url}")
        stage = Stage(db=db, work_dir=work_dir, env=env, app=app, run_id=secrets.token_hex(3), oidc_app=oidc_app,
                      parts=parts)
        set_up(stack, stage, cfg, setup)
        measured = []
        for number in range(1, runs + 1):
            m.log(f"--- run {number} of {runs} ---")
            measured.append(measure(stage, cfg, number))
    return {"setup": setup, "runs": measured}


def _parts(text: str) -> frozenset[str]:
    named = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(named - set(PARTS))
    if unknown or not named:
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(unknown) or '(none)'}; parts: {', '.join(PARTS)}")
    return named


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small N, short loads, 1k/10k users: a smoke run")
    parser.add_argument("--runs", type=int, default=1, help="repeat the measured parts (set-up and seeding once)")
    parser.add_argument("--network-delay-ms", type=float, default=5.0,
                        help="delay each way through the DynamoDB proxy for the round trips (0: leave them out)")
    parser.add_argument("--only", type=_parts, default=frozenset(PARTS), metavar="PART[,PART...]",
                        help=f"run only these parts and the set-up they need, of: {', '.join(PARTS)}; the goal rows "
                             "of the others are left out")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "latest.json",
                        help="JSON results file")
    args = parser.parse_args(argv)
    cfg = {**(QUICK if args.quick else FULL), "network_delay_ms": args.network_delay_ms}
    os.environ.update(LOCALHOST_ONLY)  # boto3 and requests must not route 127.0.0.1 through a proxy
    _watchdog(SETUP_WATCHDOG_S + cfg["watchdog_s"] * args.runs)
    info, started = machine_info(m.argon2_params()), time.monotonic()
    started_at = datetime.now(timezone.utc).isoformat()
    try:
        results = run(cfg, args.runs, args.only)
    finally:
        signal.alarm(0)
    info["loadavg_end"] = os.getloadavg()
    for run_results in results["runs"]:
        run_results.setdefault("errors", {}).update(results["setup"].get("errors", {}))
    rows = merge_runs([goal_rows(r) for r in results["runs"]])
    only = args.only != frozenset(PARTS)
    if only:  # the rows of the parts left out measured nothing
        rows = [row for row in rows if row["status"] != "n/a"]
    text = "\n\n".join(f"run {i} of {len(results['runs'])}\n" + render_measurements(r, info)
                       + ("\n\n" + peer_bench.render_peer(r["peer"]) if r.get("peer") else "")
                       for i, r in enumerate(results["runs"], 1)) + "\n\n" + render_goals(rows)
    print(text)
    command = "bench/run_bench.py" + (" --quick" if args.quick else "") + \
        (f" --runs {args.runs}" if args.runs != 1 else "") + \
        (f" --only {','.join(part for part in PARTS if part in args.only)}" if only else "")
    report = {"source": "bench/run_bench.py", "command": command, "started_at": started_at,
              "mode": "quick" if args.quick else "full", "runs": args.runs, "config": cfg,
              "server": {"workers": WORKERS, "threads": THREADS, "worker_class": "gthread"},
              "machine": info, "results": results, "goals": rows,
              "wall_seconds": time.monotonic() - started, "table": text}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    m.log(f"wrote {args.out} ({report['wall_seconds']:.0f}s); publish with bench/publish.py --from {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
