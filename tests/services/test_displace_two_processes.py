"""The person's choice of which device goes (SPEC §5), on two `citylogin serve` processes over one set of
tables: logins and a screen's approvals of one account race in pairs on both processes, each answering
its question by naming a device the 409 listed. Whatever the interleaving, the account never holds more
live sessions than its limit nor more than one TV; every answer that succeeds signed out exactly the
device it named (its session ended as displaced) and nobody else; a named device that another answer
took meanwhile gives a fresh question, never another device's end. Hypothesis draws who races and whom
each names."""
from __future__ import annotations

import base64
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from citylogin.cli.main import main
from citylogin.client.api import Client, CityloginError, ConcurrentLoginRequired
from common.config import load_settings
from common.runtime.context import AppContext, build_context
from sessions import service as sessions
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.oidc.device.test_device_flow_two_processes import PresenceWatch, _at_once
from tests.support.live import PASSWORD
from tests.support.notes import add_app, second_device
from tests.support.ports import free_port
from tests.support.services import running_process

pytestmark = pytest.mark.slow

LIMIT = 2


@dataclass(frozen=True)
class Deployment:
    hosts: tuple[str, str]
    app: dict[str, str]
    ctx: AppContext


@pytest.fixture(scope="module")
def deployment(dynamodb_endpoint, tmp_path_factory):
    ports = free_port(), free_port()
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("choose") + "_",
                         "data_dir": tmp_path_factory.mktemp("citylogin"), "log_level": "WARNING",
                         "max_concurrent_devices": LIMIT, "device_class_limits": "tv=1",
                         "device_poll_interval": 60, "challenges_per_minute_per_ip": 10**6,
                         **FAST_ARGON2, **RAISED_LIMITS}),
           "CITYLOGIN_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}",
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    with ExitStack() as stack:
        assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
        app = add_app(env, "Living-room TV app", options=("--device-flow",))
        hosts = tuple(stack.enter_context(running_process(
            [sys.executable, "-m", "citylogin", "serve"], port=port, timeout=60,
            env={**env, "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(port)})) for port in ports)
        yield Deployment(hosts=hosts, app=app, ctx=build_context(load_settings(environ=env)))


@dataclass
class Outcome:
    """What one racer's answer came to: `named` the session it chose (None: it was not asked), `evicted`
    the device ids its success signed out; `status` "ok", "asked again", or the refusal's code."""

    status: str
    named: dict[str, Any] | None = None
    evicted: tuple[str, ...] = ()


def _login_choosing(device: Client, host: str, pick: int) -> Outcome:
    """The device logs in at `host`; asked, it names the listed device at `pick` (modulo the list)."""
    device.base_url = host
    try:
        device.login(PASSWORD)
        return Outcome("ok")
    except ConcurrentLoginRequired as asked:
        named = asked.active_devices[pick % len(asked.active_devices)]
        try:
            answer = device._keep_tokens(device._post("/login/confirm", {
                "confirm_token": asked.confirm_token, "displace": [named["session_id"]]}, bind=True))
        except ConcurrentLoginRequired:
            return Outcome("asked again", named)
        except CityloginError as error:
            return Outcome(str(error.code), named)
        return Outcome("ok", named, tuple(e["device_id"] for e in answer["evicted"]))
    except CityloginError as error:
        return Outcome(str(error.code))


def _approve_choosing(phone: Client, host: str, app: dict[str, str], pick: int) -> Outcome:
    """The phone approves a new TV code at `host`; asked, it names the listed device at `pick`."""
    code = requests.post(host + "/oidc/device_authorization", data={"scope": "openid offline_access"},
                         auth=(app["client_id"], app["client_secret"]), timeout=30).json()["user_code"]
    own = Client(host, key_file=phone.require_key_file())
    own.use_tokens(phone.tokens() or {})
    body = {"user_code": code, "device_name": "Living-room TV"}
    first = own.request("POST", "/oidc/device/approve", json=body)
    if first.status_code == 200:
        return Outcome("ok")
    if first.json().get("code") != "concurrent_login":
        return Outcome(first.json().get("code", str(first.status_code)))
    listed = first.json()["active_devices"]
    named = listed[pick % len(listed)]
    answer = own.request("POST", "/oidc/device/approve", json={**body, "displace": [named["session_id"]]})
    if answer.status_code == 200:
        return Outcome("ok", named, tuple(e["device_id"] for e in answer.json()["evicted"]))
    code_of = answer.json().get("code")
    return Outcome("asked again" if code_of == "concurrent_login" else str(code_of), named)


def _account(deployment: Deployment) -> tuple[Client, list[Client]]:
    phone = Client(deployment.hosts[0])
    name = unique_name()
    phone.register(username=name, email=f"{name}@example.com", password=PASSWORD, device_name="phone")
    phone.login(PASSWORD, force=True)
    return phone, [second_device(phone) for _ in range(2)]


def _check(deployment: Deployment, outcomes: list[Outcome], before: dict[str, str]) -> None:
    """Every success signed out exactly the device it named, as displaced; no session live before the
    round was displaced unless a success named it."""
    store = sessions.session_store(deployment.ctx)
    chosen = set()
    for outcome in outcomes:
        assert outcome.status in {"ok", "asked again", "login_required", "session_revoked", "service_unavailable",
                                  "invalid_token"}, outcome
        if outcome.status == "ok" and outcome.named is not None:
            assert outcome.evicted == (outcome.named["device_id"],), outcome
            ended = store.get(outcome.named["session_id"])
            assert ended is not None and ended.status != "active" and ended.revoked_reason == "displaced", ended
            chosen.add(outcome.named["session_id"])
    for session_id in before.values():
        record = store.get(session_id)
        if record is not None and record.revoked_reason == "displaced":
            assert session_id in chosen, (record.device_name, outcomes)


@settings(max_examples=12, suppress_health_check=list(HealthCheck))
@given(rounds=st.lists(st.tuples(st.sampled_from(["phone", "b", "c", "tv"]), st.sampled_from(["phone", "b", "c", "tv"]),
                                 st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=3))
def test_racing_choices_sign_out_exactly_the_named_device_and_never_pass_the_limit(deployment, rounds):
    phone, (b, c) = _account(deployment)
    devices = {"phone": phone, "b": b, "c": c}
    user_uuid = phone.require_key_file().user_uuid
    for first, second, first_pick, second_pick in rounds:
        if phone.request("GET", "/session/me").status_code != 200:
            phone.login(PASSWORD, force=True)   # the approver signs in again (not under test)
        before = {e.device_id: e.session_id for e in sessions.live_devices(deployment.ctx, user_uuid=user_uuid)}
        racers = [(first, first_pick, deployment.hosts[0]), (second, second_pick, deployment.hosts[1])]
        if first == second and first != "tv":
            racers = racers[:1]   # one device does not race itself
        jobs = [(lambda who=who, pick=pick, host=host: _approve_choosing(phone, host, deployment.app, pick)
                 if who == "tv" else _login_choosing(devices[who], host, pick)) for who, pick, host in racers]
        with PresenceWatch(deployment.ctx, user_uuid) as watch:
            outcomes = _at_once(jobs)
        assert watch.reads > 0
        assert watch.most <= LIMIT and watch.most_of_class["tv"] <= 1, (watch.most, watch.most_of_class)
        live = sessions.live_devices(deployment.ctx, user_uuid=user_uuid)
        assert len(live) <= LIMIT and sum(e.device_class == "tv" for e in live) <= 1
        _check(deployment, outcomes, before)

