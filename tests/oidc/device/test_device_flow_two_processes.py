"""The device authorization grant (RFC 8628, SPEC §14 and §5) on two `citylogin serve` processes over one set
of tables: an approved code polled at both at once gives one token answer and invalid_grant; slow_down holds
across hosts; approvals for one account racing on both processes, beside its devices' logins, never put it over
its device limit nor a class over its limit (`tv=1`), every approval answered 200 holds its seat or lost it
with an event, and every refused one opened nothing and left its code pending; a screen displaced by another
approval, or signed out from the phone, is told to its app (Back-Channel Logout naming its sid) and its tokens
stop on both processes."""
from __future__ import annotations

import base64
import os
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any, Callable

import jwt
import pytest
import requests
from click.testing import CliRunner

from citylogin.cli.main import main
from citylogin.client.api import Client, CityloginError
from common.config import load_settings
from sessions import service as sessions
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.services.test_soak import most_at_once, session_intervals
from tests.support.class_limits import class_violations
from tests.support.device_flow import GRANT_TYPE
from tests.support.live import PASSWORD
from tests.support.notes import add_app, second_device
from tests.support.ports import free_port
from tests.support.receiver import received, receiver
from tests.support.services import running_process
from tests.support.waiting import wait_until
from common.runtime.context import AppContext, build_context

LIMIT = 3                 # the deployment's device limit
CLASS_LIMITS = {"tv": 1}  # and one TV at a time
SCREENS = 4               # approvals racing in one round, half on each process
ROUNDS = 3


@dataclass(frozen=True)
class Deployment:
    hosts: tuple[str, str]
    env: dict[str, str]
    apps: dict[str, dict]  # name -> the CLI's {"client_id", "client_secret", ...}
    sink: str              # the apps' back-channel logout endpoint
    ctx: AppContext        # this test's own view of the tables (the records, the presence, the feed)


