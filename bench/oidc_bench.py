"""The OpenID Provider's figures (issue 31, SPEC §14), on their own:

    .venv/bin/python bench/oidc_bench.py [--flows 40] [--displacements 40] [--load-seconds 10]

Not a test. The same set-up as run_bench.py (in-memory DynamoDB Local, `citylogin init`, gunicorn with
2 workers x 8 threads on 127.0.0.1), plus one app registered with `citylogin apps add --redirect-uri
--backchannel-logout-uri`, whose back-channel endpoint is a small HTTP server in this process that
notes when each logout token arrives. It measures:

1. The code flow, step by step (authorize → the device finishes it → token → userinfo), sequential:
   p50/p99 of each step and of the whole, beside GET /session/me (one GetItem, the same app and
   network: the floor of a request here), and the DynamoDB calls of one whole flow (the server's own
   counter, GET /metrics).
2. The token endpoint under load: threads redeeming refresh tokens (each its own grant, rotated on
   every call) for --load-seconds: requests/s, and requests per second of server CPU (the gunicorn
   tree's CPU seconds from /proc, bench/cpu.py), so that the load generator's own speed does not
   count; the cores the server, DynamoDB Local and the load generator used are printed beside it.
   (Against POST /session/refresh on the same server, alternating: bench/run_bench.py.)
3. Back-Channel Logout delivery: a device signed in to the app is displaced by another device's
   login; from the displacing login's answer to the logout token's arrival at the app: p50/p99, and
   how many never arrived within 10 s (lost).
4. The first Back-Channel Logout of a just-added app (issue 42, SPEC §14: every process pushes to an
   app added a moment ago): each round `citylogin apps add` registers a new app while gunicorn's two
   workers run, a device signs in to it at once and logs out; from the logout's answer to the logout
   token's arrival: p50/p99 and lost, and how long after the add the session ended.

    .venv/bin/python bench/oidc_bench.py --only new_app --new-apps 30   # part 4 alone
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

from citylogin.client.api import Client
from common.database.dynamodb_local import DynamoDBLocal, free_port
from cpu import cpu_delta, tree_cpu_seconds
from dynamo_calls import dynamodb_calls
from loadgen import local_session, summarize
from servers import PROJECT_ROOT, VENV_BIN, app_environment, gunicorn_app, run_init

PASSWORD = "correct horse battery staple"
REDIRECT = "https://bench.example/callback"
DELIVERY_TIMEOUT = 10.0


class Arrivals:
    """The logout tokens the app received: sid -> when (time.time())."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.changed = threading.Condition()

    def wait_for(self, sid: str, timeout: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: sid in self.at, timeout=timeout)
            return self.at.get(sid)


