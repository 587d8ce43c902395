"""Tokens bound to their device key (SPEC §12, RFC 9449), attacked: a token and refresh token copied
to another process with another key, proofs replayed on the same and on another host, for another
URL or method, too old, by another key, with a wrong ath or a stale nonce. Every refusal is 401
invalid_dpop_proof (or use_dpop_nonce) with `WWW-Authenticate: DPoP`, and no proof counts twice."""
from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from citylogin.client.api import Client
from citylogin.client.keys import dpop_proof, generate_key
from common.crypto import dpop
from tests.conftest import config_env
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, add_device, bearer_login, register_device
from tests.support.services import running_service

PUBLIC = "https://login.example"  # both hosts' CITYLOGIN_PUBLIC_URL: a proof names this origin


def dpop_problem(response: requests.Response) -> tuple[int, str, str | None]:
    """(status, code, reason) of a DPoP refusal, which carries the DPoP challenge."""
    status, code, reason = problem(response)
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("DPoP ") and f'error="{code}"' in challenge, dict(response.headers)
    assert 'algs="ES256 EdDSA ML-DSA-87"' in challenge
    return status, code, reason


@pytest.fixture
def host_a(make_server):
    return make_server(public_url=PUBLIC)


@pytest.fixture
def bound(host_a):
    """(url, ctx, client): a device logged in with a proof, so its session is bound to its key."""
    url, ctx = host_a
    client = register_device(url)
    client.login(PASSWORD)
    assert client.token_type == "DPoP"
    return url, ctx, client


def headers_for(client: Client, method: str, path: str, *, key=None, url: str = PUBLIC, **claims) -> dict:
    """Authorization: DPoP and a proof over `url` + `path` by `key` (the client's own by default)."""
    proof = dpop_proof(key or client.require_key_file().private_key(), method=method, url=url + path,
                       access_token=claims.pop("access_token", client.access_token), **claims)
    return {"Authorization": f"DPoP {client.access_token}", "DPoP": proof}


# --- binding -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519", "ml-dsa-87"])
def test_each_device_key_kind_binds_its_session_to_its_own_key(host_a, kind):
    url, _ = host_a
    client = register_device(url, key_kind=kind)
    answer = client.login(PASSWORD)
    assert answer["token_type"] == "DPoP"
    claims = _claims(client.access_token)
    public = client.require_key_file().private_key().public_key()
    assert claims["cnf"] == {"jkt": dpop.key_thumbprint(public)}
    assert client.me()["session_id"] == client.session_id
    client.refresh()
    assert client.token_type == "DPoP" and _claims(client.access_token)["cnf"] == claims["cnf"]
    assert client.me()["session_id"] == client.session_id


