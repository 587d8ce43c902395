"""The device authorization grant over HTTP (RFC 8628, SPEC §14): a screen asks, the person approves on a
signed-in device, the screen's next poll gets the tokens of a session of its own, once. The screen is a
device under the limit (SPEC §5): the approval asks, displaces, counts in its class and is listed in
Sessions, from where the person signs it out."""
from __future__ import annotations

import random

import jwt
import pytest
import requests

from citylogin.client.keys import dpop_proof, generate_key
from citylogin.client.keys import sign_challenge
from oidc.device import flow as device_flow
from tests.support.device_flow import ask, poll, screen_app
from tests.support.fixtures import problem
from tests.accounts.test_email import Recorder
from tests.support.live import PASSWORD, FakeClock, register_device

APPROVE_PURPOSE = "citylogin-device-flow:"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1", device_poll_interval=1, max_concurrent_devices=3)


def _approve(device, user_code: str, *, name: str = "Living-room TV", force: bool = False) -> requests.Response:
    return device.request("POST", "/oidc/device/approve",
                          json={"user_code": user_code, "device_name": name, "force": force})


def _asked(url: str, credentials, **options) -> dict:
    asked = ask(url, credentials, **options)
    assert asked.status_code == 200, asked.text
    return asked.json()


def _error(response: requests.Response) -> str:
    assert response.status_code == 400 and response.headers["Content-Type"].startswith("application/json"), \
        (response.status_code, response.text)
    return response.json()["error"]


def _userinfo(url: str, access_token: str) -> requests.Response:
    return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=30)


def _signed_in_phone(url: str):
    phone = register_device(url)
    phone.login(PASSWORD)
    return phone


@pytest.mark.parametrize("public", [False, True])
def test_an_approved_screen_gets_the_tokens_of_its_own_session_once(provider, public):
    url, ctx = provider
    credentials = screen_app(ctx, public=public)
    answer = _asked(url, credentials)
    assert answer["verification_uri"] == url + "/device"
    assert answer["verification_uri_complete"] == f"{url}/device?user_code={answer['user_code']}"
    assert answer["interval"] == 1 and answer["expires_in"] == 600
    code = answer["user_code"]
    assert len(code) == 9 and code[4] == "-" and set(code) - {"-"} <= set(device_flow.USER_CODE_ALPHABET)
    assert _error(poll(url, credentials, answer["device_code"])) == "authorization_pending"

    phone = _signed_in_phone(url)
    looked = requests.post(url + "/oidc/device/lookup", json={"user_code": code.lower().replace("-", " ")},
                           timeout=30)
    assert looked.status_code == 200, looked.text
    assert looked.json() == {**looked.json(), "user_code": code, "client_id": credentials.app.client_id,
                             "client_name": "Living-room TV app", "device_class": "tv",
                             "scopes": ["openid", "profile", "offline_access"]}
    approved = _approve(phone, code.replace("-", ""))
    assert approved.status_code == 200, approved.text
    assert approved.json()["evicted"] == [] and approved.json()["device_class"] == "tv"
    screen_session = approved.json()["session_id"]

    issued = poll(url, credentials, answer["device_code"])
    assert issued.status_code == 200, issued.text
    assert issued.headers["Cache-Control"] == "no-store"
    tokens = issued.json()
    assert tokens["refresh_token"] and tokens["token_type"] == "Bearer"
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["sid"] == screen_session and claims["sub"] == phone.key_file.user_uuid
    assert claims["aud"] == credentials.app.client_id and "nonce" not in claims and "hwk" in claims["amr"]
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert access["sid"] == screen_session and access["did"] == approved.json()["device_id"]
    assert access["did"] != phone.key_file.device_id
    userinfo = _userinfo(url, tokens["access_token"])
    assert userinfo.status_code == 200 and userinfo.json()["preferred_username"] == phone.key_file.username
    assert _error(poll(url, credentials, answer["device_code"])) == "invalid_grant"  # one answer per approval
    # the user code is used up with the approval
    assert problem(requests.post(url + "/oidc/device/lookup", json={"user_code": code}, timeout=30)) == \
        (400, "invalid_user_code", None)
    refreshed = requests.post(url + "/oidc/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        **({"client_id": credentials.app.client_id} if public else {})},
        auth=None if public else (credentials.app.client_id, credentials.client_secret), timeout=30)
    assert refreshed.status_code == 200, refreshed.text