@pytest.fixture(scope="module")
def deployment(dynamodb_endpoint, tmp_path_factory):
    ports = free_port(), free_port()
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("dev2p") + "_",
                         "data_dir": tmp_path_factory.mktemp("citylogin"), "log_level": "WARNING",
                         "max_concurrent_devices": LIMIT, "device_class_limits": "tv=1", "ssf_push_interval": 0.2,
                         # a poll right after another is always too soon, whatever the machine's load
                         "device_poll_interval": 60, "challenges_per_minute_per_ip": 10**6,
                         **FAST_ARGON2, **RAISED_LIMITS}),
           "CITYLOGIN_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    with ExitStack() as stack:
        sink = stack.enter_context(receiver())
        assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
        # The apps exist before the processes start: their pushers know them from the first listing.
        told = ("--backchannel-logout-uri", sink + "/backchannel")
        apps = {"tv": add_app(env, "Living-room TV app", options=("--device-flow", *told)),
                "desktop": add_app(env, "Desk console", options=("--device-flow", "--device-class", "desktop", *told))}
        hosts = tuple(stack.enter_context(running_process(
            [sys.executable, "-m", "citylogin", "serve"], port=port, timeout=60,
            env={**env, "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(port)})) for port in ports)
        ctx = build_context(load_settings(environ=env))
        yield Deployment(hosts=hosts, env=env, apps=apps, sink=sink, ctx=ctx)


# --- the screen's side ---------------------------------------------------------------------------

def _ask(host: str, app: dict) -> dict:
    answer = requests.post(host + "/oidc/device_authorization", data={"scope": "openid offline_access"},
                           auth=(app["client_id"], app["client_secret"]), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _poll(host: str, app: dict, device_code: str) -> requests.Response:
    return requests.post(host + "/oidc/token", data={"grant_type": GRANT_TYPE, "device_code": device_code},
                         auth=(app["client_id"], app["client_secret"]), timeout=30)


def _error(response: requests.Response) -> str:
    assert response.status_code == 400 and response.headers["Content-Type"].startswith("application/json"), \
        (response.status_code, response.text)
    return response.json()["error"]


def _pending(host: str, user_code: str) -> bool:
    """Whether the person could still approve `user_code` (RFC 8628: it is not decided)."""
    return requests.post(host + "/oidc/device/lookup", json={"user_code": user_code}, timeout=30).status_code == 200


# --- the person's side ---------------------------------------------------------------------------

def _approve(phone: Client, host: str, user_code: str, *, force: bool, name: str = "Living-room TV") \
        -> requests.Response:
    """An approval by the phone's session from `host`, on a Client of its own (one per thread)."""
    own = Client(host, key_file=phone.require_key_file())
    own.use_tokens(phone.tokens() or {})
    return own.request("POST", "/oidc/device/approve", json={"user_code": user_code, "device_name": name,
                                                             "force": force})


def _account(deployment: Deployment) -> tuple[Client, list[Client]]:
    """A new account: its phone (registered, signed in) and two more devices, signed out."""
    phone = Client(deployment.hosts[0])
    name = unique_name()
    phone.register(username=name, email=f"{name}@example.com", password=PASSWORD, device_name="phone")
    phone.login(PASSWORD, force=True)
    others = [second_device(phone) for _ in range(2)]
    return phone, others


def _login(device: Client, host: str) -> str:
    """The device's forced login from `host`: "ok", or the refusal a race may give (503 after its retries)."""
    device.base_url = host
    try:
        device.login(PASSWORD, force=True)
    except CityloginError as error:
        assert error.status == 503, error
        return "503"
    return "ok"


class PresenceWatch:
    """Reads the account's presence over and over while a race runs: the most live devices, and the most live
    devices of each class, it ever held at once."""

    def __init__(self, ctx: AppContext, user_uuid: str) -> None:
        self.ctx, self.user_uuid = ctx, user_uuid
        self.most, self.most_of_class = 0, Counter[str]()
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            live = sessions.live_devices(self.ctx, user_uuid=self.user_uuid)
            self.most = max(self.most, len(live))
            for device_class, count in Counter(e.device_class for e in live).items():
                self.most_of_class[device_class] = max(self.most_of_class[device_class], count)
            self.reads += 1
            self._stop.wait(0.01)

    def __enter__(self) -> "PresenceWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(30)


def _at_once(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run `jobs` in threads released together by a barrier."""
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[], Any]) -> Any:
        barrier.wait(30)
        return job()
    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


# --- one approved code, two processes --------------------------------------------------------------

def test_an_approved_code_polled_on_both_processes_at_once_gives_one_token_answer(deployment):
    app = deployment.apps["desktop"]
    phone, _ = _account(deployment)
    for round_ in range(6):
        asked = _ask(deployment.hosts[round_ % 2], app)
        approved = _approve(phone, deployment.hosts[1 - round_ % 2], asked["user_code"], force=True,
                            name=f"console {round_}")
        assert approved.status_code == 200, approved.text
        phone.login(PASSWORD, force=True)  # the phone keeps its seat: it approves the next round
        answers = _at_once([lambda h=host, code=asked["device_code"]: _poll(h, app, code)
                            for host in deployment.hosts])
        won = [a for a in answers if a.status_code == 200]
        assert len(won) == 1, [a.text for a in answers]
        assert [_error(a) for a in answers if a not in won] == ["invalid_grant"]
        claims = jwt.decode(won[0].json()["id_token"], options={"verify_signature": False})
        assert claims["sid"] == approved.json()["session_id"]
        assert {_error(_poll(host, app, asked["device_code"])) for host in deployment.hosts} == {"invalid_grant"}


def test_a_poll_on_one_host_then_at_once_on_the_other_is_slow_down(deployment):
    app = deployment.apps["tv"]
    for first, second in (deployment.hosts, deployment.hosts[::-1]):
        device_code = _ask(first, app)["device_code"]
        assert _error(_poll(first, app, device_code)) == "authorization_pending"
        assert _error(_poll(second, app, device_code)) == "slow_down"  # the interval (60 s) is on the request
        assert _error(_poll(first, app, device_code)) == "slow_down"   # and grew for both


# --- racing approvals and logins under the limit ----------------------------------------------------

@dataclass
class RaceLog:
    """What a race's approvals answered: session_id -> (user_code, host) of each 200; the codes refused."""

    approved: dict[str, tuple[str, str]]
    refused: list[tuple[str, str, int, str]]  # (user_code, host, status, code)
    logins: Counter


def _race(deployment: Deployment, app: dict, phone: Client, others: list[Client], *, force: bool, log: RaceLog) \
        -> None:
    """One round: SCREENS codes asked, approved at once half on each process, with the account's two other
    devices logging in (force) on either process at the same moment."""
    hosts = deployment.hosts
    phone.login(PASSWORD, force=True)  # the approver: a live session at the start of the round
    codes = [_ask(hosts[i % 2], app)["user_code"] for i in range(SCREENS)]
    jobs: list[Callable[[], Any]] = [
        lambda code=code, host=hosts[i % 2], i=i: ("approval", code, host,
                                                   _approve(phone, host, code, force=force, name=f"screen {i}"))
        for i, code in enumerate(codes)]
    jobs += [lambda device=device, host=hosts[i % 2]: ("login", _login(device, host))
             for i, device in enumerate(others)]
    for outcome in _at_once(jobs):
        if outcome[0] == "login":
            log.logins[outcome[1]] += 1
            continue
        _, code, host, answer = outcome
        if answer.status_code == 200:
            log.approved[answer.json()["session_id"]] = (code, host)
            continue
        body = answer.json()
        assert answer.headers["Content-Type"].startswith("application/problem+json"), answer.text
        # ask without force: the person is asked; the approver's own session displaced by a racer: 401;
        # the presence moving under 60 writes in a row: 503
        assert (answer.status_code, body["code"]) in {(409, "concurrent_login"), (401, "session_revoked"),
                                                      (503, "service_unavailable")}, answer.text
        assert force or answer.status_code != 200
        log.refused.append((code, host, answer.status_code, body["code"]))


def _check_round(deployment: Deployment, phone: Client, others: list[Client], log: RaceLog, *,
                 limit: int) -> None:
    """After a round: the presence within the limits; every 200 holds its seat or lost it with its event;
    every refusal opened no session and left its code pending."""
    ctx, user_uuid = deployment.ctx, phone.require_key_file().user_uuid
    live = sessions.live_devices(ctx, user_uuid=user_uuid)
    assert len(live) <= limit, live
    assert Counter(e.device_class for e in live)["tv"] <= CLASS_LIMITS["tv"], live
    own_devices = {d.require_key_file().device_id for d in (phone, *others)}
    records = {r.session_id: r for r in sessions.list_user_sessions(ctx, user_uuid=user_uuid)}
    screens = {sid for sid, r in records.items() if r.device_id not in own_devices}
    assert screens == set(log.approved), (screens ^ set(log.approved))  # no session without its 200
    live_ids = {e.session_id for e in live}
    ended = {e.session_id for e in sessions.events_after(ctx, "0") if e.user_uuid == user_uuid}
    for session_id in log.approved:
        record = records[session_id]
        if session_id in live_ids:
            assert record.status == "active", record
        else:  # displaced by a later approval or login, and the feed says so
            assert record.revoked_reason == "displaced" and session_id in ended, record
    for code, host, _, _ in log.refused:
        assert _pending(deployment.hosts[0] if host == deployment.hosts[1] else deployment.hosts[1], code), code


@pytest.mark.parametrize("screen_class", ["desktop", "tv"])
def test_racing_approvals_and_logins_on_two_processes_never_exceed_the_limits(deployment, screen_class):
    ctx, app = deployment.ctx, deployment.apps[screen_class]
    phone, others = _account(deployment)
    user_uuid = phone.require_key_file().user_uuid
    log = RaceLog(approved={}, refused=[], logins=Counter())
    with PresenceWatch(ctx, user_uuid) as watch:
        for force in [True] * ROUNDS + [False] * ROUNDS:
            _race(deployment, app, phone, others, force=force, log=log)
            _check_round(deployment, phone, others, log, limit=LIMIT)
    assert watch.reads > 0 and watch.most <= LIMIT, watch.most
    assert watch.most_of_class["tv"] <= CLASS_LIMITS["tv"], watch.most_of_class
    # ... and the records of every session, at every moment of the rounds (whole seconds, half-open)
    records = [asdict(r) for r in sessions.list_user_sessions(ctx, user_uuid=user_uuid)]
    intervals = session_intervals(records, sessions.liveness(ctx.settings))
    assert most_at_once([(start, end) for _, _, _, start, end in intervals]) <= LIMIT
    assert not class_violations({r["session_id"]: r for r in records}, intervals, CLASS_LIMITS)
    # the race was one: forced approvals got seats, asked ones were asked
    refusals = Counter((status, code) for _, _, status, code in log.refused)
    assert len(log.approved) >= ROUNDS and refusals[(409, "concurrent_login")] >= 1, (len(log.approved), refusals)
    print(f"{screen_class}: {len(log.approved)} approved, refusals {dict(refusals)}, logins {dict(log.logins)}, "
          f"{watch.reads} presence reads, at most {watch.most} live")


# --- the displaced screen's app is told -----------------------------------------------------------

def _tokens_of_a_screen(deployment: Deployment, phone: Client, app: dict, name: str) -> tuple[str, dict]:
    asked = _ask(deployment.hosts[0], app)
    approved = _approve(phone, deployment.hosts[1], asked["user_code"], force=True, name=name)
    assert approved.status_code == 200, approved.text
    issued = _poll(deployment.hosts[0], app, asked["device_code"])
    assert issued.status_code == 200, issued.text
    return approved.json()["session_id"], issued.json()


def _told(deployment: Deployment, app: dict, session_id: str) -> None:
    def logout() -> bool:
        tokens = [jwt.decode(t, options={"verify_signature": False}) for t in received(deployment.sink)["sets"]]
        return any(t.get("sid") == session_id and t["aud"] == app["client_id"] for t in tokens)
    wait_until(logout, timeout=30, what=f"the Back-Channel Logout token of {session_id}")


def _stopped(deployment: Deployment, app: dict, tokens: dict) -> None:
    """The screen's tokens give nothing on either process: refresh, userinfo, introspection."""
    for host in deployment.hosts:
        refreshed = requests.post(host + "/oidc/token", data={"grant_type": "refresh_token",
                                                              "refresh_token": tokens["refresh_token"]},
                                  auth=(app["client_id"], app["client_secret"]), timeout=30)
        assert _error(refreshed) == "invalid_grant"
        userinfo = requests.get(host + "/oidc/userinfo", timeout=30,
                                headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert userinfo.status_code == 401, userinfo.text
        introspected = requests.post(host + "/session/introspect", data={"token": tokens["access_token"]},
                                     auth=(app["client_id"], app["client_secret"]), timeout=30)
        assert introspected.json() == {"active": False}, introspected.text


def test_a_displaced_or_signed_out_screen_is_told_and_its_tokens_stop(deployment):
    app = deployment.apps["desktop"]
    phone, _ = _account(deployment)
    username = phone.require_key_file().username
    limited = CliRunner().invoke(main, ["admin", "set-limit", username, "2", "--reason", "test"], env=deployment.env)
    assert limited.exit_code == 0, limited.output
    first, first_tokens = _tokens_of_a_screen(deployment, phone, app, "first console")
    assert requests.get(deployment.hosts[1] + "/oidc/userinfo", timeout=30, headers={
        "Authorization": f"Bearer {first_tokens['access_token']}"}).status_code == 200
    phone.login(PASSWORD, force=True)  # the phone's login is newer than the first screen's seat now

    second, second_tokens = _tokens_of_a_screen(deployment, phone, app, "second console")  # displaces the first
    ended = {r.session_id: r for r in sessions.list_user_sessions(deployment.ctx,
                                                                   user_uuid=phone.require_key_file().user_uuid)}
    assert (ended[first].revoked_reason, ended[second].status) == ("displaced", "active")
    _told(deployment, app, first)
    _stopped(deployment, app, first_tokens)

    phone.base_url = deployment.hosts[1]
    assert phone.request("DELETE", f"/session/{second}").status_code == 204  # signed out from the phone
    _told(deployment, app, second)
    _stopped(deployment, app, second_tokens)
