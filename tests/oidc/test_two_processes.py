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
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import jwt
import pytest
import requests
from click.testing import CliRunner

from relying_parties.registry import FRESH_SECONDS
from citylogin.cli.main import main
from citylogin.client.api import ConcurrentLoginRequired
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.live import PASSWORD, register_device
from tests.support.notes import add_app, second_device
from tests.support.oidc import authorize_url, code_for, finish_as_device, pkce_pair, query_of, waiting_request
from tests.support.ports import free_port
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
        apps["robot"] = add_app(env, "robot", options=("--admin-role", "admin"))  # adds apps by the admin API
        hosts = tuple(stack.enter_context(running_process(
            [sys.executable, "-m", "citylogin", "serve"], port=port, timeout=60,
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
        assert len(won) == 1 and all(a.json().get("error") == "invalid_grant" for a in answers if a not in won)
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
    sessions = {session_id for session_id, _ in held.values()} | {displaced}

    def logouts() -> dict[str, str] | None:  # the module's sink holds the other tests' logouts too: only ours
        sets = [jwt.decode(t, options={"verify_signature": False}) for t in received(deployment.sink)["sets"]]
        told = {s["aud"]: s["sid"] for s in sets if s["sid"] in sessions}
        return told if len(told) >= len(gone) else None
    told = wait_until(logouts, timeout=15, what="the logout tokens of the displaced device's apps")
    assert told == {deployment.apps[name]["client_id"]: displaced for name in gone}
    for name, tokens in gone.items():
        assert {_userinfo(host, tokens) for host in deployment.hosts} == {401}
        assert _refresh(deployment.hosts[0], deployment.apps[name], tokens).json()["error"] == "invalid_grant"
    for name, tokens in kept.items():
        assert {_userinfo(host, tokens) for host in deployment.hosts} == {200}
        assert _refresh(deployment.hosts[0], deployment.apps[name], tokens).status_code == 200


def _admin(host: str, robot: dict, method: str, path: str, **kwargs) -> requests.Response:
    token = requests.post(host + "/oidc/token", data={"grant_type": "client_credentials", "scope": "admin"},
                          auth=(robot["client_id"], robot["client_secret"]), timeout=10).json()["access_token"]
    return requests.request(method, host + path, headers={"Authorization": f"Bearer {token}"}, timeout=10, **kwargs)


def test_an_app_added_on_one_process_hears_its_first_logout_from_either_and_a_spa_is_answered_by_both(deployment):
    """SPEC §14: every process pushes to an app added a moment ago, and answers its SPA's origin, within a
    second (relying_parties.registry): the deadlines below are generous; a pusher that found new apps only by listing
    them every 10 s, as before, would miss them. The SPA removed, neither answers its origin a second later."""
    first, other = deployment.hosts
    with receiver() as sink:  # its own: the module's sink counts the other tests' logouts exactly
        added = _admin(first, deployment.apps["robot"], "POST", "/admin/apps", json={
            "name": "late", "redirect_uris": [REDIRECT], "backchannel_logout_uri": sink + "/backchannel"})
        assert added.status_code == 201, added.text
        late = added.json()
        device = register_device(first)
        device.login(PASSWORD)
        code, verifier = code_for(first, late["client_id"], device, redirect_uri=REDIRECT, scope="openid")
        assert _redeem(other, late, code, verifier).status_code == 200
        ended = device.session_id
        device.base_url = other
        device.logout()

        def told() -> bool:
            sets = [jwt.decode(t, options={"verify_signature": False}) for t in received(sink)["sets"]]
            return any(s["aud"] == late["client_id"] and s["sid"] == ended for s in sets)
        wait_until(told, timeout=30, what="the new app's first back-channel logout")

    spa_origin = "https://late-spa.example"
    spa = _admin(other, deployment.apps["robot"], "POST", "/admin/apps", json={
        "name": "late SPA", "public": True, "redirect_uris": [spa_origin + "/cb"]})
    assert spa.status_code == 201, spa.text
    def answered(host: str) -> bool:
        return requests.options(host + "/oidc/token", timeout=10, headers={
            "Origin": spa_origin, "Access-Control-Request-Method": "POST"}).headers.get(
            "Access-Control-Allow-Origin") == spa_origin
    for host in deployment.hosts:
        wait_until(lambda h=host: answered(h), timeout=30, what=f"CORS for the new SPA at {host}")
    # ... and removed on one, its origin stops on both within the registry copy's bound
    removed = _admin(first, deployment.apps["robot"], "DELETE", f"/admin/apps/{spa.json()['client_id']}")
    assert removed.status_code == 204
    time.sleep(FRESH_SECONDS)
    assert not any(answered(host) for host in deployment.hosts)


def test_one_refresh_token_at_both_processes_at_once_gets_one_pair_and_ends_nothing(deployment):
    """SPEC §14 with §4: within CITYLOGIN_REFRESH_REUSE_GRACE (the default 10 s), the same refresh token
    sent to both processes at once (two app hosts, a retried request) gets the same successor pair from
    each; the device's session and the other app's grant go on."""
    device = register_device(deployment.hosts[0])
    device.login(PASSWORD)
    mail, calendar = deployment.apps["mail"], deployment.apps["calendar"]
    tokens, others = _signed_in(deployment, device, "mail"), _signed_in(deployment, device, "calendar")
    for _ in range(4):
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(_refresh, deployment.hosts, [mail] * 2, [tokens] * 2))
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        pairs = {(a.json()["access_token"], a.json()["refresh_token"], a.json()["token_type"]) for a in answers}
        assert len(pairs) == 1, pairs
        tokens = answers[0].json()
        assert {_userinfo(host, tokens) for host in deployment.hosts} == {200}
    assert device.me()["session_id"]
    assert {_userinfo(host, others) for host in deployment.hosts} == {200}
    assert _refresh(deployment.hosts[1], calendar, others).status_code == 200


def test_what_is_taken_from_an_app_on_one_process_stops_on_the_other_within_the_registrys_bound(deployment):
    """Each process takes app records from its copy of the registry (relying_parties.registry, FRESH_SECONDS): a consent
    withdrawn (never cached) stops at once, and a redirect URI taken away or an app removed on one process
    stops on the other within FRESH_SECONDS of the change's answer."""
    first, other = deployment.hosts
    robot, elsewhere = deployment.apps["robot"], "https://app.example/elsewhere"
    added = _admin(other, robot, "POST", "/admin/apps", json={
        "name": "bounded", "redirect_uris": [REDIRECT, elsewhere], "consent": True})
    assert added.status_code == 201, added.text
    app = added.json()
    device = register_device(first)
    device.login(PASSWORD)
    request_id, _ = waiting_request(first, app["client_id"], redirect_uri=elsewhere, browser=device,
                                    scope="openid profile")
    assert "code=" in finish_as_device(device, request_id, consent=True)
    time.sleep(FRESH_SECONDS)  # the first process's copy holds the app by now, whatever it read before

    device.base_url = other
    assert device.request("DELETE", f"/account/consents/{app['client_id']}").status_code == 204
    device.base_url = first
    request_id, _ = waiting_request(first, app["client_id"], redirect_uri=elsewhere, browser=device,
                                    scope="openid profile")
    refused = device.request("POST", "/oidc/authorize/complete", json={"request": request_id})
    assert (refused.status_code, refused.json()["code"]) == (403, "consent_required")

    changed = _admin(other, robot, "PATCH", f"/admin/apps/{app['client_id']}", json={"redirect_uris": [REDIRECT]})
    assert changed.status_code == 200, changed.text
    time.sleep(FRESH_SECONDS)
    answer = requests.get(authorize_url(first, response_type="code", client_id=app["client_id"],
                                        redirect_uri=elsewhere, scope="openid", code_challenge=pkce_pair()[1],
                                        code_challenge_method="S256"), allow_redirects=False, timeout=10)
    assert answer.status_code == 400 and "Location" not in answer.headers

    assert _admin(other, robot, "DELETE", f"/admin/apps/{app['client_id']}").status_code == 204
    time.sleep(FRESH_SECONDS)
    credentials = requests.post(first + "/oidc/token", data={"grant_type": "refresh_token", "refresh_token": "x"},
                                auth=(app["client_id"], app["client_secret"]), timeout=10)
    assert (credentials.status_code, credentials.json()["error"]) == (401, "invalid_client")


def _consented_code(host: str, app: dict, device) -> tuple[str, str]:
    request_id, verifier = waiting_request(host, app["client_id"], redirect_uri=REDIRECT, browser=device,
                                           scope="openid offline_access")
    return query_of(finish_as_device(device, request_id, consent=True))["code"], verifier


def test_what_the_person_or_an_operator_ended_on_one_process_stays_ended_on_the_other(deployment):
    """SPEC §14: a code the first process gave before the person signed its app out of the session or
    withdrew its consent on the other, or before an operator removed the app there, gives nothing at the
    first (invalid_grant, or invalid_client once its registry copy lost the app), and makes no grant; the
    removed app's tokens are refused by both processes' userinfo and introspection within the registry's
    bound, and the Sessions tab no longer lists it."""
    first, other = deployment.hosts
    added = _admin(other, deployment.apps["robot"], "POST", "/admin/apps", json={
        "name": "ending", "redirect_uris": [REDIRECT], "consent": True})
    assert added.status_code == 201, added.text
    app = added.json()
    device = register_device(first)
    device.login(PASSWORD)
    assert _redeem(other, app, *_consented_code(first, app, device)).status_code == 200

    def ended_elsewhere(method: str, path: str) -> None:
        device.base_url = other
        assert device.request(method, path).status_code == 204
        device.base_url = first

    waiting = _consented_code(first, app, device)
    ended_elsewhere("DELETE", f"/session/{device.session_id}/apps/{app['client_id']}")
    refused = _redeem(first, app, *waiting)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant"), refused.text

    waiting = _consented_code(first, app, device)
    ended_elsewhere("DELETE", f"/account/consents/{app['client_id']}")
    refused = _redeem(first, app, *waiting)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant"), refused.text
    assert not any(a["client_id"] == app["client_id"] for s in device.list_sessions() for a in s["apps"])

    held = _redeem(other, app, *_consented_code(first, app, device)).json()
    waiting = _consented_code(first, app, device)
    assert _admin(other, deployment.apps["robot"], "DELETE", f"/admin/apps/{app['client_id']}").status_code == 204
    refused = _redeem(first, app, *waiting)
    assert (refused.status_code, refused.json()["error"]) in ((400, "invalid_grant"), (401, "invalid_client"))
    time.sleep(FRESH_SECONDS)  # every process's registry copy has lost the app by now (relying_parties.registry)
    mail = deployment.apps["mail"]
    for host in deployment.hosts:  # the removed app's tokens, refused by userinfo and introspection everywhere
        assert _userinfo(host, held) == 401
        assert requests.post(host + "/session/introspect", data={"token": held["access_token"]}, timeout=10,
                             auth=(mail["client_id"], mail["client_secret"])).json() == {"active": False}
    assert not any(a["client_id"] == app["client_id"] for s in device.list_sessions() for a in s["apps"])