def test_a_denied_code_is_access_denied_and_used_up(provider):
    url, ctx = provider
    credentials = screen_app(ctx)
    answer = _asked(url, credentials)
    denied = requests.post(url + "/oidc/device/deny", json={"user_code": answer["user_code"]}, timeout=30)
    assert denied.status_code == 200 and denied.json() == {"status": "denied"}
    assert _error(poll(url, credentials, answer["device_code"])) == "access_denied"
    phone = _signed_in_phone(url)
    assert problem(_approve(phone, answer["user_code"])) == (400, "invalid_user_code", None)
    assert problem(requests.post(url + "/oidc/device/deny", json={"user_code": answer["user_code"]},
                                 timeout=30)) == (400, "invalid_user_code", None)


def test_a_deny_takes_only_a_json_body(provider):
    """A page on another site can post text/plain (or a form) without a preflight: a deny sent so is 415
    unsupported_media_type and denies nothing; the same body as application/json denies."""
    url, ctx = provider
    credentials = screen_app(ctx)
    answer = _asked(url, credentials)
    body = '{"user_code": "%s"}' % answer["user_code"]
    for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        refused = requests.post(url + "/oidc/device/deny", data=body.encode(), headers=headers, timeout=30)
        assert problem(refused)[:2] == (415, "unsupported_media_type"), (content_type, refused.text)
    assert _error(poll(url, credentials, answer["device_code"])) == "authorization_pending"
    denied = requests.post(url + "/oidc/device/deny", data=body.encode(), timeout=30,
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert denied.status_code == 200 and denied.json() == {"status": "denied"}, denied.text


def test_slow_down_grows_the_interval_on_every_host(make_server):
    clock = FakeClock()
    hosts = []
    for _ in range(2):   # two apps over one set of tables: two hosts
        url, ctx = make_server(host_name="127.0.0.1", device_poll_interval=5)
        ctx.clock = clock
        hosts.append((url, ctx))
    (first, ctx), (second, _) = hosts
    credentials = screen_app(ctx)
    answer = _asked(first, credentials)
    assert _error(poll(first, credentials, answer["device_code"])) == "authorization_pending"
    clock.advance(1)
    slowed = poll(second, credentials, answer["device_code"])
    assert _error(slowed) == "slow_down"
    clock.advance(5.5)   # the interval it was given has passed, not the grown one (10 s)
    assert _error(poll(first, credentials, answer["device_code"])) == "slow_down"
    clock.advance(15.5)  # 15 s now: waited for
    assert _error(poll(second, credentials, answer["device_code"])) == "authorization_pending"


def test_an_expired_code_is_expired_token_and_unknown_to_the_person(provider):
    url, ctx = provider
    clock = FakeClock()
    ctx.clock = clock
    credentials = screen_app(ctx)
    answer = _asked(url, credentials)
    clock.advance(601)
    assert _error(poll(url, credentials, answer["device_code"])) == "expired_token"
    assert problem(requests.post(url + "/oidc/device/lookup", json={"user_code": answer["user_code"]},
                                 timeout=30)) == (400, "invalid_user_code", None)


def test_another_apps_made_up_and_unallowed_codes_are_refused(provider):
    url, ctx = provider
    credentials, other = screen_app(ctx), screen_app(ctx, name="Other")
    answer = _asked(url, credentials)
    assert _error(poll(url, other, answer["device_code"])) == "invalid_grant"
    assert _error(poll(url, credentials, answer["device_code"] + "x")) == "invalid_grant"
    assert _error(poll(url, credentials, "")) == "invalid_request"
    # another app's poll did not count as this app's: its own first poll is not too soon
    assert _error(poll(url, credentials, answer["device_code"])) == "authorization_pending"
    from relying_parties import service as apps
    from relying_parties.models import OidcClient
    code_app = apps.add_app(ctx, name="Web", push_url=None, oidc=OidcClient(redirect_uris=("https://a.example/cb",)))
    assert _error(ask(url, code_app)) == "unauthorized_client"
    assert _error(poll(url, code_app, answer["device_code"])) == "unauthorized_client"
    wrong = requests.post(url + "/oidc/device_authorization", data={"client_id": credentials.app.client_id},
                          timeout=30)   # a confidential app without its secret
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_over_the_limit_the_person_is_asked_and_continuing_displaces_the_oldest(make_server):
    url, ctx = make_server(host_name="127.0.0.1", device_poll_interval=1)   # the default limit: one device
    ctx.notifier.backend = recorder = Recorder()
    credentials = screen_app(ctx)
    answer = _asked(url, credentials)
    phone = _signed_in_phone(url)
    asked = _approve(phone, answer["user_code"])
    assert problem(asked)[:2] == (409, "concurrent_login")
    assert [d["device_id"] for d in asked.json()["active_devices"]] == [phone.key_file.device_id]
    assert "confirm_token" not in asked.json()
    assert _error(poll(url, credentials, answer["device_code"])) == "authorization_pending"  # nothing approved
    approved = _approve(phone, answer["user_code"], force=True)
    assert approved.status_code == 200, approved.text
    assert approved.json()["evicted"] == [{"device_id": phone.key_file.device_id,
                                           "device_name": phone.key_file.device_name}]
    gone = phone.request("GET", "/session/me")
    assert gone.status_code == 401 and gone.json()["reason"] == "displaced"
    told = [m for m in recorder.messages if m.event == "forced_logout" and m.user_uuid == phone.key_file.user_uuid]
    assert len(told) == 1 and "Living-room TV" in told[0].body and phone.key_file.device_name in told[0].body
    assert poll(url, credentials, answer["device_code"]).status_code == 200


def test_reject_keeps_the_first_device_and_force_is_ignored(make_server):
    url, ctx = make_server(host_name="127.0.0.1", concurrency_policy="reject")
    answer = _asked(url, credentials := screen_app(ctx))
    phone = _signed_in_phone(url)
    assert problem(_approve(phone, answer["user_code"], force=True))[:2] == (409, "concurrent_login_rejected")
    assert phone.request("GET", "/session/me").status_code == 200
    assert _error(poll(url, credentials, answer["device_code"])) == "authorization_pending"


def test_one_tv_at_a_time_displaces_only_the_tv(make_server):
    url, ctx = make_server(host_name="127.0.0.1", max_concurrent_devices=5, device_class_limits="tv=1")
    credentials = screen_app(ctx)
    phone = _signed_in_phone(url)
    first, second = _asked(url, credentials), _asked(url, credentials)
    assert _approve(phone, first["user_code"], name="Bedroom TV").status_code == 200
    tv = poll(url, credentials, first["device_code"]).json()
    asked = _approve(phone, second["user_code"])
    assert problem(asked)[:2] == (409, "concurrent_login")
    assert [d["device_name"] for d in asked.json()["active_devices"]] == ["Bedroom TV"]  # the TV class alone
    assert _approve(phone, second["user_code"], force=True).json()["evicted"][0]["device_name"] == "Bedroom TV"
    assert phone.request("GET", "/session/me").status_code == 200   # the phone is no TV: it stays
    refreshed = requests.post(url + "/oidc/token", data={"grant_type": "refresh_token",
                                                         "refresh_token": tv["refresh_token"]},
                              auth=(credentials.app.client_id, credentials.client_secret), timeout=30)
    assert _error(refreshed) == "invalid_grant"
    assert _userinfo(url, tv["access_token"]).status_code == 401


def test_the_screen_is_listed_in_sessions_and_signed_out_from_the_phone(provider):
    url, ctx = provider
    credentials = screen_app(ctx)
    answer = _asked(url, credentials)
    phone = _signed_in_phone(url)
    screen_session = _approve(phone, answer["user_code"], name="Living-room TV").json()["session_id"]
    tokens = poll(url, credentials, answer["device_code"]).json()
    listed = {s["session_id"]: s for s in phone.list_sessions()}
    assert listed[screen_session]["device_name"] == "Living-room TV"
    assert listed[screen_session]["device_class"] == "tv"
    assert [a["name"] for a in listed[screen_session]["apps"]] == ["Living-room TV app"]
    assert phone.request("DELETE", f"/session/{screen_session}").status_code == 204
    ended = _userinfo(url, tokens["access_token"])
    assert ended.status_code == 401
    refreshed = requests.post(url + "/oidc/token", data={"grant_type": "refresh_token",
                                                         "refresh_token": tokens["refresh_token"]},
                              auth=(credentials.app.client_id, credentials.client_secret), timeout=30)
    assert _error(refreshed) == "invalid_grant"
    introspected = requests.post(url + "/session/introspect", data={"token": tokens["access_token"]},
                                 auth=(credentials.app.client_id, credentials.client_secret), timeout=30)
    assert introspected.json() == {"active": False}


def test_a_screen_with_a_key_gets_dpop_bound_tokens(provider):
    url, ctx = provider
    credentials = screen_app(ctx, public=True)
    key = generate_key("ecdsa-p256")
    token_url = url + "/oidc/token"

    def proof(method: str, target: str, access_token: str | None = None) -> str:
        return dpop_proof(key, method=method, url=target, access_token=access_token)

    answer = _asked(url, credentials)
    phone = _signed_in_phone(url)
    assert _approve(phone, answer["user_code"]).status_code == 200
    issued = poll(url, credentials, answer["device_code"], headers={"DPoP": proof("POST", token_url)})
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    assert tokens["token_type"] == "DPoP"
    assert "jkt" in jwt.decode(tokens["access_token"], options={"verify_signature": False})["cnf"]
    assert _userinfo(url, tokens["access_token"]).status_code == 401  # not as a Bearer token
    bound = requests.get(url + "/oidc/userinfo", timeout=30, headers={
        "Authorization": f"DPoP {tokens['access_token']}",
        "DPoP": proof("GET", url + "/oidc/userinfo", tokens["access_token"])})
    assert bound.status_code == 200, bound.text
    # its refresh token counts only with a proof by the same key
    unproven = requests.post(token_url, data={"grant_type": "refresh_token", "client_id": credentials.app.client_id,
                                              "refresh_token": tokens["refresh_token"]}, timeout=30)
    assert _error(unproven) == "invalid_dpop_proof"


def test_a_screen_bound_at_its_request_polls_only_with_that_key(provider):
    url, ctx = provider
    credentials = screen_app(ctx, public=True)
    key, other = generate_key("ecdsa-p256"), generate_key("ecdsa-p256")
    answer = _asked(url, credentials, headers={"DPoP": dpop_proof(
        key, method="POST", url=url + "/oidc/device_authorization")})
    phone = _signed_in_phone(url)
    assert _approve(phone, answer["user_code"]).status_code == 200
    assert _error(poll(url, credentials, answer["device_code"])) == "invalid_dpop_proof"
    assert _error(poll(url, credentials, answer["device_code"], headers={"DPoP": dpop_proof(
        other, method="POST", url=url + "/oidc/token")})) == "invalid_grant"
    issued = poll(url, credentials, answer["device_code"], headers={"DPoP": dpop_proof(
        key, method="POST", url=url + "/oidc/token")})
    assert issued.status_code == 200 and issued.json()["token_type"] == "DPoP"


def test_single_sign_on_the_browsers_device_approves_with_its_key(provider):
    url, ctx = provider
    credentials = screen_app(ctx)
    answer = _asked(url, credentials)
    phone = _signed_in_phone(url)

    def signed_in_device(purpose: str = APPROVE_PURPOSE) -> dict:
        challenge = requests.post(url + "/login/challenge", json={}, timeout=30).json()["challenge"]
        return {"user_code": answer["user_code"], "device_name": "Kitchen TV", "challenge": challenge,
                "client_cert": phone.key_file.client_cert_b64(),
                "signature": sign_challenge(phone.key_file.private_key(), challenge, purpose=purpose)}

    sso = requests.post(url + "/oidc/device/approve/device", json=signed_in_device("citylogin-sso:"), timeout=30)
    assert sso.status_code == 401, sso.text   # another flow's signature does not stand in for this one
    approved = requests.post(url + "/oidc/device/approve/device", json=signed_in_device(), timeout=30)
    assert approved.status_code == 200, approved.text
    assert approved.json()["device_name"] == "Kitchen TV"
    assert poll(url, credentials, answer["device_code"]).status_code == 200
    phone.logout()
    again = _asked(url, credentials)
    answer = again
    nobody = requests.post(url + "/oidc/device/approve/device", json=signed_in_device(), timeout=30)
    assert problem(nobody)[:2] == (401, "login_required")


def test_codes_are_limited_per_address_and_per_code(make_server, monkeypatch):
    # behind a trusted proxy, from an address no other test uses, at the start of a minute of its own
    url, ctx = make_server(host_name="127.0.0.1", user_codes_per_minute_per_ip=4, trusted_proxies=1)
    clock = FakeClock()
    clock.advance(60 - clock.moment.timestamp() % 60)
    ctx.clock = clock
    address = f"198.{random.randint(18, 19)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    credentials = screen_app(ctx)
    answer = _asked(url, credentials)
    monkeypatch.setattr(device_flow, "USER_CODE_TRIES", 2)
    lookups = [requests.post(url + "/oidc/device/lookup", json={"user_code": code},
                             headers={"X-Forwarded-For": address}, timeout=30)
               for code in (answer["user_code"], answer["user_code"], answer["user_code"], "BBBB-BBBB", "BBBB-BBBC")]
    assert [r.status_code for r in lookups[:2]] == [200, 200]
    assert problem(lookups[2]) == (400, "invalid_user_code", None)   # the code's tries are spent
    assert problem(lookups[3]) == (400, "invalid_user_code", None)
    assert problem(lookups[4])[:2] == (429, "rate_limited") and lookups[4].headers["Retry-After"] == "60"
    clock.advance(60)   # the next minute: the address may try again, the spent code stays spent
    assert problem(requests.post(url + "/oidc/device/lookup", json={"user_code": answer["user_code"]},
                                 headers={"X-Forwarded-For": address}, timeout=30)) == (400, "invalid_user_code", None)


def test_a_lock_that_commits_while_approving_refuses_the_approval(provider):
    url, ctx = provider
    from accounts import user_service as users
    credentials = screen_app(ctx)
    answer = _asked(url, credentials)
    phone = _signed_in_phone(url)
    # the lock's flag alone, as if an operator's lock committed between the approval's read and its write
    users.user_store(ctx).set_locked(phone.key_file.user_uuid, True)
    assert problem(_approve(phone, answer["user_code"]))[:2] == (403, "account_locked")
    assert _error(poll(url, credentials, answer["device_code"])) == "authorization_pending"
    users.user_store(ctx).set_locked(phone.key_file.user_uuid, False)
    assert _approve(phone, answer["user_code"]).status_code == 200   # the code was left pending


def test_the_screen_signing_out_gives_its_tokens_back_and_frees_its_seat(make_server):
    url, ctx = make_server(host_name="127.0.0.1", concurrency_policy="reject", max_concurrent_devices=2)
    credentials = screen_app(ctx)
    answer = _asked(url, credentials)
    phone = _signed_in_phone(url)
    screen_session = _approve(phone, answer["user_code"]).json()["session_id"]
    tokens = poll(url, credentials, answer["device_code"]).json()
    auth = (credentials.app.client_id, credentials.client_secret)
    active = requests.post(url + "/session/introspect", data={"token": tokens["access_token"]}, auth=auth, timeout=30)
    assert active.json()["active"] is True and active.json()["sid"] == screen_session
    revoked = requests.post(url + "/oidc/revoke", data={"token": tokens["refresh_token"]}, auth=auth, timeout=30)
    assert revoked.status_code == 200
    assert _userinfo(url, tokens["access_token"]).status_code == 401
    assert requests.post(url + "/session/introspect", data={"token": tokens["access_token"]}, auth=auth,
                         timeout=30).json() == {"active": False}
    # the screen's session was for its app alone: it ends with it, and its seat is free at once
    listed = {s["session_id"]: s for s in phone.list_sessions(include_ended=True)}
    assert listed[screen_session]["status"] != "active" and listed[screen_session]["revoked_reason"] == "logged_out"
    second = _asked(url, credentials)   # under reject, with room for the phone and one screen
    assert _approve(phone, second["user_code"]).status_code == 200
