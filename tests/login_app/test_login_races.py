"""SPEC §5's invariant and single-use tokens under real concurrent requests (DynamoDB Local)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from citylogin.app import create_app
from citylogin.client.api import Client, sign_challenge
from tests.support.live import PASSWORD, add_device, register_device, serving

DEVICES = 20


@pytest.fixture
def server(base_config, request):
    settings = getattr(request, "param", {})
    # every login of a race waits for its hash: the default queue (8 a core) would refuse some with 503
    app = create_app({**base_config, "max_registered_devices": DEVICES + 5, "password_hash_queue": DEVICES,
                      **settings})
    with serving(app) as url:
        yield url, app.extensions["citylogin"]


def devices_of_one_user(url, ctx, count):
    first = register_device(url)
    return [first] + [add_device(ctx, first, name=f"device {i}") for i in range(1, count)]


def login_all_at_once(clients, *, force=False):
    """Each device fetches its challenge, then all POST /login/ through one barrier."""
    barrier = Barrier(len(clients))

    def login(client):
        with requests.Session() as http:
            challenge = http.post(client.base_url + "/login/challenge", timeout=30).json()["challenge"]
            body = {"username": client.key_file.username, "password": PASSWORD, "force": force,
                    "client_cert": client.key_file.client_cert_b64(), "challenge": challenge,
                    "signature": sign_challenge(client.key_file.private_key(), challenge)}
            barrier.wait()
            return http.post(client.base_url + "/login/", json=body, timeout=60)

    with ThreadPoolExecutor(len(clients)) as pool:
        return list(pool.map(login, clients))


def me_status(url, access_token, *, by: Client | None = None):
    """GET /session/me: a bearer token (the raw logins above send no DPoP proof), or a token bound to
    `by`'s key, as DPoP with a fresh proof."""
    if by is None:
        return requests.get(url + "/session/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=30)
    headers = {"Authorization": f"DPoP {access_token}",
               "DPoP": by.proof("GET", url + "/session/me", access_token=access_token)}
    return requests.get(url + "/session/me", headers=headers, timeout=30)


@pytest.mark.parametrize("server", [{"concurrency_policy": "force"}], indirect=True)
def test_twenty_devices_logging_in_at_once_under_force_leave_one_session(server):
    url, ctx = server
    responses = login_all_at_once(devices_of_one_user(url, ctx, DEVICES))
    assert [r.status_code for r in responses] == [200] * DEVICES
    statuses = [me_status(url, r.json()["access_token"]) for r in responses]
    working = [s for s in statuses if s.status_code == 200]
    assert len(working) == 1, [s.status_code for s in statuses]
    assert all(s.json()["code"] == "session_revoked" for s in statuses if s.status_code != 200)
    user_uuid = responses[0].json()["user_uuid"]
    active = [s for s in requests_session_list(url, working[0].request.headers["Authorization"])
              if s["status"] == "active"]
    assert len(active) == 1
    from sessions.service import live_devices
    assert len(live_devices(ctx, user_uuid=user_uuid)) == 1


def requests_session_list(url, authorization):
    return requests.get(url + "/session/list", headers={"Authorization": authorization}, timeout=30).json()["sessions"]


@pytest.mark.parametrize("server", [{"concurrency_policy": "reject"}], indirect=True)
def test_twenty_devices_logging_in_at_once_under_reject_admit_exactly_one(server):
    url, ctx = server
    responses = login_all_at_once(devices_of_one_user(url, ctx, DEVICES), force=True)
    outcomes = sorted((r.status_code, r.json().get("code")) for r in responses)
    assert outcomes == [(200, None)] + [(409, "concurrent_login_rejected")] * (DEVICES - 1)
    winner = next(r for r in responses if r.status_code == 200)
    assert me_status(url, winner.json()["access_token"]).status_code == 200


@pytest.mark.parametrize("server", [{"concurrency_policy": "ask"}], indirect=True)
def test_twenty_devices_under_ask_admit_one_and_ask_the_rest(server):
    url, ctx = server
    responses = login_all_at_once(devices_of_one_user(url, ctx, DEVICES))
    outcomes = sorted((r.status_code, r.json().get("code")) for r in responses)
    assert outcomes == [(200, None)] + [(409, "concurrent_login")] * (DEVICES - 1)


def test_ten_parallel_refreshes_within_the_grace_window_share_one_successor(server):
    url, _ = server
    client = register_device(url)
    client.login(PASSWORD)
    token = client.refresh_token
    barrier = Barrier(10)

    def refresh(_):
        proof = client.proof("POST", url + "/session/refresh")  # each its own: a proof is single-use
        barrier.wait()
        return requests.post(url + "/session/refresh", json={"refresh_token": token}, headers={"DPoP": proof},
                             timeout=30)

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(refresh, range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert len({(r.json()["refresh_token"], r.json()["access_token"]) for r in responses}) == 1
    successor = responses[0].json()
    assert successor["refresh_token"] != token
    assert me_status(url, successor["access_token"], by=client).status_code == 200
    again = requests.post(url + "/session/refresh", json={"refresh_token": successor["refresh_token"]},
                          headers={"DPoP": client.proof("POST", url + "/session/refresh")}, timeout=30)
    assert again.status_code == 200


def test_concurrent_challenge_redemption_is_single_use(server):
    url, _ = server
    client = register_device(url)
    challenge = requests.post(url + "/login/challenge", timeout=30).json()["challenge"]
    body = {"username": client.key_file.username, "password": PASSWORD,
            "client_cert": client.key_file.client_cert_b64(), "challenge": challenge,
            "signature": sign_challenge(client.key_file.private_key(), challenge)}
    barrier = Barrier(10)

    def login(_):
        barrier.wait()
        return requests.post(url + "/login/", json=body, timeout=30)

    with ThreadPoolExecutor(10) as pool:
        outcomes = sorted((r.status_code, r.json().get("code")) for r in pool.map(login, range(10)))
    assert outcomes == [(200, None)] + [(401, "invalid_proof")] * 9
