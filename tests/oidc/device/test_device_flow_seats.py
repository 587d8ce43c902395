"""A screen's seat never outlives its app nor its code, and a screen signed in is a sign-in the person hears
of (RFC 8628, SPEC §5, §7, §14): removing an app ends its screens' sessions (reason app_removed); an approval
never redeemed ends when its code expires (reason approval_expired), while one redeemed in time lasts; each
approval sends the "new sign-in" mail, naming the screen and the app, with its "Wasn't you?" link, in the
account's language. With a limit of one device, the person's next login is never refused for a stale seat."""
from __future__ import annotations

import re

import pytest
import requests

from accounts import service as accounts
from citylogin.client.errors import ConcurrentLoginRequired
from relying_parties import service as apps
from sessions import service as sessions
from tests.accounts.test_email import Recorder
from tests.support.device_flow import ask, poll, screen_app
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device

TV = "Living-room TV"
NOT_ME_LINK = re.compile(r"/#not-me=([A-Za-z0-9_-]+)")


def _server(make_server, **settings):
    """A server on a clock the test moves, its mails recorded, and an app for screens."""
    url, ctx = make_server(host_name="127.0.0.1", device_poll_interval=1, **settings)
    ctx.clock = FakeClock()
    ctx.notifier.backend = Recorder()
    return url, ctx, screen_app(ctx)


@pytest.fixture
def one_seat(make_server):
    """The default limit: one device."""
    return _server(make_server)


@pytest.fixture
def two_seats(make_server):
    return _server(make_server, max_concurrent_devices=2)


def _phone(url: str, ctx):
    phone = register_device(url)
    on_clock(ctx.clock, phone)
    phone.login(PASSWORD)
    return phone


def _approved(url: str, ctx, credentials, phone, *, displacing: bool = True) -> tuple[dict, str]:
    """A screen's request, approved by the phone (over a limit of one: the screen takes the phone's seat)."""
    asked = ask(url, credentials)
    assert asked.status_code == 200, asked.text
    approved = phone.request("POST", "/oidc/device/approve",
                             json={"user_code": asked.json()["user_code"], "device_name": TV, "force": True})
    assert approved.status_code == 200, approved.text
    assert bool(approved.json()["evicted"]) is displacing
    return asked.json(), approved.json()["session_id"]


def _ended(phone, session_id: str) -> dict:
    return {s["session_id"]: s for s in phone.list_sessions(include_ended=True)}[session_id]


def _ending_events(ctx, session_id: str) -> list[str]:
    return [e.reason for e in sessions.events_after(ctx, "0") if e.session_id == session_id and e.session_ended]


def _error(response: requests.Response) -> str:
    assert response.status_code == 400, (response.status_code, response.text)
    return response.json()["error"]


@pytest.mark.parametrize("redeemed", [True, False])
def test_removing_an_app_ends_its_screens_sessions_and_frees_their_seats(one_seat, redeemed):
    url, ctx, credentials = one_seat
    phone = _phone(url, ctx)
    asked, screen = _approved(url, ctx, credentials, phone)
    if redeemed:
        assert poll(url, credentials, asked["device_code"]).status_code == 200
    apps.remove_app(ctx, client_id=credentials.app.client_id)   # as `citylogin apps remove` does
    assert phone.login(PASSWORD)["evicted"] == []                # no "in use elsewhere": the seat is free
    ended = _ended(phone, screen)
    assert (ended["status"], ended["revoked_reason"]) == ("revoked", "app_removed")
    assert _ending_events(ctx, screen) == ["app_removed"]
    assert sessions.end_screens_of(ctx, client_id=credentials.app.client_id, reason="app_removed") == 0


def test_an_approval_never_redeemed_ends_when_its_code_expires(one_seat):
    url, ctx, credentials = one_seat
    phone = _phone(url, ctx)
    asked, screen = _approved(url, ctx, credentials, phone)
    ctx.clock.advance(asked["expires_in"])
    assert phone.login(PASSWORD)["evicted"] == []   # the screen's seat ended with its code
    assert _error(poll(url, credentials, asked["device_code"])) == "expired_token"
    assert (_ended(phone, screen)["status"], _ended(phone, screen)["revoked_reason"]) == ("expired", "approval_expired")
    assert sessions.sweep_ended(ctx) >= 1             # the sweeper ends it, with its event
    ended = _ended(phone, screen)
    assert (ended["status"], ended["revoked_reason"]) == ("revoked", "approval_expired")
    assert _ending_events(ctx, screen) == ["approval_expired"]


def test_a_screen_that_redeems_in_time_keeps_its_session_and_seat_past_the_code(one_seat):
    url, ctx, credentials = one_seat
    phone = _phone(url, ctx)
    asked, screen = _approved(url, ctx, credentials, phone)
    ctx.clock.advance(asked["expires_in"] - 2)
    tokens = poll(url, credentials, asked["device_code"])
    assert tokens.status_code == 200, tokens.text
    ctx.clock.advance(60)                             # past the code's expiry
    sessions.sweep_ended(ctx)
    # read as stored: the phone that approved gave the screen its seat (a limit of one), so it lists nothing
    assert sessions.session_store(ctx).get(screen).status == "active"
    userinfo = requests.get(url + "/oidc/userinfo", timeout=30,
                            headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
    assert userinfo.status_code == 200, userinfo.text
    refreshed = requests.post(url + "/oidc/token", data={"grant_type": "refresh_token",
                                                         "refresh_token": tokens.json()["refresh_token"]},
                              auth=(credentials.app.client_id, credentials.client_secret), timeout=30)
    assert refreshed.status_code == 200, refreshed.text
    with pytest.raises(ConcurrentLoginRequired):      # the screen still holds the one seat
        phone.login(PASSWORD)
    assert _ending_events(ctx, screen) == []


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_each_approval_sends_the_new_sign_in_mail_with_its_wasnt_you_link(two_seats, locale):
    url, ctx, credentials = two_seats
    phone = _phone(url, ctx)
    user_uuid = phone.key_file.user_uuid
    accounts.update_profile(ctx, user_uuid=user_uuid, locale=locale)
    recorder: Recorder = ctx.notifier.backend

    def screens_told() -> list:
        return [m for m in recorder.messages if m.event == "new_sign_in" and m.user_uuid == user_uuid and TV in m.body]

    denied = ask(url, credentials).json()
    assert requests.post(url + "/oidc/device/deny", json={"user_code": denied["user_code"]},
                         timeout=30).status_code == 200
    assert screens_told() == []                        # a denial tells nothing
    _, screen = _approved(url, ctx, credentials, phone, displacing=False)
    [told] = screens_told()                            # once per approval
    assert credentials.app.name in told.body
    if locale == "ja":
        assert "テレビ" in told.body and "心当たりがない場合" in told.body and "ログインしました" in told.subject
    else:
        assert "(TV)" in told.body and "Wasn't you?" in told.body and "signed in" in told.subject
    token = NOT_ME_LINK.search(told.body).group(1)
    removed = requests.post(url + "/account/not_me", json={"token": token}, timeout=30)
    assert removed.status_code == 200, removed.text
    assert removed.json() == {**removed.json(), "device_name": TV, "device_removed": True}
    ended = _ended(phone, screen)
    assert (ended["status"], ended["revoked_reason"]) == ("revoked", "device_unbound")
    assert _ending_events(ctx, screen) == ["device_unbound"]
