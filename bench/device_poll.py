"""A pending poll of the device authorization grant (issue 63, RFC 8628 §3.4) against userinfo, per
second of server CPU, in the same run:

    .venv/bin/python bench/device_poll.py [--runs 3] [--seconds 8] [--threads 4] [--codes 2000] [--quick]
    .venv/bin/python bench/publish.py --from bench/results/device_poll.json --name device_poll --docs

Not a test. The same set-up as run_bench.py (in-memory DynamoDB Local, `citylogin init`, gunicorn with
2 workers x 8 threads on 127.0.0.1), one app added with `citylogin apps add --device-flow --public` (a
command line: no secret to check on each poll), `CITYLOGIN_DEVICE_POLL_INTERVAL=1`, a code lifetime of
30 minutes (the longest) and the codes per address raised. Per run:

1. The DynamoDB calls of a pending poll: `POST /oidc/token` (grant type device_code) for N codes nobody
   has answered, each polled once after its interval, counted by the server's own counter (GET /metrics,
   the requests' calls only, bench/dynamo_calls.py). The goal: at most one call.
2. Requests per second of server CPU: rounds ABBA (x --rounds) of A = pending polls and B = GET
   /oidc/userinfo with an access token of an approved code of the same app, closed loop with --threads
   threads on keep-alive connections; the gunicorn tree's CPU seconds (bench/cpu.py) read around each
   round. Each thread polls its own share of --codes pending codes in turn, never one sooner than its
   interval (a poll sooner is `slow_down`, another answer: it would count as an error). Per kind:
   completed ÷ server CPU seconds over its rounds, and CPU ms per request; the figure is poll ÷ userinfo.

Every request is prepared before its clock starts. Writes bench/results/device_poll.json in the shape
bench/publish.py publishes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from citylogin.client.api import Client
from cpu import cpu_delta, tree_cpu_seconds
from common.database.dynamodb_local import DynamoDBLocal
from dynamo_calls import calls_per_request
from goals import merge_runs, render_goals
from loadgen import closed_loop_calls, local_session
from oidc_figures import _pooled
from servers import PROJECT_ROOT, VENV_BIN, app_environment, gunicorn_app, run_init

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PASSWORD = "correct horse battery staple"
INTERVAL_S = 1.0
MARGIN_S = 0.05         # past the interval before a code is polled again: clocks of two processes
ABBA = ("A", "B", "B", "A")
CALLS_GOAL = 1          # a pending poll: at most one DynamoDB call (one read, or one conditional write)


def add_device_app(env: dict[str, str]) -> dict[str, str]:
    done = subprocess.run([str(VENV_BIN / "citylogin"), "apps", "add", "bench screen", "--device-flow", "--public",
                           "--json"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"citylogin apps add failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout)


def new_codes(base_url: str, client_id: str, n: int, threads: int = 4) -> list[str]:
    """n device codes of the app, made by `threads` threads (untimed)."""
    made: list[str] = []
    lock = threading.Lock()

    def make(count: int) -> None:
        http = local_session()
        for _ in range(count):
            answer = http.post(base_url + "/oidc/device_authorization", timeout=30,
                               data={"client_id": client_id, "scope": "openid profile"})
            if answer.status_code != 200:
                raise RuntimeError(f"device_authorization: {answer.status_code} {answer.text[:300]}")
            with lock:
                made.append(answer.json()["device_code"])
    workers = [threading.Thread(target=make, args=(n // threads + (i < n % threads),)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if len(made) != n:
        raise RuntimeError(f"made {len(made)} of {n} device codes")
    return made


def approved_access_token(base_url: str, client_id: str, name: str) -> str:
    """A person approves one code of the app (the JSON API, as the /device page); its poll's access token."""
    person = Client(base_url)
    person.register(username=name, email=f"{name}@example.com", password=PASSWORD)
    person.login(PASSWORD, force=True)
    http = local_session()
    started = http.post(base_url + "/oidc/device_authorization", timeout=30,
                        data={"client_id": client_id, "scope": "openid profile"}).json()
    approved = person.request("POST", "/oidc/device/approve", json={
        "user_code": started["user_code"], "device_name": "bench TV", "force": True})
    if approved.status_code != 200:
        raise RuntimeError(f"approve: {approved.status_code} {approved.text[:300]}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(started["interval"])
        answer = http.post(base_url + "/oidc/token", timeout=30, data={
            "grant_type": DEVICE_CODE_GRANT, "device_code": started["device_code"], "client_id": client_id})
        if answer.status_code == 200:
            return answer.json()["access_token"]
    raise RuntimeError(f"no tokens for an approved code: {answer.status_code} {answer.text[:300]}")


def _poller(base_url: str, client_id: str, codes: list[str]) -> Callable[[], bool]:
    """One thread's pending polls: its codes in turn, each no sooner than its interval after its last
    poll (it waits when its turn comes early). True for `authorization_pending`."""
    http, url = local_session(), base_url + "/oidc/token"
    bodies = [{"grant_type": DEVICE_CODE_GRANT, "device_code": code, "client_id": client_id} for code in codes]
    due = [0.0] * len(codes)
    turn = [0]

    def call() -> bool:
        index = turn[0] = (turn[0] + 1) % len(bodies)
        wait = due[index] - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        answer = http.post(url, data=bodies[index], timeout=30)
        due[index] = time.monotonic() + INTERVAL_S + MARGIN_S
        return answer.status_code == 400 and answer.json().get("error") == "authorization_pending"
    return call


def _userinfo(base_url: str, access_token: str) -> Callable[[], bool]:
    http, url, headers = local_session(), base_url + "/oidc/userinfo", {"Authorization": f"Bearer {access_token}"}
    return lambda: http.get(url, headers=headers, timeout=30).status_code == 200


def calls_per_pending_poll(base_url: str, client_id: str, n: int) -> dict:
    codes = new_codes(base_url, client_id, n)
    time.sleep(INTERVAL_S + MARGIN_S)   # a first poll no sooner than the interval, as a screen waits
    poll = _poller(base_url, client_id, codes)
    return calls_per_request(base_url, lambda: _require(poll(), "a pending poll"), n)


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise RuntimeError(f"{what} was not answered authorization_pending")


def one_run(base_url: str, app: dict[str, str], pids: dict[str, int], *, run: int, threads: int, codes: int,
            seconds: float, rounds: int, warmup_s: float, calls_n: int) -> dict:
    client_id = app["client_id"]
    calls = calls_per_pending_poll(base_url, client_id, calls_n)
    token = approved_access_token(base_url, client_id, f"tv{run}x{os.getpid()}")
    pending = new_codes(base_url, client_id, codes)
    share = len(pending) // threads
    kinds = {"A": [_poller(base_url, client_id, pending[i * share:(i + 1) * share]) for i in range(threads)],
             "B": [_userinfo(base_url, token) for _ in range(threads)]}
    for letter in ("A", "B"):
        closed_loop_calls(kinds[letter], seconds=warmup_s)
    measured: dict[str, list] = {"A": [], "B": []}
    for letter in ABBA * rounds:
        before = tree_cpu_seconds(pids)
        result = closed_loop_calls(kinds[letter], seconds=seconds / (2 * rounds))
        measured[letter].append((result, cpu_delta(before, tree_cpu_seconds(pids))))
    poll, userinfo = _pooled(measured["A"]), _pooled(measured["B"])
    ratio = poll["per_server_cpu_second"] / userinfo["per_server_cpu_second"] \
        if poll["per_server_cpu_second"] and userinfo["per_server_cpu_second"] else None
    return {"dynamodb_calls_per_pending_poll": calls, "pending_poll": poll, "userinfo": userinfo, "ratio": ratio}


def rows(run: dict) -> list[dict]:
    calls, poll, userinfo = run["dynamodb_calls_per_pending_poll"], run["pending_poll"], run["userinfo"]
    errors = poll["errors"] + userinfo["errors"]
    return [
        _row("device flow: DynamoDB calls per pending poll", calls["per_request"], "calls", f"<= {CALLS_GOAL}",
             calls["per_request"] <= CALLS_GOAL),
        _row("device flow: pending poll / userinfo, requests per server CPU s", run["ratio"], "x", "info", None),
        _row("device flow: server CPU per pending poll", poll["server_cpu_ms_per_request"], "ms", "info", None),
        _row("device flow: server CPU per userinfo (the same run)", userinfo["server_cpu_ms_per_request"], "ms",
             "info", None),
        _row("device flow: answers other than the expected (pending polls, userinfo)", errors, "", "= 0",
             errors == 0)]


def _row(figure: str, value, unit: str, goal: str, met: bool | None) -> dict:
    status = "n/a" if value is None else "info" if met is None else "MET" if met else "MISSED"
    return {"figure": figure, "value": value, "unit": unit, "goal": goal, "status": status}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="of each kind per run, over its rounds")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds per run")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--codes", type=int, default=2000, help="pending codes polled in turn")
    parser.add_argument("--calls", type=int, default=50, help="pending polls counted for their DynamoDB calls")
    parser.add_argument("--quick", action="store_true", help="1 run, 2 s of each kind, 1 round")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "device_poll.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds, args.rounds, args.calls = 1, 2.0, 1, 20
    started_at, load_start = datetime.now(timezone.utc), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="citylogin-device-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        db = stack.enter_context(DynamoDBLocal())
        env = app_environment(endpoint_url=db.endpoint_url, data_dir=work / "data")
        env |= {"CITYLOGIN_DEVICE_POLL_INTERVAL": str(int(INTERVAL_S)), "CITYLOGIN_DEVICE_CODE_TTL": "1800",
                "CITYLOGIN_DEVICE_AUTHORIZATIONS_PER_MINUTE_PER_IP": "1000000000",
                "CITYLOGIN_MAX_CONCURRENT_DEVICES": "100"}
        run_init(env)
        app = add_device_app(env)
        running = stack.enter_context(gunicorn_app(env, log_path=work / "gunicorn.log"))
        print(f"gunicorn on {running.base_url}", flush=True)
        pids = {"server": running.pid, "dynamodb": db.process.pid}
        runs = [one_run(running.base_url, app, pids, run=i, threads=args.threads, codes=args.codes,
                        seconds=args.seconds, rounds=args.rounds, warmup_s=1.0, calls_n=args.calls)
                for i in range(args.runs)]
    goals = merge_runs([rows(run) for run in runs])
    command = "bench/device_poll.py" + (" --quick" if args.quick else f" --runs {args.runs}")
    results = {"source": "bench/device_poll.py", "command": command, "when": started_at.isoformat(timespec="seconds"),
               "mode": "quick" if args.quick else "full", "runs": args.runs,
               "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(),
                           "loadavg_start": list(load_start), "loadavg_end": list(os.getloadavg())},
               "goals": goals,
               "summaries": [{"dynamodb_calls_by_operation": run["dynamodb_calls_per_pending_poll"]["by_operation"],
                              **{kind: {k: run[kind].get(k) for k in ("per_server_cpu_second",
                                                                      "server_cpu_ms_per_request", "completed",
                                                                      "errors", "p50", "loadgen_cores_used")}
                                 for kind in ("pending_poll", "userinfo")}} for run in runs]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(render_goals(goals))
    print(f"wrote {args.out}")
    return 0 if all(row["status"] != "MISSED" for row in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
