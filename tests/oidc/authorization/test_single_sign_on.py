"""Single sign-on for apps (SPEC §14): a device with a live citylogin session finishes an app's request
by signing a fresh challenge ("citylogin-sso:" + challenge), without a password and without a second
session; a device without one gets login_required; no other signature, challenge or certificate does."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.client.api import Client
from citylogin.client.keys import sign_challenge
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import Browser, http_of, query_of, waiting_request

REDIRECT = "https://app.example/callback"
SSO = "citylogin-sso:"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


@pytest.fixture
def app(provider):
    _, ctx = provider
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))


def _request(url: str, client_id: str, browser: Browser, **extra: str) -> str:
    return waiting_request(url, client_id, redirect_uri=REDIRECT, browser=browser, state="st", **extra)[0]


def _challenge(url: str) -> str:
    return requests.post(url + "/login/challenge", json={}, timeout=10).json()["challenge"]


def _signed(url: str, device: Client, request_id: str, *, purpose: str = SSO, challenge: str | None = None,
            **extra) -> dict:
    challenge = challenge or _challenge(url)
    return {"request": request_id, "client_cert": device.key_file.client_cert_b64(), "challenge": challenge,
            "signature": sign_challenge(device.key_file.private_key(), challenge, purpose=purpose), **extra}


def _sso(browser: Browser, url: str, body: dict) -> requests.Response:
    """The sign-in page's call, from the browser that started the request (its cookie goes along)."""
    return http_of(browser).post(url + "/oidc/authorize/device", json=body, timeout=10)


def test_a_device_with_a_live_session_signs_in_to_the_app_without_a_password_or_a_new_session(provider, app):
    url, _ = provider
    device = register_device(url)
    device.login(PASSWORD)
    session = device.me()["session_id"]
    answer = _sso(device, url, _signed(url, device, _request(url, app.app.client_id, device)))
    assert answer.status_code == 200, answer.text
    assert set(query_of(answer.json()["redirect_to"])) == {"code", "state", "iss"}
    assert device.me()["session_id"] == session           # the same session serves the app
    assert [s["session_id"] for s in device.list_sessions()] == [session]


def test_a_device_without_a_live_session_is_asked_to_sign_in(provider, app):
    url, _ = provider
    device = register_device(url)
    device.login(PASSWORD)
    device.logout()
    request_id = _request(url, app.app.client_id, device)
    answer = _sso(device, url, _signed(url, device, request_id))
    assert answer.status_code == 401 and answer.json()["code"] == "login_required"
    never = register_device(url)                           # registered, never logged in
    assert _sso(device, url, _signed(url, never, request_id)).json()["code"] == "login_required"
    device.login(PASSWORD)                                 # the request still waits for the sign-in
    assert _sso(device, url, _signed(url, device, request_id)).status_code == 200


def test_only_a_fresh_sso_signature_by_the_certified_key_will_do(provider, app):
    url, _ = provider
    device, other = register_device(url), register_device(url)
    device.login(PASSWORD)
    request_id = _request(url, app.app.client_id, device)

    login_signature = _sso(device, url, _signed(url, device, request_id, purpose="citylogin-login:"))
    assert login_signature.status_code == 401 and login_signature.json()["code"] == "invalid_proof"
    made_up = _sso(device, url, _signed(url, device, request_id, challenge="made-up-challenge"))
    assert made_up.json()["code"] == "invalid_proof"
    # Another device's key over this device's certificate
    forged = _signed(url, other, request_id)
    forged["client_cert"] = device.key_file.client_cert_b64()
    assert _sso(device, url, forged).json()["code"] == "invalid_proof"
    # A challenge signed and used once, then replayed
    body = _signed(url, device, request_id)
    assert _sso(device, url, body).status_code == 200
    replay = _sso(device, url, {**body, "request": _request(url, app.app.client_id, device)})
    assert replay.status_code == 401 and replay.json()["code"] == "invalid_proof"

    for bad in ({"client_cert": "bm90IGEgY2VydA=="}, {"signature": "***"}, {"challenge": ""}, {"consent": "yes"}):
        answer = _sso(device, url, {**_signed(url, device, _request(url, app.app.client_id, device)), **bad})
        assert 400 <= answer.status_code < 500 and answer.json()["code"], (bad, answer.text)


def test_one_challenge_finishes_at_most_one_of_parallel_requests(provider, app):
    url, _ = provider
    device = register_device(url)
    device.login(PASSWORD)
    challenge = _challenge(url)
    bodies = [_signed(url, device, _request(url, app.app.client_id, device), challenge=challenge) for _ in range(6)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda body: _sso(device, url, body), bodies))
    assert sorted(a.status_code for a in answers) == [200] + [401] * 5


def test_the_apps_consent_is_asked_as_on_any_sign_in(provider):
    url, ctx = provider
    diary = apps.add_app(ctx, name="Diary", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), consent=True))
    device = register_device(url)
    device.login(PASSWORD)
    request_id = _request(url, diary.app.client_id, device)
    asked = _sso(device, url, _signed(url, device, request_id))
    assert asked.status_code == 403 and asked.json()["code"] == "consent_required"
    assert _sso(device, url, _signed(url, device, request_id, consent=True)).status_code == 200
