"""Where one OpenID Provider row's server CPU goes (issue 53, item 5), without the HTTP server around it:

    .venv/bin/python bench/profile_row.py introspection [--requests 3000] [--profile 40]

Not a test. One DynamoDB Local in memory, `citylogin init`, one app (`citylogin apps add --redirect-uri`),
then gunicorn as deploy/ runs it for the set-up only: a new account signs in with its device key
(citylogin.client.api) and finishes one code flow, so that the row has an access token, a refresh token
or codes. The measured requests go to the app in this process (`create_app()` on the same tables and key
ring, through Flask's test client, one at a time): the row's CPU per request is `time.thread_time()` over
them (the test client's own work included, about 0.05 ms), with no server and no other thread in it; each
answer is read whole and closed, as a server closes it, so that the access line and the request's metrics,
which run at the close, are in the figure (before issue 66's end they were not). The
process's CPU beside it adds what the request handed to the background pool (common/web/background.py: a DPoP
proof's spending) and the few idle threads' wake-ups.
`--profile N` runs the requests once more under py-spy (a sampling profiler in its own process, 1,000
samples a second of the thread while it holds the GIL: its CPU, not its waits for DynamoDB) and prints the
N functions with the most samples, each with its share of the samples that include it and of those it
was running itself. (cProfile would inflate pure-Python calls against C ones many times over: PyJWT's
check of each character of a token looked like half of introspection under it.)

Rows: discovery, userinfo, introspection, refresh, code (the same requests as bench/peer_bench.py's),
session-refresh (the device's own POST /session/refresh on a bearer session, rotating: what
`run_bench.py --only oidc` puts an app's refresh beside), and
login (POST /login/challenge, then POST /login/, by 8 accounts in turn: the request thread's CPU, which leaves
out the Argon2id hash, run on a hash slot's own thread, common/crypto/hash_slots.py; the device's signature, made
by the bench, is in it, about 0.04 ms). The sign-in's steps as bench/peer_client.py's flow makes them (issue
66): authorize (GET /oidc/authorize with a new PKCE pair: the 303 to the sign-in page and the browser's
cookie), complete (POST /oidc/authorize/complete by the signed-in device, its DPoP proof over its session's
token, for a request and cookie that authorize gave beforehand, untimed), and flow (the whole sign-in: both,
the code's redemption at /oidc/token and GET /oidc/userinfo). Their inputs (PKCE pairs, the device's DPoP
proofs, complete's waiting requests) are made before the timed loop, as the peer bench makes them before its
timer; the browser's cookie is sent by hand (no cookie jar that grows with every request).
bench/ copied into an older checkout gives its "before" figures, as for run_bench.py.
"""
from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import json
import os
import re
import signal
import secrets
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.function_timing import timed_functions  # noqa: E402
from bench.servers import VENV_BIN, app_environment, gunicorn_app, run_init  # noqa: E402
import requests  # noqa: E402

from citylogin.client.api import Client  # noqa: E402
from citylogin.client.keys import sign_challenge  # noqa: E402
from common.database.dynamodb_local import DynamoDBLocal, free_port  # noqa: E402

ROWS = ("discovery", "userinfo", "introspection", "refresh", "session-refresh", "code", "login", "authorize",
        "complete", "flow")
SIGN_IN_ROWS = ("authorize", "complete", "flow")
COMPLETE_URL = "http://localhost/oidc/authorize/complete"  # as Flask's test client's requests are addressed
LOGIN_PEOPLE = 8  # the login row's accounts, each logging in again in turn (force policy: no 409)
REDIRECT = "https://bench.example/callback"
PASSWORD = "Bench-" + secrets.token_hex(8)
WARM_UP = 30


