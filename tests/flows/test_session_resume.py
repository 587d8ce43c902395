"""One device, one session, in any tab (POST /session/resume): a new tab of a browser whose device has a
live session gets a DPoP-bound access token of that session, without a second refresh-token chain, once the
device key signed a fresh challenge under "citylogin-resume:" and the request's DPoP proof; a device with
no live session gets login_required; no other signature, challenge, key or revoked device will do, and the
session's own end (a logout, its idle timeout) ends the resumed tab's token with it."""
from __future__ import annotations

import json

import pytest
import requests

from citylogin.client.api import Client
from citylogin.client.keys import dpop_proof, generate_key, sign_challenge
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device

RESUME = "citylogin-resume:"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


def _challenge(url: str) -> str:
    return requests.post(url + "/login/challenge", json={}, timeout=10).json()["challenge"]


def _resume(url: str, device: Client, *, purpose: str = RESUME, challenge: str | None = None, key=None,
            proof: bool = True, now: float | None = None) -> requests.Response:
    """The new tab's call: the device key signs the challenge, and (by default) the DPoP proof."""
    challenge = challenge or _challenge(url)
    body = {"client_cert": device.key_file.client_cert_b64(), "challenge": challenge,
            "signature": sign_challenge(device.key_file.private_key(), challenge, purpose=purpose)}
    headers = {"DPoP": dpop_proof(key or device.key_file.private_key(), method="POST", url=url + "/session/resume",
                                  **({"now": now} if now is not None else {}))} if proof else {}
    return requests.post(url + "/session/resume", json=body, headers=headers, timeout=10)


def _tab(url: str, device: Client, answer: dict) -> Client:
    """A second tab: the same device key, the resumed access token, no refresh token."""
    tab = Client(url, key_file=device.key_file)
    tab.access_token, tab.token_type = answer["access_token"], answer["token_type"]
    tab.session_id = answer["session_id"]
    return tab


def test_a_new_tab_resumes_the_devices_live_session_with_a_bound_token_and_no_refresh_token(provider):
    url, _ = provider
    device = register_device(url)
    device.login(PASSWORD)
    answer = _resume(url, device)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "DPoP" and "refresh_token" not in body
    assert (body["session_id"], body["device_id"], body["apps"]) == (device.session_id, device.key_file.device_id, [])
    assert 0 < body["expires_in"] <= 900
    tab = _tab(url, device, body)
    assert tab.me()["session_id"] == device.session_id           # the same session, not a second one
    assert [s["session_id"] for s in device.list_sessions()] == [device.session_id]
    # Bound: without a proof by the device key the token is worth nothing
    bare = requests.get(url + "/session/me", headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=10)
    assert bare.status_code == 401 and bare.json()["code"] == "invalid_dpop_proof"
    # The original tab's refresh chain goes on untouched
    device.refresh()
    assert tab.me()["session_id"] == device.session_id
    # The session's end is the resumed tab's end, on its very next request
    device.logout()
    ended = tab.request("GET", "/session/me")
    assert ended.status_code == 401 and ended.json()["code"] == "session_revoked"


def test_the_resumed_tab_hears_the_sessions_end_on_its_event_stream(provider):
    url, _ = provider
    device = register_device(url)
    device.login(PASSWORD)
    tab = _tab(url, device, _resume(url, device).json())
    with requests.get(url + "/session/events", headers=tab.auth_headers("GET", url + "/session/events"),
                      stream=True, timeout=(10, 30)) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines(decode_unicode=True)
        assert next(lines) == "retry: 3000"
        device.logout()
        data = next(line for line in lines if line.startswith("data:"))
    assert json.loads(data.removeprefix("data:"))["reason"] == "logged_out"


def test_a_device_without_a_live_session_is_asked_to_log_in(provider):
    url, _ = provider
    never = register_device(url)                                  # registered, never logged in
    answer = _resume(url, never)
    assert answer.status_code == 401 and answer.json()["code"] == "login_required"
    device = register_device(url)
    device.login(PASSWORD)
    device.logout()
    assert _resume(url, device).json()["code"] == "login_required"