def _claims(token: str) -> dict:
    import json
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_a_login_proof_by_another_key_than_the_certified_one_is_refused(host_a):
    url, _ = host_a
    client = register_device(url)
    key_file = client.require_key_file()
    challenge = requests.post(url + "/login/challenge", timeout=10).json()["challenge"]
    from citylogin.client.api import sign_challenge
    body = {"username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge)}
    stranger = dpop_proof(generate_key(), method="POST", url=url + "/login/")
    response = requests.post(url + "/login/", json=body, headers={"DPoP": stranger}, timeout=10)
    assert dpop_problem(response)[:2] == (401, "invalid_dpop_proof")
    assert "certifies" in response.json()["reason"]


def test_dpop_required_refuses_a_login_without_a_proof_and_a_bearer_sessions_refresh(make_server):
    url, _ = make_server()
    client = register_device(url)
    bearer_login(client)  # a session opened before the switch
    required_url, _ = make_server(dpop="required")
    other = register_device(required_url)
    key_file = other.require_key_file()
    challenge = requests.post(required_url + "/login/challenge", timeout=10).json()["challenge"]
    from citylogin.client.api import sign_challenge
    body = {"username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge)}
    assert problem(requests.post(required_url + "/login/", json=body, timeout=10))[:2] == (400, "dpop_required")
    refresh = requests.post(required_url + "/session/refresh", json={"refresh_token": client.refresh_token},
                            timeout=10)
    assert problem(refresh)[:2] == (400, "dpop_required")
    other.login(PASSWORD)  # the client binds: required lets it in
    assert other.token_type == "DPoP" and other.me()["session_id"] == other.session_id


def test_a_bound_logins_confirmation_needs_a_proof_by_the_same_key(host_a):
    url, ctx = host_a
    first = register_device(url)
    first.login(PASSWORD)
    second = add_device(ctx, first)
    from citylogin.client.api import ConcurrentLoginRequired
    with pytest.raises(ConcurrentLoginRequired) as asked:
        second.login(PASSWORD)
    token = asked.value.confirm_token
    copied = requests.post(url + "/login/confirm", json={"confirm_token": token}, timeout=10)
    assert dpop_problem(copied)[:2] == (401, "invalid_dpop_proof")
    # The refusal used the token up (it is single-use whatever the outcome): the device logs in again.
    with pytest.raises(ConcurrentLoginRequired) as again:
        second.login(PASSWORD)
    second.confirm(again.value.confirm_token)
    assert second.token_type == "DPoP" and second.me()["device_id"] == second.key_file.device_id


# --- a copied token and refresh token ---------------------------------------------------------------

PROTECTED = [("GET", "/session/me"), ("GET", "/session/list"), ("GET", "/session/history"),
             ("GET", "/device/list"), ("GET", "/account"), ("POST", "/session/logout")]


def test_a_copied_token_and_refresh_token_are_worthless_with_another_key(bound):
    url, _, client = bound
    thief = generate_key()  # the other process's own key: it never had the device's
    for method, path in PROTECTED:
        as_bearer = requests.request(method, url + path, headers={"Authorization": f"Bearer {client.access_token}"},
                                     timeout=10)
        assert dpop_problem(as_bearer)[:2] == (401, "invalid_dpop_proof"), path
        forged = requests.request(method, url + path, headers=headers_for(client, method, path, key=thief),
                                  timeout=10)
        assert dpop_problem(forged)[:2] == (401, "invalid_dpop_proof"), path
    query = requests.get(url + "/session/events", params={"access_token": client.access_token}, timeout=10)
    assert dpop_problem(query)[:2] == (401, "invalid_dpop_proof")
    check = requests.get(url + "/session/check", headers={
        **headers_for(client, "GET", "/api/notes", key=thief, url="https://app.example"),
        "X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example",
        "X-Forwarded-Uri": "/api/notes?page=2"}, timeout=10)
    assert dpop_problem(check)[:2] == (401, "invalid_dpop_proof")
    for proof in (None, dpop_proof(thief, method="POST", url=PUBLIC + "/session/refresh")):
        refresh = requests.post(url + "/session/refresh", json={"refresh_token": client.refresh_token},
                                headers={"DPoP": proof} if proof else {}, timeout=10)
        assert dpop_problem(refresh)[:2] == (401, "invalid_dpop_proof")
    # The device itself is untouched by all of it.
    assert client.me()["session_id"] == client.session_id
    client.refresh()
    assert client.me()["session_id"] == client.session_id


def test_check_takes_the_proof_over_the_request_the_proxy_names(bound):
    url, _, client = bound
    forwarded = {"X-Forwarded-Method": "DELETE", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example",
                 "X-Forwarded-Uri": "/api/notes/7?confirm=1"}
    good = headers_for(client, "DELETE", "/api/notes/7", url="https://app.example")
    response = requests.get(url + "/session/check", headers={**good, **forwarded}, timeout=10)
    assert response.status_code == 204 and response.headers["X-Citylogin-Session"] == client.session_id
    for wrong in (headers_for(client, "GET", "/api/notes/7", url="https://app.example"),  # another method
                  headers_for(client, "DELETE", "/api/notes/8", url="https://app.example")):  # another URL
        assert dpop_problem(requests.get(url + "/session/check", headers={**wrong, **forwarded},
                                         timeout=10))[:2] == (401, "invalid_dpop_proof")


def test_a_refused_check_leaves_its_proof_unspent_so_the_second_ask_gets_the_same_answer(bound):
    # nginx asks again on 401/403 for the body: the second answer must be the first one, not "used already".
    url, _, client = bound
    ended = Client(url, key_file=client.key_file)
    ended.access_token, ended.refresh_token, ended.token_type = client.access_token, client.refresh_token, "DPoP"
    client.logout()
    forwarded = {"X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example",
                 "X-Forwarded-Uri": "/api/notes"}
    headers = {**headers_for(ended, "GET", "/api/notes", url="https://app.example"), **forwarded}
    for _ in range(2):
        answer = requests.get(url + "/session/check", headers=headers, timeout=10)
        assert problem(answer)[:2] == (401, "session_revoked")


def test_introspection_tells_the_app_the_key_a_bound_token_needs(bound):
    from relying_parties import service as apps
    url, ctx, client = bound
    added = apps.add_app(ctx, name="notes", push_url=None)
    answer = requests.post(url + "/session/introspect", data={"token": client.access_token},
                           auth=(added.app.client_id, added.client_secret), timeout=10).json()
    assert answer["active"] is True and answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": dpop.key_thumbprint(client.require_key_file().private_key().public_key())}
    thief = dpop.key_thumbprint(generate_key().public_key())
    assert answer["cnf"]["jkt"] != thief  # what the app's own proof check compares (tests/guard does it)


# --- replays and wrong proofs -------------------------------------------------------------------------

def test_every_wrong_proof_is_refused_with_its_reason(bound):
    url, ctx, client = bound
    key = client.require_key_file().private_key()
    now = time.time()
    cases = {
        "another URL": headers_for(client, "GET", "/session/list"),
        "another method": headers_for(client, "POST", "/session/me"),
        "another origin": headers_for(client, "GET", "/session/me", url="https://evil.example"),
        "another key": headers_for(client, "GET", "/session/me", key=generate_key("ed25519")),
        "wrong ath": headers_for(client, "GET", "/session/me", access_token=client.access_token + "x"),
        "no ath": {"Authorization": f"DPoP {client.access_token}",
                   "DPoP": dpop_proof(key, method="GET", url=PUBLIC + "/session/me")},
        "no proof": {"Authorization": f"DPoP {client.access_token}"},
        "not a JWT": {"Authorization": f"DPoP {client.access_token}", "DPoP": "not.a.proof"},
        "tampered": _tampered(headers_for(client, "GET", "/session/me")),
    }
    for name, headers in cases.items():
        response = requests.get(url + "/session/me", headers=headers, timeout=10)
        assert dpop_problem(response)[:2] == (401, "invalid_dpop_proof"), name
    # Not fresh: a stale nonce, or an iat off the server's clock without a nonce. Either way the
    # answer hands out the current nonce, and a proof over it is fresh whatever its iat says.
    for name, headers in {"stale nonce": headers_for(client, "GET", "/session/me", nonce=f"{int(now) // 30 - 5}.x.y"),
                          "too old": headers_for(client, "GET", "/session/me", now=now - 65),
                          "from the future": headers_for(client, "GET", "/session/me", now=now + 65)}.items():
        response = requests.get(url + "/session/me", headers=headers, timeout=10)
        assert dpop_problem(response)[:2] == (401, "use_dpop_nonce"), name
        fresh = response.headers["DPoP-Nonce"]
        again = requests.get(url + "/session/me", timeout=10,
                             headers=headers_for(client, "GET", "/session/me", nonce=fresh, now=now - 3600))
        assert again.status_code == 200 and again.headers["DPoP-Nonce"], name


def test_a_device_whose_clock_is_an_hour_off_stays_logged_in_by_the_servers_nonce(host_a, monkeypatch):
    # The client answers use_dpop_nonce by itself: its proofs then carry the server's nonce.
    import types

    import citylogin.client.keys as client_keys
    url, _ = host_a
    client = register_device(url)
    monkeypatch.setattr(client_keys, "time", types.SimpleNamespace(time=lambda: time.time() - 3600))
    client.login(PASSWORD)
    assert client.me()["session_id"] == client.session_id
    client.refresh()
    assert client.me()["session_id"] == client.session_id and client.dpop_nonce


def _tampered(headers: dict) -> dict:
    header, claims, signature = headers["DPoP"].split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[5] ^= 1
    return {**headers, "DPoP": f"{header}.{claims}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"}


def test_a_proof_counts_once_on_this_host_and_on_another(bound, base_config):
    url, _, client = bound
    other = {**base_config, "public_url": PUBLIC}
    with running_service("session_manager.app_session_manager", config_env(other)) as url_b:
        headers = headers_for(client, "GET", "/session/me")
        assert requests.get(url + "/session/me", headers=headers, timeout=10).status_code == 200
        for target in (url, url_b):
            replay = requests.get(target + "/session/me", headers=headers, timeout=10)
            assert dpop_problem(replay) == (401, "invalid_dpop_proof", "this proof was used already"), target
        fresh = headers_for(client, "GET", "/session/me")
        assert requests.get(url_b + "/session/me", headers=fresh, timeout=10).status_code == 200
        refresh_proof = {"DPoP": dpop_proof(client.require_key_file().private_key(), method="POST",
                                            url=PUBLIC + "/session/refresh")}
        first = requests.post(url_b + "/session/refresh", json={"refresh_token": client.refresh_token},
                              headers=refresh_proof, timeout=10)
        assert first.status_code == 200 and first.json()["token_type"] == "DPoP"
        replay = requests.post(url + "/session/refresh", json={"refresh_token": client.refresh_token},
                               headers=refresh_proof, timeout=10)
        assert dpop_problem(replay)[:2] == (401, "invalid_dpop_proof")


def test_one_proof_sent_at_once_to_two_processes_is_accepted_exactly_once(bound, base_config):
    url, _, client = bound
    other = {**base_config, "public_url": PUBLIC}
    with running_service("session_manager.app_session_manager", config_env(other)) as url_b:
        for _ in range(5):
            headers, barrier = headers_for(client, "GET", "/session/me"), threading.Barrier(8)
            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(lambda i, h=headers, b=barrier: _racing_get((url, url_b)[i % 2], h, b),
                                         range(8)))
            assert sorted(statuses) == [200] + [401] * 7, statuses


def _racing_get(url: str, headers: dict, barrier: threading.Barrier) -> int:
    barrier.wait()
    return requests.get(url + "/session/me", headers=headers, timeout=30).status_code


def test_a_renewal_on_a_new_key_moves_the_bound_session_to_it(bound):
    url, _, client = bound
    old_key = client.require_key_file().private_key()
    old_token = client.access_token
    client.renew()  # a new key; the client refreshes with a proof by it
    new_key = client.require_key_file().private_key()
    assert _claims(client.access_token)["cnf"] == {"jkt": dpop.key_thumbprint(new_key.public_key())}
    assert client.me()["session_id"] == client.session_id
    # The old key (the reason to renew onto a new one may be that it leaked) counts no more.
    old = {"Authorization": f"DPoP {old_token}",
           "DPoP": dpop_proof(old_key, method="GET", url=PUBLIC + "/session/me", access_token=old_token)}
    refused = requests.get(url + "/session/me", headers=old, timeout=10)
    assert dpop_problem(refused)[:2] == (401, "invalid_dpop_proof")
    stale_refresh = requests.post(url + "/session/refresh", json={"refresh_token": client.refresh_token},
                                  headers={"DPoP": dpop_proof(old_key, method="POST", url=PUBLIC + "/session/refresh")},
                                  timeout=10)
    assert dpop_problem(stale_refresh)[:2] == (401, "invalid_dpop_proof")
