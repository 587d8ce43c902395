"""The OpenID Provider on two `citylogin serve` processes over one set of tables (SPEC §14): a code
presented at both at once is redeemed once, and the replay revokes what the first use gave whichever
answer comes first; the device limit counts devices, not apps: two apps signed in on one device and a
third on another hold two seats, a third device is refused, and its forced login logs the displaced
device out of each of its apps (Back-Channel Logout, refresh, userinfo) while the other device's apps
go on."""
from __future__ import annotations

import base64
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import jwt
import pytest
import requests
from click.testing import CliRunner

from citylogin.cli import main
from citylogin.client import ConcurrentLoginRequired
from common.dynamodb_local import free_port
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.live import PASSWORD, register_device
from tests.support.notes import add_app, second_device
from tests.support.oidc import code_for
from tests.support.receiver import received, receiver
from tests.support.services import running_process
from tests.support.waiting import wait_until

REDIRECT = "https://app.example/callback"


@dataclass(frozen=True)
class Deployment:
    hosts: tuple[str, str]
    apps: dict[str, dict]        # name -> the CLI's {"client_id", "client_secret", ...}
    sink: str                    # every app's back-channel logout endpoint (one receiver process)


@pytest.fixture(scope="module")
def deployment(dynamodb_endpoint, tmp_path_factory):
    ports = free_port(), free_port()
    issuer = f"http://127.0.0.1:{ports[0]}"
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("oidc2p") + "_",
                         "data_dir": tmp_path_factory.mktemp("citylogin"), "log_level": "WARNING",
                         "max_concurrent_devices": 2, "ssf_push_interval": 0.2, **FAST_ARGON2, **RAISED_LIMITS}),
           "CITYLOGIN_PUBLIC_URL": issuer,
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    with ExitStack() as stack:
        sink = stack.enter_context(receiver())
        assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
        # The apps exist before the processes start: their pushers know them from the first listing.
        apps = {name: add_app(env, name, redirect_uris=(REDIRECT,),
                              options=("--backchannel-logout-uri", sink + "/backchannel"))
                for name in ("mail", "calendar", "drive")}
        hosts = tuple(stack.enter_context(running_process(
            [sys.executable, "-m", "citylogin.cli", "serve"], port=port, timeout=60,
            env={**env, "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(port)})) for port in ports)
        yield Deployment(hosts=hosts, apps=apps, sink=sink)


def _redeem(host: str, app: dict, code: str, verifier: str) -> requests.Response:
    return requests.post(host + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                     "redirect_uri": REDIRECT, "code_verifier": verifier},
                         auth=(app["client_id"], app["client_secret"]), timeout=20)


def _signed_in(deployment: Deployment, device, name: str, *, scope: str = "openid offline_access") -> dict:
    app = deployment.apps[name]
    code, verifier = code_for(deployment.hosts[0], app["client_id"], device, redirect_uri=REDIRECT, scope=scope)
    issued = _redeem(deployment.hosts[1], app, code, verifier)
    assert issued.status_code == 200, issued.text
    return issued.json()


def _userinfo(host: str, tokens: dict) -> int:
    return requests.get(host + "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                        timeout=10).status_code


def _refresh(host: str, app: dict, tokens: dict) -> requests.Response:
    return requests.post(host + "/oidc/token", data={"grant_type": "refresh_token",
                                                     "refresh_token": tokens["refresh_token"]},
                         auth=(app["client_id"], app["client_secret"]), timeout=10)


def test_a_code_sent_to_both_processes_at_once_is_redeemed_once_and_the_replay_revokes_it(deployment):
    app = deployment.apps["mail"]
    device = register_device(deployment.hosts[0])
    device.login(PASSWORD)
    for _ in range(6):
        code, verifier = code_for(deployment.hosts[0], app["client_id"], device, redirect_uri=REDIRECT,
                                  scope="openid offline_access")
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(_redeem, deployment.hosts, [app] * 2, [code] * 2, [verifier] * 2))
        won = [a for a in answers if a.status_code == 200]
        assert len(won) <= 1 and all(a.json().get("error") == "invalid_grant" for a in answers if a not in won)
        for tokens in (w.json() for w in won):   # whichever came first, what the code gave is revoked
            assert {_userinfo(host, tokens) for host in deployment.hosts} == {401}
            assert _refresh(deployment.hosts[1], app, tokens).json()["error"] == "invalid_grant"
    assert device.me()["session_id"]             # the device's own session goes on


def test_two_apps_on_one_device_and_a_third_on_another_hold_the_limit_and_the_eviction(deployment):
    first = register_device(deployment.hosts[0])
    first.login(PASSWORD)
    second = second_device(first)
    second.login(PASSWORD)                     # one seat each: the two apps on the first take no other
    held = {first.key_file.device_id: (first.session_id, {"mail": _signed_in(deployment, first, "mail"),
                                                           "calendar": _signed_in(deployment, first, "calendar")}),
            second.key_file.device_id: (second.session_id, {"drive": _signed_in(deployment, second, "drive")})}

    third = second_device(first)
    third.base_url = deployment.hosts[1]       # the limit of two devices holds on the other process too
    with pytest.raises(ConcurrentLoginRequired):
        third.login(PASSWORD)
    evicted = [e["device_id"] for e in third.login(PASSWORD, force=True)["evicted"]]
    assert len(evicted) == 1                   # the policy picks which one: the test follows it
    (displaced, gone), = [held.pop(device_id) for device_id in evicted]
    (_, kept), = held.values()

    # The apps of the displaced device are told, and only they; their tokens stop on both processes
    def logouts() -> dict[str, str] | None:
        sets = [jwt.decode(t, options={"verify_signature": False}) for t in received(deployment.sink)["sets"]]
        told = {s["aud"]: s["sid"] for s in sets}
        return told if len(told) >= len(gone) else None
    told = wait_until(logouts, timeout=15, what="the logout tokens of the displaced device's apps")
    assert told == {deployment.apps[name]["client_id"]: displaced for name in gone}
    for name, tokens in gone.items():
        assert {_userinfo(host, tokens) for host in deployment.hosts} == {401}
        assert _refresh(deployment.hosts[0], deployment.apps[name], tokens).json()["error"] == "invalid_grant"
    for name, tokens in kept.items():
        assert {_userinfo(host, tokens) for host in deployment.hosts} == {200}
        assert _refresh(deployment.hosts[0], deployment.apps[name], tokens).status_code == 200
