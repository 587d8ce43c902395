"""Back-Channel Logout (SPEC §14): when a session ends — a logout, a displacement by another device —
every app that holds tokens of it and registered a back-channel logout URI is POSTed a logout token,
from the same outbox and pusher as the CAEP events; an app that holds none of that session's tokens
hears nothing. The receiver is an app of its own process."""
from __future__ import annotations

import time

import jwt
import pytest
import requests

from relying_parties import push
from relying_parties import service as apps
from relying_parties.models import OidcClient
from oidc.logout.backchannel import BACKCHANNEL_LOGOUT_EVENT
from tests.support.live import PASSWORD, register_device
from tests.support.notes import second_device
from tests.support.oidc import signed_in_tokens
from tests.support.receiver import received, receiver
from tests.support.waiting import wait_until

REDIRECT = "https://app.example/callback"


@pytest.fixture
def sink():
    with receiver() as url:
        yield url


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1", ssf_push_interval=0.2)


def _app(ctx, sink: str, alg: str = "RS256"):
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(
        redirect_uris=(REDIRECT,), backchannel_logout_uri=sink + "/backchannel", id_token_alg=alg))


def _sign_in(url: str, credentials, device) -> dict:
    return signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT)


def _verified(url: str, token: str, client_id: str, alg: str) -> dict:
    assert jwt.get_unverified_header(token)["typ"] == "logout+jwt"
    key = jwt.PyJWKClient(url + "/.well-known/jwks.json").get_signing_key_from_jwt(token).key
    return jwt.decode(token, key, algorithms=[alg], audience=client_id, issuer=url)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_logout_tells_the_app_that_holds_tokens_of_the_session_and_no_other(provider, sink, alg):
    url, ctx = provider
    notes, diary = _app(ctx, sink, alg), _app(ctx, sink)
    nobodys, notes_user, diary_user = register_device(url), register_device(url), register_device(url)
    for device in (nobodys, notes_user, diary_user):
        device.login(PASSWORD)
    _sign_in(url, notes, notes_user)
    _sign_in(url, diary, diary_user)
    ended = {}
    # In this order: each app hears of the feed's events in order, so once each app was told of its
    # own session's end, it has passed the ends before it; had it been told of a session it holds no
    # tokens of, that token would be in the receiver before its own.
    for device in (nobodys, notes_user, diary_user):
        ended[device.key_file.user_uuid] = device.session_id
        device.logout()

    def heard() -> list[dict] | None:
        tokens = [jwt.decode(t, options={"verify_signature": False}) for t in received(sink)["sets"]]
        return tokens if {notes.app.client_id, diary.app.client_id} <= {t["aud"] for t in tokens} else None

    tokens = wait_until(heard, timeout=15, what="both apps' logout tokens")
    assert {(t["aud"], t["sid"]) for t in tokens} == {(notes.app.client_id, ended[notes_user.key_file.user_uuid]),
                                                      (diary.app.client_id, ended[diary_user.key_file.user_uuid])}
    notes_token = next(t for t in received(sink)["sets"] if jwt.decode(
        t, options={"verify_signature": False})["aud"] == notes.app.client_id)
    claims = _verified(url, notes_token, notes.app.client_id, alg)
    assert claims["sub"] == notes_user.key_file.user_uuid and claims["iss"] == url
    assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}} and "nonce" not in claims
    assert claims["exp"] - claims["iat"] == 120 and claims["jti"]


def test_a_displaced_device_is_logged_out_of_the_app_by_back_channel(provider, sink):
    url, ctx = provider
    credentials = _app(ctx, sink)
    device = register_device(url)
    device.login(PASSWORD)
    tokens = _sign_in(url, credentials, device)
    displaced = device.session_id
    other = second_device(device)
    other.login(PASSWORD, force=True)          # the account allows one device at a time
    logout = wait_until(lambda: received(sink)["sets"] or None, timeout=15, what="the logout token")
    assert _verified(url, logout[0], credentials.app.client_id, "RS256")["sid"] == displaced
    userinfo = requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                            timeout=10)
    assert userinfo.status_code == 401



def test_the_logout_token_arrives_within_a_second_of_the_displacing_login(make_server, sink):
    """SPEC §14's bound, with the default feed and push intervals: from the answer of the login that
    displaced the device to the app's receipt of the logout token."""
    url, ctx = make_server(host_name="127.0.0.1", ssf_push_interval=1.0)  # the default (tests turn it off)
    credentials = _app(ctx, sink)
    device = register_device(url)
    device.login(PASSWORD)
    _sign_in(url, credentials, device)
    wait_until(lambda: holds_the_lease(ctx, credentials.app.client_id) or None, timeout=20,
               what="the pusher listing the new app")
    other = second_device(device)
    other.login(PASSWORD, force=True)
    answered = time.time()
    arrived = wait_until(lambda: received(sink)["at"] or None, timeout=10, what="the logout token")[0]
    assert arrived - answered <= 1.0, f"the logout token took {arrived - answered:.3f} s"


def holds_the_lease(ctx, client_id: str) -> bool:
    pusher = push.running_pusher(ctx, "backchannel-logout")
    target = pusher and pusher._targets.get(client_id)
    return bool(target and target.lease_until)