def receiver(arrivals: Arrivals) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            token = parse_qs(body).get("logout_token", [""])[0]
            arrived = time.time()
            try:
                sid = jwt.decode(token, options={"verify_signature": False})["sid"]
            except (jwt.PyJWTError, KeyError):
                self.send_response(400)
                self.end_headers()
                return
            with arrivals.changed:
                arrivals.at.setdefault(sid, arrived)
                arrivals.changed.notify_all()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def add_app(env: dict[str, str], receiver_port: int | None, name: str = "bench") -> dict[str, str]:
    """`citylogin apps add NAME --json` with REDIRECT; a back-channel logout URI on `receiver_port`
    unless None. The app's client_id and client_secret."""
    backchannel = ["--backchannel-logout-uri", f"http://127.0.0.1:{receiver_port}/bcl"] if receiver_port else []
    done = subprocess.run([str(VENV_BIN / "citylogin"), "apps", "add", name, "--json", "--redirect-uri", REDIRECT,
                           *backchannel], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"citylogin apps add failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout)


def signed_in_device(base_url: str, name: str) -> Client:
    client = Client(base_url)
    client.register(username=name, email=f"{name}@example.com", password=PASSWORD)
    client.login(PASSWORD)
    return client


class Flow:
    """One app's code flow for a signed-in device, step by step, over one keep-alive session."""

    def __init__(self, base_url: str, app: dict[str, str]) -> None:
        self.base_url, self.app, self.http = base_url, app, local_session()
        self.auth = (app["client_id"], app["client_secret"])

    def authorize(self) -> tuple[str, str]:
        verifier = os.urandom(32).hex()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode({"response_type": "code", "client_id": self.app["client_id"], "redirect_uri": REDIRECT,
                           "scope": "openid profile offline_access", "code_challenge": challenge,
                           "code_challenge_method": "S256", "state": "s", "nonce": "n"})
        answer = self.http.get(f"{self.base_url}/oidc/authorize?{query}", allow_redirects=False, timeout=10)
        assert answer.status_code == 303, answer.text
        return urlsplit(answer.headers["Location"]).fragment.removeprefix("oidc="), verifier

    def complete(self, device: Client, request_id: str) -> str:
        """The device's session finishes the request in the browser that started it (self.http: its cookie)."""
        url = self.base_url + "/oidc/authorize/complete"
        answer = self.http.post(url, headers={**device.auth_headers("POST", url), "Content-Type": "application/json"},
                                data=json.dumps({"request": request_id}), timeout=10)
        assert answer.status_code == 200, answer.text
        return parse_qs(urlsplit(answer.json()["redirect_to"]).query)["code"][0]

    def token(self, code: str, verifier: str) -> dict:
        answer = self.http.post(self.base_url + "/oidc/token", auth=self.auth, timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def refresh(self, refresh_token: str) -> dict:
        answer = self.http.post(self.base_url + "/oidc/token", auth=self.auth, timeout=10,
                                data={"grant_type": "refresh_token", "refresh_token": refresh_token})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def userinfo(self, access_token: str) -> int:
        return self.http.get(self.base_url + "/oidc/userinfo", timeout=10,
                             headers={"Authorization": f"Bearer {access_token}"}).status_code

    def whole(self, device: Client) -> dict:
        request_id, verifier = self.authorize()
        tokens = self.token(self.complete(device, request_id), verifier)
        assert self.userinfo(tokens["access_token"]) == 200
        return tokens


def timed(call, *args):
    start = time.perf_counter()
    result = call(*args)
    return result, time.perf_counter() - start


def bench_code_flow(base_url: str, app: dict[str, str], n: int) -> dict:
    device = signed_in_device(base_url, f"flow{os.getpid()}")
    flow = Flow(base_url, app)
    flow.whole(device)  # warm-up
    steps: dict[str, list[float]] = {"authorize": [], "complete": [], "token": [], "userinfo": [], "whole": [],
                                     "floor: GET /session/me": []}
    for _ in range(n):
        started = time.perf_counter()
        (request_id, verifier), t_authorize = timed(flow.authorize)
        code, t_complete = timed(flow.complete, device, request_id)
        tokens, t_token = timed(flow.token, code, verifier)
        status, t_userinfo = timed(flow.userinfo, tokens["access_token"])
        assert status == 200
        steps["whole"].append(time.perf_counter() - started)
        for name, value in (("authorize", t_authorize), ("complete", t_complete), ("token", t_token),
                            ("userinfo", t_userinfo)):
            steps[name].append(value)
        _, t_floor = timed(device.request, "GET", "/session/me")
        steps["floor: GET /session/me"].append(t_floor)
    http = local_session()
    time.sleep(0.5)
    before = dynamodb_calls(base_url, http)
    for _ in range(10):
        flow.whole(device)
    time.sleep(0.5)
    calls = dynamodb_calls(base_url, http) - before
    floor = summarize(steps["floor: GET /session/me"])
    result = {name: summarize(values) for name, values in steps.items()}
    result["whole_over_floor_p50"] = result["whole"]["p50"] / floor["p50"]
    result["dynamodb_calls_per_flow"] = {"total": sum(calls.values()) / 10,
                                         "by_operation": {op: c / 10 for op, c in sorted(calls.items())}}
    return result


def bench_token_load(base_url: str, app: dict[str, str], seconds: float, threads: int, pids: dict[str, int]) -> dict:
    # A grant per session and app: each thread its own person's device (a second sign-in of one
    # session to one app would replace the first grant and its refresh tokens).
    grants = [Flow(base_url, app).whole(signed_in_device(base_url, f"load{os.getpid()}x{i}"))["refresh_token"]
              for i in range(threads)]
    counts = [0] * threads
    failures = [0] * threads
    deadline = time.monotonic() + seconds

    def run(index: int) -> None:
        flow, token = Flow(base_url, app), grants[index]
        while time.monotonic() < deadline:
            try:
                token = flow.refresh(token)["refresh_token"]
                counts[index] += 1
            except AssertionError:
                failures[index] += 1
                return

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    cpu_before = tree_cpu_seconds(pids)
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    used = cpu_delta(cpu_before, tree_cpu_seconds(pids))
    total = sum(counts)
    return {"threads": threads, "seconds": elapsed, "requests": total, "failures": sum(failures),
            "per_second": total / elapsed,
            "per_server_cpu_second": total / used["server"] if used.get("server") else None,
            "server_cpu_ms_per_request": 1000 * used["server"] / total if total else None,
            "cores_used": {name: cpu / elapsed for name, cpu in used.items()}}


def bench_backchannel(base_url: str, app: dict[str, str], arrivals: Arrivals, n: int) -> dict:
    flow = Flow(base_url, app)
    first = signed_in_device(base_url, f"bcl{os.getpid()}")
    second = Client(base_url)
    second.pair(first.request_pairing()["qr_code"], username=first.key_file.username, password=PASSWORD)
    latencies: list[float] = []
    lost = 0
    devices = [first, second]
    for round_number in range(n):
        holder, taker = devices[round_number % 2], devices[(round_number + 1) % 2]
        holder.login(PASSWORD, force=True)
        flow.whole(holder)
        sid = holder.session_id
        taker.login(PASSWORD, force=True)  # one device at a time (the default limit): the holder is out
        answered = time.time()
        arrived = arrivals.wait_for(sid, DELIVERY_TIMEOUT)
        if arrived is None:
            lost += 1
        else:
            latencies.append(max(0.0, arrived - answered))
    return {**summarize(latencies), "rounds": n, "lost": lost}


def bench_new_app_backchannel(base_url: str, env: dict[str, str], receiver_port: int, arrivals: Arrivals,
                              n: int) -> dict:
    device = signed_in_device(base_url, f"new{os.getpid()}")
    latencies, after_add = [], []
    lost = 0
    for round_number in range(n):
        app = add_app(env, receiver_port, name=f"new app {round_number}")  # the CLI, beside the running workers
        added = time.time()
        device.login(PASSWORD, force=True)
        Flow(base_url, app).whole(device)  # signed in to the new app at once: it holds an ID token of the session
        sid = device.session_id
        device.logout()
        answered = time.time()
        after_add.append(answered - added)
        arrived = arrivals.wait_for(sid, DELIVERY_TIMEOUT)
        if arrived is None:
            lost += 1
        else:
            latencies.append(max(0.0, arrived - answered))
    return {**summarize(latencies), "rounds": n, "lost": lost, "session_ended_after_add": summarize(after_add)}


PARTS = ("code_flow", "token_load", "backchannel", "new_app")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flows", type=int, default=40)
    parser.add_argument("--displacements", type=int, default=40)
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument("--load-threads", type=int, default=8)
    parser.add_argument("--new-apps", type=int, default=30, help="rounds of part 4 (a just-added app)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run these parts alone (repeatable)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "oidc.json")
    args = parser.parse_args(argv)
    arrivals = Arrivals()
    with tempfile.TemporaryDirectory(prefix="citylogin-oidc-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        db = stack.enter_context(DynamoDBLocal())
        env = app_environment(endpoint_url=db.endpoint_url, data_dir=work / "data")
        env["CITYLOGIN_CONCURRENCY_POLICY"] = "force"
        run_init(env)
        server, port = receiver(arrivals)
        app = add_app(env, port)
        running = stack.enter_context(gunicorn_app(env, log_path=work / "gunicorn.log"))
        print(f"gunicorn on {running.base_url}", flush=True)
        parts = set(args.only or PARTS)
        results: dict = {}
        if "code_flow" in parts:
            results["code_flow"] = bench_code_flow(running.base_url, app, args.flows)
        if "token_load" in parts:
            results["token_endpoint_load"] = bench_token_load(running.base_url, app, args.load_seconds,
                                                              args.load_threads,
                                                              {"server": running.pid, "dynamodb": db.process.pid})
        if "backchannel" in parts:
            results["backchannel_logout"] = bench_backchannel(running.base_url, app, arrivals, args.displacements)
        if "new_app" in parts:
            results["backchannel_logout_of_a_just_added_app"] = bench_new_app_backchannel(
                running.base_url, env, port, arrivals, args.new_apps)
        results["machine"] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
        server.shutdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