def _basic(app: dict[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _authorize_query(app: dict[str, str], challenge: str) -> str:
    return urlencode({"response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT,
                      "scope": "openid profile offline_access", "code_challenge": challenge,
                      "code_challenge_method": "S256", "state": "s", "nonce": "n"})


def _code(base_url: str, app: dict[str, str], device: Client) -> tuple[str, str]:
    """One code of the device's session for the app, by authorize and the device's completion; with its
    PKCE verifier."""
    verifier, challenge = _pkce()
    query = _authorize_query(app, challenge)
    http = device.http
    asked = http.get(f"{base_url}/oidc/authorize?{query}", allow_redirects=False, timeout=30)
    request_id = urlsplit(asked.headers["Location"]).fragment.removeprefix("oidc=")
    url = base_url + "/oidc/authorize/complete"
    done = http.post(url, headers={**device.auth_headers("POST", url), "Content-Type": "application/json"},
                     data=json.dumps({"request": request_id}), timeout=30)
    done.raise_for_status()
    return parse_qs(urlsplit(done.json()["redirect_to"]).query)["code"][0], verifier


def _signed_in(base_url: str, name: str) -> Client:
    device = Client(base_url, timeout=30)
    device.http.trust_env = False  # straight to 127.0.0.1
    device.register(username=name, email=f"{name}@example.com", password=PASSWORD, key_kind="ecdsa-p256")
    device.login(PASSWORD, force=True)
    return device


def _login(client: Any, device: Client) -> Any:
    """The challenge, then POST /login/ with the password and the device's signature over it."""
    challenge = client.post("/login/challenge").get_json()["challenge"]
    keys = device.key_file
    return client.post("/login/", json={"username": keys.username, "password": PASSWORD,
                                        "client_cert": keys.client_cert_b64(), "challenge": challenge,
                                        "signature": sign_challenge(keys.private_key(), challenge)})


def _set_up(stack: ExitStack, work: Path, row: str,
            requests_n: int) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """The environment of the tables, the app, and what the row needs (tokens, codes)."""
    local = stack.enter_context(DynamoDBLocal(port=free_port(), db_path=None))
    env = app_environment(endpoint_url=local.endpoint_url, data_dir=work)
    run_init(env)
    added = subprocess.run([str(VENV_BIN / "citylogin"), "apps", "add", "bench", "--json", "--redirect-uri", REDIRECT],
                           env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    app = json.loads(added.stdout)
    with gunicorn_app(env, log_path=work / "gunicorn.log") as server:
        http = requests.Session()
        http.trust_env = False  # straight to 127.0.0.1
        # The code row's codes, each by a device of its own: a session's next sign-in to the app replaces
        # its grant, so a code made before another of the same session was redeemed costs its redemption a
        # second write (bench/peer_bench.py's _code_calls), which is not the case measured.
        devices = [_signed_in(server.base_url, f"profiled{k}")
                   for k in range(requests_n + WARM_UP + 1 if row == "code" else 1)]
        codes = [_code(server.base_url, app, device) for device in devices]
        code, verifier = codes.pop()
        tokens = http.post(server.base_url + "/oidc/token", headers={"Authorization": _basic(app)}, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
            timeout=30).json()
        people = [_signed_in(server.base_url, f"login{k}") for k in range(LOGIN_PEOPLE if row == "login" else 0)]
    return env, {"tokens": tokens, "codes": codes, "people": people, "device": devices[-1]}, app


class SignIn:
    """The sign-in rows' steps in this process: authorize (-> the waiting request's handle and the
    browser's cookie), complete (-> the code), the code's redemption, userinfo; each refused answer is an
    error. `prepare(n)` makes the inputs of the next n requests of the row, untimed."""

    def __init__(self, client: Any, row: str, device: Client, app: dict[str, str]) -> None:
        self.client, self.row, self.device, self.app = client, row, device, app
        self.basic = {"Authorization": _basic(app)}
        self.ready: list[dict[str, Any]] = []

    def prepare(self, n: int) -> None:
        inputs = []
        for _ in range(n):
            verifier, challenge = _pkce()
            made: dict[str, Any] = {"verifier": verifier, "query": _authorize_query(self.app, challenge),
                                    "headers": {**self.device.auth_headers("POST", COMPLETE_URL),
                                                "Content-Type": "application/json"}}
            if self.row == "complete":
                made["request"], made["cookie"] = self.authorize(made["query"])
            inputs.append(made)
        self.ready = inputs[::-1]

    def authorize(self, query: str) -> tuple[str, str]:
        asked = self.client.get(f"/oidc/authorize?{query}")
        if asked.status_code != 303:
            raise RuntimeError(f"authorize: {asked.status_code} {asked.get_data(as_text=True)[:300]}")
        cookie = asked.headers["Set-Cookie"].split(";", 1)[0]
        return urlsplit(asked.headers["Location"]).fragment.removeprefix("oidc="), cookie

    def complete(self, made: dict[str, Any], request_id: str, cookie: str) -> str:
        done = self.client.post("/oidc/authorize/complete", headers={**made["headers"], "Cookie": cookie},
                                data=json.dumps({"request": request_id}))
        if done.status_code != 200:
            raise RuntimeError(f"complete: {done.status_code} {done.get_data(as_text=True)[:300]}")
        return parse_qs(urlsplit(done.get_json()["redirect_to"]).query)["code"][0]

    def one(self) -> None:
        made = self.ready.pop()
        if self.row == "authorize":
            self.authorize(made["query"])
            return
        if self.row == "complete":
            self.complete(made, made["request"], made["cookie"])
            return
        code = self.complete(made, *self.authorize(made["query"]))
        tokens = self.client.post("/oidc/token", headers=self.basic, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": made["verifier"]})
        if tokens.status_code != 200:
            raise RuntimeError(f"token: {tokens.status_code} {tokens.get_data(as_text=True)[:300]}")
        bearer = {"Authorization": "Bearer " + tokens.get_json()["access_token"]}
        answer = self.client.get("/oidc/userinfo", headers=bearer)
        if answer.status_code != 200:
            raise RuntimeError(f"userinfo: {answer.status_code} {answer.get_data(as_text=True)[:300]}")


def _requests(client: Any, row: str, held: dict[str, Any], app: dict[str, str]) -> Callable[[], None]:
    basic = {"Authorization": _basic(app)}
    refresh_token, session_refresh = [held["tokens"]["refresh_token"]], []
    turn = [0]

    def one() -> None:
        if row == "discovery":
            answer = client.get("/.well-known/openid-configuration")
        elif row == "userinfo":
            answer = client.get("/oidc/userinfo", headers={"Authorization": "Bearer " + held["tokens"]["access_token"]})
        elif row == "introspection":
            answer = client.post("/session/introspect", headers=basic, data={"token": held["tokens"]["access_token"]})
        elif row == "refresh":
            answer = client.post("/oidc/token", headers=basic,
                                 data={"grant_type": "refresh_token", "refresh_token": refresh_token[0]})
            refresh_token[0] = answer.get_json()["refresh_token"]
        elif row == "session-refresh":
            if not session_refresh:  # the device's own session, a bearer one (as run_bench.py's oidc part refreshes)
                session_refresh.append(_login(client, held["device"]).get_json()["refresh_token"])
            answer = client.post("/session/refresh", json={"refresh_token": session_refresh[0]})
            session_refresh[0] = answer.get_json()["refresh_token"]
        elif row == "login":
            answer = _login(client, held["people"][turn[0] % LOGIN_PEOPLE])
            turn[0] += 1
        else:
            code, verifier = held["codes"].pop()
            answer = client.post("/oidc/token", headers=basic, data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
        if answer.status_code != 200:
            raise RuntimeError(f"{row}: {answer.status_code} {answer.get_data(as_text=True)[:300]}")
    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("row", choices=ROWS)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print py-spy's top N functions too")
    parser.add_argument("--time", nargs="+", default=[], metavar="MODULE:FUNCTION",
                        help="print each function's own thread CPU per request, calls included (e.g. "
                             "oidc.service:begin common.keys.jwt_keys:JwtKeyRing.decode), where py-spy's samples "
                             "mislead")
    parser.add_argument("--within", default="", metavar="TEXT",
                        help="count only the samples with a frame that contains TEXT (e.g. 'begin (oidc/')")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="profile-row-") as work:
        profiled = args.profile and args.row == "code"
        env, held, app = _set_up(stack, Path(work), args.row, args.requests * (2 if profiled else 1))
        os.environ.update({name: value for name, value in env.items() if name.startswith("CITYLOGIN_")})
        from citylogin.app import create_app
        from flask.testing import FlaskClient

        class ClosingClient(FlaskClient):
            """Each answer read whole and closed, as a server closes it: the access line and the request's
            metrics run when the answer is closed (common.web.request_log), so they are in the figure."""
            def open(self, *args: Any, **kwargs: Any):  # type: ignore[override]
                kwargs.setdefault("buffered", True)
                return super().open(*args, **kwargs)

        def create_app_closing():
            made = create_app()
            made.test_client_class = ClosingClient
            return made
        prepare: Callable[[int], None] = lambda n: None  # noqa: E731
        if args.row in SIGN_IN_ROWS:
            sign_in = SignIn(create_app_closing().test_client(use_cookies=False), args.row, held["device"], app)
            one, prepare = sign_in.one, sign_in.prepare
        else:
            one = _requests(create_app_closing().test_client(), args.row, held, app)
        timed = timed_functions(args.time)
        prepare(WARM_UP)
        for _ in range(WARM_UP):
            one()
        for total in timed.values():
            total[:] = [0.0, 0]
        prepare(args.requests)
        started, started_process = time.thread_time(), time.process_time()
        for _ in range(args.requests):
            one()
        cpu_ms = 1000 * (time.thread_time() - started) / args.requests
        process_ms = 1000 * (time.process_time() - started_process) / args.requests
        print(f"{args.row}: {cpu_ms:.3f} ms of CPU per request ({args.requests} requests, in-process, one thread); "
              f"{process_ms:.3f} ms with the process's other threads (the background pool's work)")
        for name, (seconds, calls) in sorted(timed.items(), key=lambda kv: -kv[1][0]):
            print(f"  {1000 * seconds / args.requests:7.3f} ms  {calls / args.requests:4.1f} calls  {name}")
        if args.profile:
            prepare(args.requests)
            _sampled(one, requests_n=args.requests, top=args.profile, out=Path(work) / "samples.txt",
                     within=args.within)


def _sampled(one: Callable[[], None], *, requests_n: int, top: int, out: Path, within: str = "") -> None:
    """`one` requests_n times under py-spy (requirements-test.lock), then the top functions by samples
    (of those with a frame containing `within`, if given)."""
    spy = subprocess.Popen([str(VENV_BIN / "py-spy"), "record", "--pid", str(os.getpid()), "--gil", "--rate", "1000",
                            "--format", "raw", "--output", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    for _ in range(requests_n):
        one()
    spy.send_signal(signal.SIGINT)
    spy.wait(timeout=60)
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        if not any("_requests.<locals>.one" in frame or "SignIn.one" in frame for frame in frames):
            continue  # py-spy's own start, the harness between requests
        if within and not any(within in frame for frame in frames):
            continue
        total += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
        own[frames[-1]] += int(count)
    print(f"{total} samples; share of the samples that include each function (and that it was running itself)")
    for frame, count in inclusive.most_common(top):
        print(f"{100 * count / total:5.1f}% ({100 * own[frame] / total:4.1f}%)  {frame}")

if __name__ == "__main__":
    main()
