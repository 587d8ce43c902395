"""The apps signed in on a session (GET /session/list `apps`), and the person signing one app out of one
session (DELETE /session/<session_id>/apps/<client_id>): that app's grant ends (its refresh token is
refused at once) and the app is told by Back-Channel Logout, while the session and the other apps' grants
stay; only the caller's own sessions, only an app signed in on a live one."""
from __future__ import annotations

import jwt
import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.client.api import Client
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import signed_in_tokens
from tests.support.receiver import received, receiver
from tests.support.waiting import wait_until

REDIRECT = "https://app.example/callback"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1", ssf_push_interval=0.2)


def _app(ctx, name: str, sink: str | None = None):
    return apps.add_app(ctx, name=name, push_url=None, oidc=OidcClient(
        redirect_uris=(REDIRECT,), backchannel_logout_uri=f"{sink}/backchannel" if sink else None))


def _signed_in(url: str, credentials, device: Client) -> dict:
    return signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")


def _refresh(url: str, credentials, refresh_token: str) -> requests.Response:
    return requests.post(url + "/oidc/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                         auth=(credentials.app.client_id, credentials.client_secret), timeout=10)


def _apps_of(device: Client) -> list[tuple[str, str]]:
    current = next(s for s in device.list_sessions() if s["current"])
    return [(a["name"], a["client_id"]) for a in current["apps"]]


def _sign_out(device: Client, session_id: str, client_id: str) -> requests.Response:
    return device.request("DELETE", f"/session/{session_id}/apps/{client_id}")


@pytest.mark.slow  # a receiver process
def test_signing_one_app_out_tells_it_by_back_channel_and_keeps_the_session_and_the_other_app(provider):
    url, ctx = provider
    with receiver() as sink:
        notes, diary = _app(ctx, "Notes", sink), _app(ctx, "diary", sink)
        device = register_device(url)
        device.login(PASSWORD)
        notes_tokens, diary_tokens = _signed_in(url, notes, device), _signed_in(url, diary, device)
        assert _apps_of(device) == [("diary", diary.app.client_id), ("Notes", notes.app.client_id)]

        answer = _sign_out(device, device.session_id, notes.app.client_id)
        assert answer.status_code == 204, answer.text
        told = wait_until(lambda: received(sink)["sets"] or None, timeout=15, what="the logout token")
        claims = jwt.decode(told[0], options={"verify_signature": False})
        assert (claims["aud"], claims["sid"], claims["sub"]) == (notes.app.client_id, device.session_id,
                                                                 device.key_file.user_uuid)
        assert _refresh(url, notes, notes_tokens["refresh_token"]).json()["error"] == "invalid_grant"
        assert _refresh(url, diary, diary_tokens["refresh_token"]).status_code == 200
        assert device.me()["status"] == "active"                    # the session stays
        assert _apps_of(device) == [("diary", diary.app.client_id)]
        assert _sign_out(device, device.session_id, notes.app.client_id).json()["code"] == "app_not_found"
        assert len(received(sink)["sets"]) == 1                     # the other app heard nothing


def test_only_the_callers_own_live_sessions_and_apps_signed_in_on_them(provider):
    url, ctx = provider
    notes = _app(ctx, "Notes")
    device, stranger = register_device(url), register_device(url)
    device.login(PASSWORD)
    stranger.login(PASSWORD)
    _signed_in(url, notes, device)
    session_id = device.session_id

    theirs = _sign_out(stranger, session_id, notes.app.client_id)      # another person's session
    assert theirs.status_code == 404 and theirs.json()["code"] == "session_not_found"
    unknown = _sign_out(device, "00000000-0000-4000-8000-000000000000", notes.app.client_id)
    assert unknown.status_code == 404 and unknown.json()["code"] == "session_not_found"
    for client_id in ("cl_0000000000", "x" * 300, "a%20b"):              # not signed in here, or no app at all
        answer = _sign_out(device, session_id, client_id)
        assert answer.status_code == 404 and answer.json()["code"] == "app_not_found", client_id
    assert _apps_of(device) == [("Notes", notes.app.client_id)]        # untouched

    device.logout()                                     # an ended session: no app to sign out of it any more
    device.login(PASSWORD)
    answer = _sign_out(device, session_id, notes.app.client_id)
    assert answer.status_code == 404 and answer.json()["code"] == "app_not_found"
    # The new one has none; the ended one says what it held (matched by id: two sessions begun in the
    # same second have no order between them).
    apps = {s["session_id"]: s["apps"] for s in device.list_sessions(include_ended=True)}
    assert apps == {device.session_id: [], session_id: [{"client_id": notes.app.client_id, "name": "Notes"}]}
