"""The OpenID Provider's figures of issue 44, measured by run_bench.py on its own citylogin server:

1. The code flow (authorize -> the device completes it -> token -> userinfo), one request at a time,
   each step followed by GET /session/me of the same device (the floor of one request on this server):
   each step's p50 / the floor's pooled p50; and the DynamoDB calls of whole flows (source="request").
2. Refreshes per second of server CPU: /oidc/token refresh grants (each thread its own grant) against
   POST /session/refresh (each thread its own session), closed loop, rounds ABBA on the same gunicorn;
   the gunicorn tree's CPU seconds (bench/cpu.py) around each round; the ratio of the pooled rates.

Every request is prepared before its clock starts (the PKCE pair, the device's DPoP proof, the
client's Basic credentials), so the client's own crypto and encoding are not timed.

The second part alone, on a server of its own (DynamoDB Local in memory, `citylogin init`, one app, gunicorn
as run_bench.py runs it), with run_bench.py's full figures unless told:

    .venv/bin/python bench/oidc_figures.py [--seconds 12] [--rounds 2] [--threads 4] [--out FILE]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import flows
from citylogin.client.api import Client
from cpu import cpu_delta, tree_cpu_seconds
from dynamo_calls import calls_per_request
from loadgen import LoadRound, closed_loop_calls, local_session, summarize
from oidc_bench import REDIRECT

STEPS = ("authorize", "complete", "token", "userinfo")
ABBA = ("A", "B", "B", "A")
DEADLINE_S = 180


def signed_in_device(base_url: str, name: str) -> Client:
    """A new account whose device signs in as citylogin.client.api does (the session bound to its key)."""
    client = flows.register(base_url, name)
    client.login(flows.PASSWORD, force=True)
    return client


def _basic(app: dict[str, str]) -> str:
    pair = f"{app['client_id']}:{app['client_secret']}".encode()
    return "Basic " + base64.b64encode(pair).decode()


class CodeFlow:
    """One app's code flow for one signed-in device over one keep-alive session; each step returns
    its result and its latency (s), the request made before the clock starts."""

    def __init__(self, base_url: str, app: dict[str, str], device: Client) -> None:
        self.base_url, self.app, self.device, self.http = base_url, app, device, local_session()
        self.basic = {"Authorization": _basic(app)}

    def _timed(self, method: str, url: str, expect: int, **kwargs):
        started = time.perf_counter()
        answer = self.http.request(method, url, timeout=30, allow_redirects=False, **kwargs)
        elapsed = time.perf_counter() - started
        if answer.status_code != expect:
            raise RuntimeError(f"{method} {urlsplit(url).path}: {answer.status_code} {answer.text[:300]}")
        return answer, elapsed

    def authorize(self) -> tuple[str, str, float]:
        """The request id the device completes, the PKCE verifier, the latency."""
        verifier = os.urandom(32).hex()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode({"response_type": "code", "client_id": self.app["client_id"], "redirect_uri": REDIRECT,
                           "scope": "openid profile offline_access", "code_challenge": challenge,
                           "code_challenge_method": "S256", "state": "s", "nonce": "n"})
        answer, elapsed = self._timed("GET", f"{self.base_url}/oidc/authorize?{query}", 303)
        return urlsplit(answer.headers["Location"]).fragment.removeprefix("oidc="), verifier, elapsed

    def complete(self, request_id: str) -> tuple[str, float]:
        url = self.base_url + "/oidc/authorize/complete"
        headers = {**self.device.auth_headers("POST", url), "Content-Type": "application/json"}
        answer, elapsed = self._timed("POST", url, 200, headers=headers, data=json.dumps({"request": request_id}))
        return parse_qs(urlsplit(answer.json()["redirect_to"]).query)["code"][0], elapsed

    def token(self, code: str, verifier: str) -> tuple[dict, float]:
        answer, elapsed = self._timed("POST", self.base_url + "/oidc/token", 200, headers=self.basic, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
        return answer.json(), elapsed

    def userinfo(self, access_token: str) -> float:
        return self._timed("GET", self.base_url + "/oidc/userinfo", 200,
                           headers={"Authorization": f"Bearer {access_token}"})[1]

    def me(self) -> float:
        """GET /session/me of the device: the floor of one request on this server."""
        url = self.base_url + "/session/me"
        return self._timed("GET", url, 200, headers=self.device.auth_headers("GET", url))[1]

    def whole(self) -> dict:
        request_id, verifier, _ = self.authorize()
        tokens, _ = self.token(self.complete(request_id)[0], verifier)
        self.userinfo(tokens["access_token"])
        return tokens


def bench_code_flow(base_url: str, app: dict[str, str], *, run: str, n: int, calls_n: int) -> dict:
    """n flows, one request at a time, a GET /session/me after each step; then the DynamoDB calls
    of calls_n whole flows."""
    flow = CodeFlow(base_url, app, signed_in_device(base_url, f"b{run}_flow"))
    for _ in range(3):
        flow.whole()  # warm-up: connections, code paths, the app's records
    samples: dict[str, list[float]] = {step: [] for step in STEPS}
    floor: list[float] = []
    deadline = time.monotonic() + DEADLINE_S
    for _ in range(n):
        request_id, verifier, took = flow.authorize()
        samples["authorize"].append(took)
        floor.append(flow.me())
        code, took = flow.complete(request_id)
        samples["complete"].append(took)
        floor.append(flow.me())
        tokens, took = flow.token(code, verifier)
        samples["token"].append(took)
        floor.append(flow.me())
        samples["userinfo"].append(flow.userinfo(tokens["access_token"]))
        floor.append(flow.me())
        if time.monotonic() > deadline:
            break
    steps = {step: summarize(values) for step, values in samples.items()}
    floor_stats = summarize(floor)
    return {"oidc_code_flow": {
        "steps": steps, "floor_me": floor_stats,
        "ratio_p50": {step: steps[step]["p50"] / floor_stats["p50"] for step in STEPS},
        "dynamodb_calls_per_flow": calls_per_request(base_url, flow.whole, calls_n)}}


def _grant_refresh(base_url: str, app: dict[str, str], refresh_token: str) -> Callable[[], bool]:
    """One thread's refresh grants at /oidc/token, rotating its own grant's refresh token."""
    http, url, headers, held = local_session(), base_url + "/oidc/token", {"Authorization": _basic(app)}, \
        [refresh_token]

    def call() -> bool:
        answer = http.post(url, headers=headers, timeout=30,
                           data={"grant_type": "refresh_token", "refresh_token": held[0]})
        if answer.status_code != 200:
            return False
        held[0] = answer.json()["refresh_token"]
        return True
    return call


def _session_refresh(client: Client) -> Callable[[], bool]:
    http = local_session()
    return lambda: flows.refresh(client, http)


def _pooled(rounds: list[tuple[LoadRound, dict]]) -> dict:
    done = sum(len(result.latencies) for result, _ in rounds)
    elapsed = sum(result.elapsed for result, _ in rounds)
    cpu = {name: sum(used.get(name, 0.0) for _, used in rounds) for name in ("server", "dynamodb", "loadgen")}
    latencies = [latency for result, _ in rounds for latency in result.latencies]
    return {**summarize(latencies), "completed": done, "errors": sum(result.errors for result, _ in rounds),
            "seconds": elapsed, "rps": done / elapsed if elapsed else None,
            "server_cpu_seconds": cpu["server"],
            "per_server_cpu_second": done / cpu["server"] if cpu["server"] else None,
            "server_cpu_ms_per_request": 1000 * cpu["server"] / done if done else None,
            "server_cores_used": cpu["server"] / elapsed if elapsed else None,
            "dynamodb_cores_used": cpu["dynamodb"] / elapsed if elapsed else None,
            "loadgen_cores_used": cpu["loadgen"] / elapsed if elapsed else None,
            "rounds_rps": [round(len(result.latencies) / result.elapsed, 1) for result, _ in rounds if result.elapsed]}


def bench_refresh_cpu(base_url: str, app: dict[str, str], *, run: str, pids: dict[str, int], threads: int,
                      seconds: float, rounds: int, warmup_s: float) -> dict:
    """Rounds ABBA (x rounds) of A = refresh grants, B = POST /session/refresh, `seconds` of each kind
    in all; requests per server CPU second of each, pooled over its rounds, and their ratio A / B."""
    grants = [CodeFlow(base_url, app, signed_in_device(base_url, f"b{run}_og{i}")).whole()["refresh_token"]
              for i in range(threads)]
    sessions = [flows.register(base_url, f"b{run}_sr{i}") for i in range(threads)]
    for client in sessions:
        flows.login_with_retry(client)  # a bearer session, as the rest of run_bench.py refreshes
    kinds = {"A": [_grant_refresh(base_url, app, token) for token in grants],
             "B": [_session_refresh(client) for client in sessions]}
    for calls in kinds.values():
        closed_loop_calls(calls, seconds=warmup_s)
    measured: dict[str, list] = {"A": [], "B": []}
    for letter in ABBA * rounds:
        before = tree_cpu_seconds(pids)
        result = closed_loop_calls(kinds[letter], seconds=seconds / (2 * rounds))
        measured[letter].append((result, cpu_delta(before, tree_cpu_seconds(pids))))
    grant, session = _pooled(measured["A"]), _pooled(measured["B"])
    ratio = grant["per_server_cpu_second"] / session["per_server_cpu_second"] \
        if grant["per_server_cpu_second"] and session["per_server_cpu_second"] else None
    return {"refresh_per_server_cpu": {"threads": threads, "oidc_refresh_grant": grant, "session_refresh": session,
                                       "ratio": ratio}}


def main(argv: list[str] | None = None) -> int:
    """bench_refresh_cpu alone, as run_bench.py runs it (two workers of eight threads); its figures as JSON."""
    from common.database.dynamodb_local import DynamoDBLocal
    from oidc_bench import add_app
    from servers import LOCALHOST_ONLY, app_environment, gunicorn_app, run_init

    parser = argparse.ArgumentParser(description="An app's refresh grant against POST /session/refresh, "
                                                 "per server CPU second (run_bench.py's part of it)")
    parser.add_argument("--seconds", type=float, default=12.0, help="of each kind, over all rounds")
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of each kind before the rounds")
    parser.add_argument("--out", type=Path, help="write the JSON here too")
    args = parser.parse_args(argv)
    os.environ.update(LOCALHOST_ONLY)  # requests must not route 127.0.0.1 through a proxy
    with tempfile.TemporaryDirectory(prefix="citylogin-refresh-cpu-") as tmp, ExitStack() as stack:
        work_dir = Path(tmp)
        db = stack.enter_context(DynamoDBLocal())
        env = app_environment(endpoint_url=db.endpoint_url, data_dir=work_dir / "data")
        run_init(env)
        app = add_app(env, None)
        server = stack.enter_context(gunicorn_app(env, log_path=work_dir / "gunicorn.log", workers=2, threads=8))
        figures = bench_refresh_cpu(server.base_url, app, run=os.urandom(3).hex(),
                                    pids={"server": server.pid, "dynamodb": db.process.pid}, threads=args.threads,
                                    seconds=args.seconds, rounds=args.rounds, warmup_s=args.warmup)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    print(f"ratio (refresh grant / POST /session/refresh, per server CPU s): "
          f"{figures['refresh_per_server_cpu']['ratio']:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