def test_only_a_fresh_resume_signature_and_a_proof_by_the_certified_key_will_do(provider):
    url, _ = provider
    device, other = register_device(url), register_device(url)
    device.login(PASSWORD)
    for purpose in ("citylogin-login:", "citylogin-sso:", "citylogin-renew:", "citylogin-sign-out:"):
        answer = _resume(url, device, purpose=purpose)
        assert answer.status_code == 401 and answer.json()["code"] == "invalid_proof", purpose
    assert _resume(url, device, challenge="made-up-challenge").json()["code"] == "invalid_proof"
    challenge = _challenge(url)
    assert _resume(url, device, challenge=challenge).status_code == 200
    replayed = _resume(url, device, challenge=challenge)
    assert replayed.status_code == 401 and replayed.json()["code"] == "invalid_proof"
    # The DPoP proof: required, and by the device's own key
    assert _resume(url, device, proof=False).json()["code"] == "invalid_dpop_proof"
    assert _resume(url, device, key=generate_key()).json()["code"] == "invalid_dpop_proof"
    assert _resume(url, device, key=other.key_file.private_key()).json()["code"] == "invalid_dpop_proof"
    # Another device's key over this device's certificate
    forged = {"client_cert": device.key_file.client_cert_b64(), "challenge": (c := _challenge(url)),
              "signature": sign_challenge(other.key_file.private_key(), c, purpose=RESUME)}
    answer = requests.post(url + "/session/resume", json=forged, timeout=10, headers={
        "DPoP": dpop_proof(device.key_file.private_key(), method="POST", url=url + "/session/resume")})
    assert answer.json()["code"] == "invalid_proof"
    for bad in ({"client_cert": "bm90IGEgY2VydA=="}, {"signature": "***"}, {"challenge": ""}, {"client_cert": 5}):
        body = {"client_cert": device.key_file.client_cert_b64(), "challenge": (c := _challenge(url)),
                "signature": sign_challenge(device.key_file.private_key(), c, purpose=RESUME), **bad}
        answer = requests.post(url + "/session/resume", json=body, timeout=10, headers={
            "DPoP": dpop_proof(device.key_file.private_key(), method="POST", url=url + "/session/resume")})
        assert 400 <= answer.status_code < 500 and answer.json()["code"], (bad, answer.text)


def test_a_revoked_device_resumes_nothing(provider):
    url, ctx = provider
    from tests.support.live import add_device
    device = register_device(url)
    device.login(PASSWORD)
    second = add_device(ctx, device, name="Phone")
    second.login(PASSWORD, force=True)                              # the account allows one device at a time
    device.login(PASSWORD, force=True)
    device.unbind_device(second.key_file.device_id)
    answer = _resume(url, second)
    assert answer.status_code == 403 and answer.json()["code"] == "device_revoked"


def test_the_sessions_idle_timeout_ends_what_a_tab_may_resume(make_server):
    url, ctx = make_server(host_name="127.0.0.1", session_idle_timeout=600)
    clock = FakeClock()
    ctx.clock = clock
    device = register_device(url)
    on_clock(clock, device)
    device.login(PASSWORD)
    tab = _tab(url, device, _resume(url, device, now=clock().timestamp()).json())
    on_clock(clock, tab)
    clock.advance(600 + 120)                                       # idle past the timeout (and its touch slack)
    assert _resume(url, device, now=clock().timestamp()).json()["code"] == "login_required"
    ended = tab.request("GET", "/session/me")
    assert ended.status_code == 401 and ended.json()["code"] == "session_revoked"


def test_a_lent_token_never_outlives_the_sessions_max_lifetime(make_server):
    url, ctx = make_server(host_name="127.0.0.1", session_max_lifetime=1200, session_idle_timeout=1800)
    clock = FakeClock()
    ctx.clock = clock
    device = register_device(url)
    on_clock(clock, device)
    device.login(PASSWORD)
    clock.advance(1000)
    device.refresh()                                               # used: not idle, 200 s of life left
    assert _resume(url, device, now=clock().timestamp()).json()["expires_in"] <= 200
    clock.advance(201)
    assert _resume(url, device, now=clock().timestamp()).json()["code"] == "login_required"
