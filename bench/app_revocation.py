"""How fast a revocation reaches an app's API, and what introspection costs (issue 18). Not a test.

    .venv/bin/python bench/app_revocation.py [--rounds 40] [--requests 300]

One `citylogin serve` (its own DynamoDB Local) as a subprocess; an app added with `citylogin apps add
--push-url` pointing at a push receiver in its own process (tests/support/push_receiver.py). Each
round a device logs in, the app's side starts checking its token, the device logs out, and the time
from the logout's response to the app's first refusal is taken:
- guard, poll: `citylogin_guard.Guard` in this process (its own stream, long poll); refusal = the
  first `verify()` that raises session_revoked (checked every 2 ms);
- push: the receiver holding the session's SET (checked every 5 ms): the 401 an app gives from it;
- forward auth: `GET /session/check` (what nginx's auth_request asks before each request): the
  first request after the logout's response, so this is one request's latency.
Then introspection against `/session/me`: `--requests` of each, one at a time, interleaved, p50."""
from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import jwt
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citylogin_guard import Guard, Unauthorized  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal, free_port  # noqa: E402
from tests.support.live import bearer_login, register_device  # noqa: E402

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def until(check, *, every: float, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(every)
    return float("nan")


def refused(guard: Guard, token: str) -> bool:
    try:
        guard.verify(f"Bearer {token}")
        return False
    except Unauthorized as refusal:
        return refusal.code == "session_revoked"


def pushed_sessions(sink: str) -> set[str]:
    sets = requests.get(sink + "/received", timeout=5).json()["sets"]
    return {jwt.decode(s, options={"verify_signature": False})["events"][SESSION_REVOKED]["subject"]["session"]["id"]
            for s in sets}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    processes: list[subprocess.Popen] = []
    with DynamoDBLocal() as local, tempfile.TemporaryDirectory() as data:
        port, sink_port = free_port(), free_port()
        url, sink = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sink_port}"
        env.update({"CITYLOGIN_DYNAMODB_ENDPOINT_URL": local.endpoint_url, "CITYLOGIN_DATA_DIR": data,
                    "CITYLOGIN_TABLE_PREFIX": f"r{uuid.uuid4().hex[:6]}_", "CITYLOGIN_LOG_LEVEL": "WARNING",
                    "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
                    "CITYLOGIN_PUBLIC_URL": url, "CITYLOGIN_MAX_CONCURRENT_DEVICES": "0",
                    "CITYLOGIN_CHALLENGES_PER_MINUTE_PER_IP": "100000",
                    "CITYLOGIN_LOGIN_MAX_FAILURES_PER_IP": "100000"})
        try:
            subprocess.run([sys.executable, "-m", "citylogin", "init"], env=env, check=True, capture_output=True)
            added = subprocess.run([sys.executable, "-m", "citylogin", "apps", "add", "bench", "--json",
                                    "--push-url", sink + "/push"], env=env, check=True, capture_output=True, text=True)
            app = json.loads(added.stdout)
            processes.append(subprocess.Popen([sys.executable, "-m", "citylogin", "serve", "--port", str(port)],
                                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            processes.append(subprocess.Popen([sys.executable, "-m", "tests.support.push_receiver", str(sink_port)],
                                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_healthy(url, processes[0])
            wait_healthy(sink, processes[1])
            results = measure(url, sink, app, args)
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)
    print(json.dumps(results, indent=1))


def measure(url: str, sink: str, app: dict, args) -> dict:
    device = register_device(url)
    poll, push, forward = [], [], []
    with Guard(url, app["client_id"], app["client_secret"], leeway=1.0) as guard:
        until(guard.heard, every=0.05, timeout=15)
        time.sleep(2.1)  # tokens from now on are the feed's alone (the guard's start-up rule)
        for _ in range(args.rounds):
            bearer_login(device)  # bearer tokens: what DPoP adds is bench/dpop.py's
            token, session_id = device.access_token, device.session_id
            guard.verify(f"Bearer {token}")
            headers = {"Authorization": f"Bearer {token}"}
            checks = {  # each watched from its own thread, from the logout's response on
                "forward": (lambda h=headers: requests.get(url + "/session/check", headers=h,
                                                           timeout=5).status_code == 401, 0.0),
                "poll": (lambda t=token: refused(guard, t), 0.002),
                "push": (lambda sid=session_id: sid in pushed_sessions(sink), 0.005)}
            seen: dict[str, float] = {}
            time.sleep(random.uniform(0, 1))  # a revocation comes at any moment of the feed's interval
            device.logout()
            ended = time.monotonic()
            threads = [threading.Thread(target=lambda k=k, c=c, s=seen: s.__setitem__(k, until(c[0], every=c[1])))
                       for k, c in checks.items()]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            forward.append(seen["forward"] - ended)
            poll.append(seen["poll"] - ended)
            push.append(seen["push"] - ended)
    bearer_login(device)
    token = device.access_token
    auth = (app["client_id"], app["client_secret"])
    intro, me = [], []
    for _ in range(args.requests):
        started = time.perf_counter()
        assert requests.post(url + "/session/introspect", data={"token": token}, auth=auth,
                             timeout=5).json()["active"]
        intro.append(time.perf_counter() - started)
        started = time.perf_counter()
        assert requests.get(url + "/session/me", headers={"Authorization": f"Bearer {token}"},
                            timeout=5).status_code == 200
        me.append(time.perf_counter() - started)

    def row(values: list[float]) -> dict:
        ms = [v * 1000 for v in values if v == v]
        return {"n": len(ms), "missed": len(values) - len(ms), "p50_ms": round(statistics.median(ms), 1),
                "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1)}

    return {"revocation_to_refusal": {"guard_poll": row(poll), "push_receiver": row(push),
                                      "forward_auth_check": row(forward)},
            "introspect_vs_me": {"introspect": row(intro), "session_me": row(me),
                                 "ratio_p50": round(statistics.median(intro) / statistics.median(me), 2)},
            "load_average": os.getloadavg()}


if __name__ == "__main__":
    main()
