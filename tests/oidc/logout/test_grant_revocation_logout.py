"""Back-Channel Logout of one app's grant (SPEC §14): a refresh token reused after the grace, or a
code used twice, ends that app's grant on the session and tells that app at once by back channel (a
logout token for the session's sid), from the outbox the revocation itself wrote; other apps hear
nothing, the session goes on, and when it ends later the app that was told hears nothing more, while
the others hear of it as always. The receiver is an app of its own process."""
from __future__ import annotations

import jwt
import pytest
import requests

from relying_parties import delivery, security_events
from relying_parties import service as apps
from relying_parties.models import BACKCHANNEL_STREAM_SUFFIX, OidcClient
from oidc.app_grants import ending as grants
from sessions import service as sessions
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device
from tests.support.oidc import code_for, finish_as_device, query_of, waiting_request
from tests.support.receiver import received, receiver
from tests.support.waiting import wait_until

# a receiver process; tests/oidc/token/test_refresh_tokens.py keeps the grant's end in the fast tier
pytestmark = pytest.mark.slow

REDIRECT = "https://app.example/callback"
GRACE = 10


@pytest.fixture
def sink():
    with receiver() as url:
        yield url


@pytest.fixture
def provider(make_server):
    url, ctx = make_server(host_name="127.0.0.1", ssf_push_interval=0.2, refresh_reuse_grace=GRACE)
    clock = FakeClock()
    ctx.clock = clock
    return url, ctx, clock


def _app(ctx, sink: str, name: str):
    return apps.add_app(ctx, name=name, push_url=None, oidc=OidcClient(
        redirect_uris=(REDIRECT,), backchannel_logout_uri=f"{sink}/backchannel"))


def _token(url: str, credentials, data: dict) -> requests.Response:
    return requests.post(url + "/oidc/token", data=data, auth=(credentials.app.client_id, credentials.client_secret),
                         timeout=10)


def _redeem(url: str, credentials, code: str, verifier: str) -> requests.Response:
    return _token(url, credentials, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                     "code_verifier": verifier})


def _signed_in(url: str, credentials, device) -> dict:
    code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT,
                              scope="openid offline_access")
    issued = _redeem(url, credentials, code, verifier)
    assert issued.status_code == 200, issued.text
    return issued.json()


def _refresh(url: str, credentials, refresh_token: str) -> requests.Response:
    return _token(url, credentials, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def _userinfo(url: str, access_token: str) -> int:
    return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=10).status_code


def _logouts(sink: str) -> list[tuple[str, str]]:
    """(aud, sid) of each logout token the receiver got, in arrival order."""
    claims = [jwt.decode(t, options={"verify_signature": False}) for t in received(sink)["sets"]]
    return [(c["aud"], c["sid"]) for c in claims]


def _device(url: str, clock: FakeClock):
    device = register_device(url)
    on_clock(clock, device)
    device.login(PASSWORD)
    return device


def _grant_of(tokens: dict) -> str:
    """The grant an app's access token was issued from (its jti is `<grant_id>.<generation>`)."""
    return jwt.decode(tokens["access_token"], options={"verify_signature": False})["jti"].split(".")[0]


def _grant_named(token: str) -> tuple[str, str | None]:
    """(sid, the grant it names: None for the session's own end) of a CAEP session-revoked SET."""
    event = jwt.decode(token, options={"verify_signature": False})["events"][security_events.SESSION_REVOKED]
    return event["subject"]["session"]["id"], event.get(security_events.GRANT_CLAIM)


def _passed_grant(ctx, client_id: str, grant_id: str) -> bool:
    """Whether the app's back-channel stream has passed (delivered or skipped) the end of its grant."""
    ended = [e.seq for e in sessions.events_after(ctx, "0") if e.grant_id == grant_id]
    state = delivery.stream_store(ctx).get(client_id + BACKCHANNEL_STREAM_SUFFIX)
    return bool(ended) and state is not None and all(seq <= state.cursor or seq in state.acked for seq in ended)


def _passed(ctx, client_id: str, session_id: str) -> bool:
    """Whether the app's back-channel stream has passed (delivered or skipped) every event of the
    session's end: it was considered, and anything it sent is in the receiver."""
    ended = [e.seq for e in sessions.events_after(ctx, "0") if e.session_id == session_id and e.session_ended]
    state = delivery.stream_store(ctx).get(client_id + BACKCHANNEL_STREAM_SUFFIX)
    return bool(ended) and state is not None and all(seq <= state.cursor or seq in state.acked for seq in ended)


