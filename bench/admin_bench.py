"""The operators' figures (issue 32, SPEC §15), on their own:

    .venv/bin/python bench/admin_bench.py [--pages 60] [--actions 30]

Not a test. The same set-up as run_bench.py (in-memory DynamoDB Local, `citylogin init`, gunicorn with
2 workers x 8 threads on 127.0.0.1), an operator made with `citylogin admin grant USER support`, and
people with two devices, a few sessions and some history. It measures:

1. An account's page, `GET /admin/accounts/<user_uuid>`, sequential: p50/p99 beside `GET /session/me`
   of the same operator (one GetItem, the same app and network: the floor of a request here), their
   ratio, and the DynamoDB calls of one page by operation (the server's own counter, GET /metrics):
   the goal is one read per panel, never a Scan.
2. An action's time to the person's session ending: a person's device holds its live event stream
   (`GET /session/events`); the operator posts `revoke-sessions` with a reason; from the request's start
   to the operator's answer (the session has ended by then: the person's next request is refused), and to
   the `session_revoked` event reaching the person's device.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from citylogin.client.api import Client
from common.database.dynamodb_local import DynamoDBLocal
from dynamo_calls import calls_per_request
from loadgen import summarize
from servers import PROJECT_ROOT, VENV_BIN, app_environment, gunicorn_app, run_init

PASSWORD = "correct horse battery staple"
EVENT_TIMEOUT = 10.0


def person(base_url: str, name: str) -> Client:
    client = Client(base_url)
    client.register(username=name, email=f"{name}@example.com", password=PASSWORD)
    client.login(PASSWORD, force=True)
    return client


def grant(env: dict[str, str], username: str, role: str) -> None:
    done = subprocess.run([str(VENV_BIN / "citylogin"), "admin", "grant", username, role],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"citylogin admin grant failed:\n{done.stdout}\n{done.stderr}")


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def ok(response) -> None:
    if response.status_code != 200:
        raise AssertionError(f"{response.status_code}: {response.text[:300]}")


def bench_account_page(base_url: str, operator: Client, target: Client, n: int) -> dict:
    page = f"/admin/accounts/{target.key_file.user_uuid}"
    for _ in range(5):  # warm both paths
        ok(operator.request("GET", page))
        ok(operator.request("GET", "/session/me"))
    pages, floor = [], []
    for _ in range(n):  # interleaved, so that both see the same machine
        pages.append(timed(lambda: ok(operator.request("GET", page))))
        floor.append(timed(lambda: ok(operator.request("GET", "/session/me"))))
    calls = calls_per_request(base_url, lambda: ok(operator.request("GET", page)), 10)
    floor_calls = calls_per_request(base_url, lambda: ok(operator.request("GET", "/session/me")), 10)
    page_ms, floor_ms = summarize(pages), summarize(floor)
    return {"account_page": page_ms, "floor_session_me": floor_ms, "p50_ratio": page_ms["p50"] / floor_ms["p50"],
            "dynamodb_calls_per_page": calls, "dynamodb_calls_floor": floor_calls,
            "scans": calls["by_operation"].get("Scan", 0)}


def bench_action_to_session_end(base_url: str, operator: Client, n: int) -> dict:
    answers, events, lost, refused = [], [], 0, 0
    for round_number in range(n):
        target = person(base_url, f"adm{os.getpid()}r{round_number}")
        stream = target.request("GET", "/session/events", stream=True, timeout=(5, EVENT_TIMEOUT + 5))
        if stream.status_code != 200:
            raise AssertionError(f"the event stream answered {stream.status_code}")
        seen: dict[str, float] = {}

        def read(response=stream, seen=seen) -> None:
            for line in response.iter_lines(decode_unicode=True):
                if line and "session_revoked" in line:
                    seen["at"] = time.perf_counter()
                    return
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.2)  # the stream's first bytes are out; the watcher holds the session
        started = time.perf_counter()
        ok(operator.request("POST", f"/admin/accounts/{target.key_file.user_uuid}/revoke-sessions",
                            json={"reason": f"bench round {round_number}"}))
        answers.append(time.perf_counter() - started)
        refused += target.request("GET", "/session/me").status_code == 401
        reader.join(EVENT_TIMEOUT)
        stream.close()
        if "at" in seen:
            events.append(seen["at"] - started)
        else:
            lost += 1
    return {"until_answer": summarize(answers), "until_event_at_device": summarize(events), "rounds": n,
            "events_lost": lost, "next_request_refused": refused}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--actions", type=int, default=30)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "admin.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="citylogin-admin-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        db = stack.enter_context(DynamoDBLocal())
        env = app_environment(endpoint_url=db.endpoint_url, data_dir=work / "data")
        env["CITYLOGIN_CONCURRENCY_POLICY"] = "force"
        env["CITYLOGIN_MAX_CONCURRENT_DEVICES"] = "0"
        run_init(env)
        running = stack.enter_context(gunicorn_app(env, log_path=work / "gunicorn.log"))
        base = running.base_url
        operator = person(base, f"op{os.getpid()}")
        grant(env, operator.key_file.username, "support")
        operator.login(PASSWORD, force=True)  # a fresh sign-in: destructive actions need one within 300 s
        target = person(base, f"tg{os.getpid()}")
        second = Client(base)
        second.pair(target.request_pairing()["qr_code"], username=target.key_file.username, password=PASSWORD)
        second.login(PASSWORD, force=True)
        for _ in range(5):
            target.login(PASSWORD, force=True)  # history rows and ended sessions on the page
        results = {"account_page": bench_account_page(base, operator, target, args.pages),
                   "action_to_session_end": bench_action_to_session_end(base, operator, args.actions),
                   "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
