"""The guard against the real citylogin (`citylogin serve` as a subprocess): an app made with
`citylogin apps add --json`, a device logged in (its session bound to the device key: DPoP), its
session ended; the guard refuses its token within a second, having heard it from /ssf/poll. An app
behind the guard takes the client's requests with their proofs, and no proof by another key or
twice."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from typing import Iterator

import pytest
import requests

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from flask import Flask, g

from citylogin.client.keys import dpop_proof, generate_key
from citylogin_guard import Guard, GuardMiddleware
from common.crypto.dpop import key_thumbprint
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.guard.checks import DPOP_CHALLENGE, dpop_headers, refused_request
from tests.guard.conftest import CALL_TIMEOUT
from tests.support.live import PASSWORD, register_device, serving
from tests.support.services import running_service
from tests.support.waiting import wait_until


@pytest.fixture
def citylogin(dynamodb_endpoint, tmp_path):
    """(base URL, the environment its CLI needs) of a running `citylogin serve`."""
    with citylogin_serving(dynamodb_endpoint, tmp_path) as running:
        yield running


@contextmanager
def citylogin_serving(dynamodb_endpoint: str, tmp_path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("guard") + "_",
                         "log_level": "WARNING", "data_dir": str(tmp_path), **FAST_ARGON2, **RAISED_LIMITS,
                         # citylogin reads its events feed this often: a revocation reaches a long
                         # poll within it, and the rest of the second is the guard's
                         "events_poll_interval": 0.25,
                         # a guard's long poll still open at the end is held at most this long: the
                         # server's stop waits for it (30 s by default, past the stop's patience; the
                         # serial pass waited 5.3 s at each stop with 5 s, 2.6-3.4 s with 2 s)
                         "ssf_long_poll_seconds": 2}),
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    with running_service("citylogin", env, args=("serve",)) as url:
        yield url, env


def add_app(env: dict[str, str]) -> dict[str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")} | env
    done = subprocess.run([sys.executable, "-m", "citylogin", "apps", "add", "guarded-api", "--json"], env=full_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def remove_app(env: dict[str, str], client_id: str) -> None:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")} | env
    done = subprocess.run([sys.executable, "-m", "citylogin", "apps", "remove", client_id], env=full_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def unacknowledged(url: str, app: dict[str, str], guard: Guard) -> dict[str, str]:
    """The events citylogin would deliver now on the guard's own stream (a poll that acknowledges nothing)."""
    stream_id = guard._feed.stream_id
    assert stream_id, "the guard polls a stream of its own"
    answer = requests.post(f"{url}/ssf/poll/{stream_id}", json={"returnImmediately": True},
                           auth=(app["client_id"], app["client_secret"]), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["sets"]


API = "https://api.example.com/orders"


def test_the_guard_refuses_a_session_ended_in_citylogin_within_a_second(citylogin):
    url, env = citylogin
    app = add_app(env)
    with Guard(url, app["client_id"], app["client_secret"], leeway=1.0, call_timeout=CALL_TIMEOUT) as guard:
        wait_until(guard.heard, timeout=10, what="the guard hears citylogin's feed")
        time.sleep(2.1)  # tokens issued from now on (iat in whole seconds) are the feed's alone
        device = register_device(url)
        device.login(PASSWORD)
        key, token = device.require_key_file().private_key(), device.access_token
        headers = device.auth_headers("GET", API)
        principal = guard.verify(headers["Authorization"], dpop=headers["DPoP"], method="GET", url=API)
        assert principal.user_uuid == device.key_file.user_uuid and principal.device_id == device.key_file.device_id
        device.logout()
        wait_until(lambda: refused_request(guard, key, token, API) == "session_revoked", timeout=1.0,
                   what="the ended session refused by the guard")
        assert principal.session_id in guard.ended_sessions, "heard from the feed, not by introspection"
        wait_until(lambda: unacknowledged(url, app, guard) == {}, timeout=5, what="the guard acknowledged the event")

    # A guard started later may not get that event (a new stream begins 10 s back): it asks
    # citylogin about the token, issued before it listened, and refuses it all the same.
    with Guard(url, app["client_id"], app["client_secret"], leeway=1.0, call_timeout=CALL_TIMEOUT) as later:
        wait_until(later.heard, timeout=10, what="the later guard hears the feed")
        assert refused_request(later, key, token, API) == "session_revoked"


def test_every_process_of_one_app_refuses_within_a_second(citylogin):
    # An app's API server runs several processes, each with its guard: each polls a stream of its
    # own, so one's acknowledgement never keeps the event from another.
    url, env = citylogin
    app = add_app(env)
    guards = [Guard(url, app["client_id"], app["client_secret"], leeway=1.0, call_timeout=CALL_TIMEOUT)
              for _ in range(3)]
    try:
        for guard in guards:
            wait_until(guard.heard, timeout=10, what="each guard hears citylogin's feed")
        time.sleep(2.1)
        device = register_device(url)
        device.login(PASSWORD)
        key, token = device.require_key_file().private_key(), device.access_token
        assert all(refused_request(guard, key, token, API) is None for guard in guards)
        device.logout()
        for guard in guards:
            wait_until(lambda g=guard: refused_request(g, key, token, API) == "session_revoked", timeout=1.0,
                       what="every guard refuses the ended session")
        assert all(g._feed.stream_id for g in guards) and len({g._feed.stream_id for g in guards}) == 3
    finally:
        for guard in guards:
            guard.close()


def guarded_app(guard: Guard) -> Flask:
    app = Flask(__name__)
    guard.init_app(app)

    @app.get("/api/me")
    @guard.required
    def me():
        return {"user": g.citylogin.user_uuid, "jkt": g.citylogin.claims["cnf"]["jkt"]}

    return app


def test_an_app_behind_the_guard_takes_a_clients_proofs_but_not_another_keys_nor_a_replay(citylogin):
    url, env = citylogin
    app = add_app(env)
    device = register_device(url, key_kind="ed25519")
    device.login(PASSWORD)
    assert device.token_type == "DPoP"
    token, jkt = device.access_token, key_thumbprint(device.require_key_file().private_key().public_key())
    credentials = app["client_id"], app["client_secret"]
    with Guard(url, *credentials, leeway=1.0, call_timeout=CALL_TIMEOUT) as guard, \
            serving(guarded_app(guard)) as app_url:
        wait_until(guard.heard, timeout=10, what="the guard hears citylogin's feed")
        api = f"{app_url}/api/me"
        headers = device.auth_headers("GET", api)
        answer = requests.get(api, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"user": device.key_file.user_uuid, "jkt": jkt}
        # issued before the guard listened, the token was introspected: citylogin's answer names its key
        assert guard._introspection.answer(token, expires_at=time.time() + 60) == (True, jkt)
        stolen = {"Authorization": f"DPoP {token}",
                  "DPoP": dpop_proof(generate_key("ed25519"), method="GET", url=api, access_token=token)}
        for refused in (requests.get(api, headers=stolen, timeout=10), requests.get(api, headers=headers, timeout=10)):
            assert refused.status_code == 401
            assert refused.json()["code"] == "invalid_dpop_proof"
            assert refused.headers["WWW-Authenticate"] == DPOP_CHALLENGE


def asgi_app(guard: Guard) -> FastAPI:
    app = FastAPI()
    app.add_middleware(GuardMiddleware, guard=guard, protect=lambda path: path.startswith("/api/"))

    @app.get("/api/me")
    def me(request: Request) -> dict[str, str]:
        return {"user": request.state.citylogin.user_uuid}

    return app


def test_citylogin_stopped_is_a_503_with_retry_after_and_an_ended_session_it_heard_of_stays_401(dynamodb_endpoint,
                                                                                                 tmp_path):
    """An outage is not a sign-out. citylogin (a real `citylogin serve`) is stopped mid-test: the live
    device's requests get 503 with Retry-After (session_unverifiable) from Flask and ASGI apps, and the
    device logged out before the outage, whose end the guard heard from the feed, still gets 401."""
    with ExitStack() as citylogin_process:
        url, env = citylogin_process.enter_context(citylogin_serving(dynamodb_endpoint, tmp_path))
        app = add_app(env)
        ended, live = register_device(url), register_device(url)
        ended.login(PASSWORD)
        live.login(PASSWORD)
        ended_key, ended_token, ended_session = ended.require_key_file().private_key(), ended.access_token, \
            ended.session_id
        with Guard(url, app["client_id"], app["client_secret"], leeway=1.0, stale_after=1.0, retry_after=5,
                   call_timeout=CALL_TIMEOUT) as guard, \
                serving(guarded_app(guard)) as flask_url, TestClient(asgi_app(guard)) as asgi:
            wait_until(guard.heard, timeout=10, what="the guard hears citylogin's feed")
            ended.logout()
            wait_until(lambda: ended_session in guard.ended_sessions, timeout=5, what="the feed telling the logout")
            flask_api, asgi_api = f"{flask_url}/api/me", "http://testserver/api/me"
            assert requests.get(flask_api, headers=live.auth_headers("GET", flask_api), timeout=10).status_code == 200
            assert asgi.get("/api/me", headers=live.auth_headers("GET", asgi_api)).status_code == 200

            citylogin_process.close()                 # citylogin stops; the guard and the apps go on
            wait_until(lambda: not guard.heard(), timeout=10, what="the feed stale")
            for answer in (requests.get(flask_api, headers=live.auth_headers("GET", flask_api), timeout=10),
                           asgi.get("/api/me", headers=live.auth_headers("GET", asgi_api))):
                assert answer.status_code == 503, answer.text
                assert answer.headers["Retry-After"] == "5" and "WWW-Authenticate" not in answer.headers
                assert answer.json()["code"] == "session_unverifiable" and answer.json()["retry_after"] == 5
            for answer in (requests.get(flask_api, headers=dpop_headers(ended_key, ended_token, "GET", flask_api),
                                        timeout=10),
                           asgi.get("/api/me", headers=dpop_headers(ended_key, ended_token, "GET", asgi_api))):
                assert answer.status_code == 401, answer.text
                assert answer.json()["code"] == "session_revoked" and answer.json()["reason"] == "logged_out"


def test_a_removed_apps_own_guard_refuses_its_tokens_with_401_and_an_outage_with_503(dynamodb_endpoint, tmp_path):
    """`citylogin apps remove`: citylogin answers the app's poll and its introspection 401 invalid_client. It
    is up, and the app is gone: the app's own guard refuses the token it must ask about with 401
    invalid_token, as userinfo and introspection do, not 503 (whose Retry-After would have the client try
    again for ever). citylogin stopped, the same token gets 503 session_unverifiable."""
    with ExitStack() as citylogin_process:
        url, env = citylogin_process.enter_context(citylogin_serving(dynamodb_endpoint, tmp_path))
        app = add_app(env)
        device = register_device(url)
        device.login(PASSWORD)
        with Guard(url, app["client_id"], app["client_secret"], leeway=1.0, stale_after=1.0,
                   call_timeout=CALL_TIMEOUT) as guard, serving(guarded_app(guard)) as app_url:
            api = f"{app_url}/api/me"

            def answer() -> requests.Response:
                return requests.get(api, headers=device.auth_headers("GET", api), timeout=30)
            wait_until(guard.heard, timeout=10, what="the guard hears citylogin's feed")
            assert answer().status_code == 200     # the token older than the guard: citylogin was asked

            remove_app(env, app["client_id"])
            wait_until(lambda: answer().status_code == 401, timeout=30, what="the removed app's guard refusing")
            refused = answer()
            assert refused.status_code == 401, refused.text
            assert refused.json()["code"] == "invalid_token" and "credentials" in refused.json()["detail"]
            assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
            assert "Retry-After" not in refused.headers
            assert device.request("GET", "/session/me").status_code == 200, "the session goes on"

            citylogin_process.close()
            unverifiable = answer()
            assert unverifiable.status_code == 503, unverifiable.text
            assert unverifiable.json()["code"] == "session_unverifiable" and unverifiable.headers["Retry-After"] == "5"