def test_a_refresh_reuse_after_the_grace_tells_that_app_alone_and_the_sessions_end_tells_it_nothing_more(
        provider, sink):
    url, ctx, clock = provider
    notes, diary = _app(ctx, sink, "Notes"), _app(ctx, sink, "Diary")
    device = _device(url, clock)
    tokens, others = _signed_in(url, notes, device), _signed_in(url, diary, device)
    successor = _refresh(url, notes, tokens["refresh_token"]).json()

    clock.advance(GRACE + 1)
    reused = _refresh(url, notes, tokens["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    told = wait_until(lambda: _logouts(sink) or None, timeout=30, what="the reused app's logout token")
    assert told == [(notes.app.client_id, device.session_id)]
    assert _userinfo(url, successor["access_token"]) == 401
    assert device.request("GET", "/session/me").status_code == 200
    assert _userinfo(url, others["access_token"]) == 200
    # CAEP: the reused app's own feed hears its grant's end (for its API servers' guards), naming the grant;
    # the other app's hears nothing, the session did not end
    def caep(app) -> list[tuple[str, str | None]]:
        sets, _ = delivery.poll(ctx, app.app, max_events=100, return_immediately=True, acks=[])
        return [named for named in map(_grant_named, sets.values()) if named[0] == device.session_id]
    assert caep(notes) == [(device.session_id, _grant_of(successor))]
    assert caep(diary) == []

    session_id = device.session_id
    clock.advance(1)
    device.logout()
    wait_until(lambda: (diary.app.client_id, session_id) in _logouts(sink) or None, timeout=30,
               what="the other app's logout token at the session's end")
    for client_id in (notes.app.client_id, diary.app.client_id):
        wait_until(lambda: _passed(ctx, client_id, session_id), timeout=30,  # noqa: B023 (called at once)
                   what="each app's stream passing the session's end")
    # one logout each: the told app none more, the other none of the revocation
    assert sorted(_logouts(sink)) == sorted([(notes.app.client_id, session_id),
                                             (diary.app.client_id, session_id)]), _logouts(sink)


def test_a_replayed_codes_revocation_reaches_the_apps_back_channel(provider, sink):
    url, ctx, clock = provider
    notes, diary = _app(ctx, sink, "Notes"), _app(ctx, sink, "Diary")
    device = _device(url, clock)
    others = _signed_in(url, diary, device)
    code, verifier = code_for(url, notes.app.client_id, device, redirect_uri=REDIRECT, scope="openid offline_access")
    first = _redeem(url, notes, code, verifier)
    assert first.status_code == 200, first.text
    replay = _redeem(url, notes, code, verifier)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")

    told = wait_until(lambda: _logouts(sink) or None, timeout=30, what="the app's logout token")
    assert told == [(notes.app.client_id, device.session_id)]
    grant = grants.store(ctx).record(session_id=device.session_id, client_id=notes.app.client_id)
    assert grant is not None and grant.revoked == grants.CODE_REPLAY
    assert _userinfo(url, first.json()["access_token"]) == 401
    assert _refresh(url, notes, first.json()["refresh_token"]).json()["error"] == "invalid_grant"
    assert device.request("GET", "/session/me").status_code == 200
    assert _userinfo(url, others["access_token"]) == 200


def test_an_app_that_gave_its_grant_back_is_not_told_then_but_is_at_the_sessions_end(provider, sink):
    """RFC 7009: the app asked, so nothing comes at once; it still holds an ID token of the session,
    so the session's end tells it."""
    url, ctx, clock = provider
    notes = _app(ctx, sink, "Notes")
    device = _device(url, clock)
    tokens = _signed_in(url, notes, device)
    revoked = requests.post(url + "/oidc/revoke", data={"token": tokens["refresh_token"]},
                            auth=(notes.app.client_id, notes.client_secret), timeout=10)
    assert revoked.status_code == 200, revoked.text
    assert _userinfo(url, tokens["access_token"]) == 401
    # its event is written (the app's CAEP feed hears it) and the back channel passes it untold
    wait_until(lambda: _passed_grant(ctx, notes.app.client_id, _grant_of(tokens)), timeout=30,
               what="the back channel passing the grant's end")
    assert _logouts(sink) == []
    session_id = device.session_id
    clock.advance(1)
    device.logout()
    wait_until(lambda: _passed(ctx, notes.app.client_id, session_id), timeout=30,
               what="the back channel passing the session's end")
    assert _logouts(sink) == [(notes.app.client_id, session_id)]


def test_a_withdrawn_consent_tells_the_app_at_once_and_the_session_goes_on(provider, sink):
    """The person takes their consent back on the Account page: the app's tokens die and the app hears so
    by back channel for the session, which goes on; its later end tells that app nothing more."""
    url, ctx, clock = provider
    diary = apps.add_app(ctx, name="Diary", push_url=None, oidc=OidcClient(
        redirect_uris=(REDIRECT,), backchannel_logout_uri=f"{sink}/backchannel", consent=True))
    device = _device(url, clock)
    request_id, verifier = waiting_request(url, diary.app.client_id, redirect_uri=REDIRECT, browser=device,
                                           scope="openid offline_access")
    code = query_of(finish_as_device(device, request_id, consent=True))["code"]
    tokens = _redeem(url, diary, code, verifier).json()
    assert device.request("DELETE", f"/account/consents/{diary.app.client_id}").status_code == 204

    told = wait_until(lambda: _logouts(sink) or None, timeout=30, what="the app's logout token")
    assert told == [(diary.app.client_id, device.session_id)]
    assert _userinfo(url, tokens["access_token"]) == 401
    assert device.request("GET", "/session/me").status_code == 200


def test_a_grants_end_is_pushed_to_that_apps_own_push_url_alone(provider, sink):
    """RFC 8935 push carries a grant's end as the poll does: the CAEP event naming the grant, to the
    app whose grant ended; another app's push hears only the session's own end."""
    url, ctx, clock = provider
    notes, diary = (apps.add_app(ctx, name=name, push_url=f"{sink}/push", oidc=OidcClient(redirect_uris=(REDIRECT,)))
                    for name in ("Notes", "Diary"))
    device = _device(url, clock)
    tokens = _signed_in(url, notes, device)
    _signed_in(url, diary, device)
    session_id = device.session_id
    signed_out = device.request("DELETE", f"/session/{session_id}/apps/{notes.app.client_id}")
    assert signed_out.status_code == 204, signed_out.text

    def pushed() -> list[tuple[str, str, str | None]]:
        """(aud, sid, the grant named) of each SET of this session the receiver got, in arrival order (the
        module's other tests end sessions on the same tables, on clocks of their own)."""
        sets = [jwt.decode(t, options={"verify_signature": False}) for t in received(sink)["sets"]]
        events = [(c["aud"], c["events"][security_events.SESSION_REVOKED]) for c in sets]
        return [(aud, e["subject"]["session"]["id"], e.get(security_events.GRANT_CLAIM)) for aud, e in events
                if e["subject"]["session"]["id"] == session_id]
    wait_until(lambda: pushed() or None, timeout=30, what="the grant's end pushed")
    assert pushed() == [(notes.app.client_id, session_id, _grant_of(tokens))]
    clock.advance(1)
    device.logout()
    wait_until(lambda: (diary.app.client_id, session_id, None) in pushed() or None, timeout=30,
               what="the session's end pushed to the other app")
    assert [p for p in pushed() if p[0] == diary.app.client_id] == [(diary.app.client_id, session_id, None)]


def test_a_new_sign_in_ends_the_replaced_grant_for_the_apps_feed_and_tells_no_back_channel(provider, sink):
    """SPEC §14: the app signing the person in again on the session replaces its grant; the old grant's end
    is written with the new one (the app's CAEP feed names it, so its guards refuse its tokens), and is no
    logout: the app just signed in, so its back channel passes it untold, and the session's end later is
    told once."""
    url, ctx, clock = provider
    notes = _app(ctx, sink, "Notes")
    device = _device(url, clock)
    first = _signed_in(url, notes, device)
    second = _signed_in(url, notes, device)
    ended = [e for e in sessions.events_after(ctx, "0") if e.grant_id == _grant_of(first)]
    assert [(e.session_id, e.client_id, e.reason) for e in ended] == \
        [(device.session_id, notes.app.client_id, grants.REPLACED)]
    assert not any(e.grant_id == _grant_of(second) for e in sessions.events_after(ctx, "0"))
    assert (_userinfo(url, first["access_token"]), _userinfo(url, second["access_token"])) == (401, 200)
    wait_until(lambda: _passed_grant(ctx, notes.app.client_id, _grant_of(first)), timeout=30,
               what="the back channel passing the replaced grant's end")
    assert _logouts(sink) == []
    session_id = device.session_id
    clock.advance(1)
    device.logout()
    wait_until(lambda: _passed(ctx, notes.app.client_id, session_id), timeout=30,
               what="the back channel passing the session's end")
    assert _logouts(sink) == [(notes.app.client_id, session_id)]
