"""The guard against a real citylogin (in this process) for an app signed in by OpenID Connect (SPEC §14):
when the app's grant on a session ends while the session lives — its refresh token reused after the
grace, or the app giving its tokens back (RFC 7009) — the app's CAEP feed says so, naming the grant,
and the guard refuses the access tokens issued from that grant on its next check; the app's new
sign-in on the same session passes, and no other app's feed hears of it."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import jwt
import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from relying_parties.security_events import GRANT_CLAIM, SESSION_REVOKED
from citylogin_guard import Guard, Unauthorized
from tests.guard.checks import refused_code
from tests.guard.conftest import CALL_TIMEOUT
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import signed_in_tokens
from tests.support.waiting import wait_until

# a live server and a guard with its feed: the rule is in the fast tier by tests/guard/test_guard_feed.py
pytestmark = pytest.mark.slow

REDIRECT = "https://app.example/callback"
LEEWAY = 0.3  # one host, one clock


@pytest.fixture
def served(make_server):
    # No grace: a refresh token used again once the second of its rotation is over is a late reuse.
    return make_server(host_name="127.0.0.1", refresh_reuse_grace=0, events_poll_interval=0.1)


@pytest.fixture
def provider(served):
    url, ctx = served
    notes, diary = (apps.add_app(ctx, name=name, push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
                    for name in ("Notes", "Diary"))
    device = register_device(url)
    device.login(PASSWORD)
    return url, notes, diary, device


@contextmanager
def listening_guard(url: str, credentials) -> Iterator[Guard]:
    """The app's guard, once it has heard citylogin's feed and tokens issued from now on (iat in whole
    seconds) are the feed's alone: never introspected."""
    with Guard(url, credentials.app.client_id, credentials.client_secret, audience=credentials.app.client_id,
               leeway=LEEWAY, call_timeout=CALL_TIMEOUT) as guard:
        wait_until(guard.heard, timeout=10, what="the guard hears citylogin's feed")
        since = guard._feed.listening_since
        assert since is not None
        wait_until(lambda: int(time.time()) > since + LEEWAY, timeout=3, what="a token the feed speaks for")
        yield guard


def signed_in(url: str, credentials, device) -> dict:
    """The app's tokens (a refresh token among them) from signing `device`'s person in on its session."""
    return signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")


def _refresh(url: str, credentials, refresh_token: str) -> requests.Response:
    return requests.post(url + "/oidc/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                         auth=(credentials.app.client_id, credentials.client_secret), timeout=10)


def _polled(url: str, credentials) -> list[dict]:
    """The session-revoked events on the app's own feed (RFC 8936 poll, nothing acknowledged)."""
    answer = requests.post(url + "/ssf/poll", json={"returnImmediately": True},
                           auth=(credentials.app.client_id, credentials.client_secret), timeout=10)
    assert answer.status_code == 200, answer.text
    return [jwt.decode(t, options={"verify_signature": False})["events"][SESSION_REVOKED]
            for t in answer.json()["sets"].values()]


def _refusal(guard: Guard, token: str) -> tuple[str, str | None]:
    with pytest.raises(Unauthorized) as refused:
        guard.verify(f"Bearer {token}")
    return refused.value.code, refused.value.reason


def test_the_guard_refuses_an_ended_grants_tokens_and_passes_the_apps_new_sign_in(provider):
    url, notes, diary, device = provider
    with listening_guard(url, notes) as guard:
        tokens = signed_in(url, notes, device)
        others = signed_in(url, diary, device)
        successor = _refresh(url, notes, tokens["refresh_token"])
        assert successor.status_code == 200, successor.text
        rotated = int(time.time())
        principal = guard.verify(f"Bearer {successor.json()['access_token']}")
        assert principal.session_id == device.session_id

        wait_until(lambda: int(time.time()) > rotated, timeout=3, what="the grace over")
        reused = _refresh(url, notes, tokens["refresh_token"])
        assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
        wait_until(lambda: refused_code(guard, successor.json()["access_token"]) == "session_revoked", timeout=10,
                   what="the ended grant's access token refused by the guard")
        assert _refusal(guard, tokens["access_token"]) == ("session_revoked", "refresh_reuse")
        grant_id = principal.claims["jti"].split(".")[0]
        assert grant_id in guard.ended_grants, "heard from the feed, not by introspection"
        assert device.session_id not in guard.ended_sessions
        told = _polled(url, notes)
        assert [(e["subject"]["session"]["id"], e[GRANT_CLAIM], e["reason_admin"]) for e in told] == \
            [(device.session_id, grant_id, {"en": "refresh_reuse"})]
        assert _polled(url, diary) == [], "another app's feed never hears of it"

        again = signed_in(url, notes, device)
        assert guard.verify(f"Bearer {again['access_token']}").session_id == device.session_id
        # The app gives its new grant back (RFC 7009): its API servers' guards refuse what it gave back.
        revoked = requests.post(url + "/oidc/revoke", data={"token": again["refresh_token"]},
                                auth=(notes.app.client_id, notes.client_secret), timeout=10)
        assert revoked.status_code == 200, revoked.text
        wait_until(lambda: refused_code(guard, again["access_token"]) == "session_revoked", timeout=10,
                   what="the access token of the grant the app gave back refused by the guard")
        assert _refusal(guard, again["access_token"]) == ("session_revoked", "revoked")
        assert _polled(url, diary) == []
        assert device.request("GET", "/session/me").status_code == 200, "the session goes on"
        assert requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {others['access_token']}"},
                            timeout=10).status_code == 200


def test_the_guard_refuses_a_replaced_grants_tokens_as_userinfo_does(provider):
    """SPEC §14: the app signing the person in again on the same session replaces its grant; the old grant's
    access tokens are refused by the guard (its feed names the grant) as by userinfo and introspection, and
    the new grant's pass everywhere."""
    url, notes, diary, device = provider
    with listening_guard(url, notes) as guard:
        first = signed_in(url, notes, device)
        principal = guard.verify(f"Bearer {first['access_token']}")
        second = signed_in(url, notes, device)

        wait_until(lambda: refused_code(guard, first["access_token"]) == "session_revoked", timeout=10,
                   what="the replaced grant's access token refused by the guard")
        assert _refusal(guard, first["access_token"]) == ("session_revoked", "replaced")
        grant_id = principal.claims["jti"].split(".")[0]
        assert grant_id in guard.ended_grants, "heard from the feed, not by introspection"
        assert guard.verify(f"Bearer {second['access_token']}").session_id == device.session_id
        for token, status, active in ((first, 401, False), (second, 200, True)):
            assert requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"},
                                timeout=10).status_code == status
            assert requests.post(url + "/session/introspect", data={"token": token["access_token"]}, timeout=10,
                                 auth=(diary.app.client_id, diary.client_secret)).json()["active"] is active
        assert [(e["subject"]["session"]["id"], e[GRANT_CLAIM]) for e in _polled(url, notes)] == \
            [(device.session_id, grant_id)]
        assert _polled(url, diary) == [], "another app's feed never hears of it"
        assert _refresh(url, notes, first["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_removed_apps_tokens_are_refused_everywhere_within_two_seconds(provider, served):
    """SPEC §14: an operator removes the app; within 2 s its access tokens are refused by its guard (its
    held poll is answered 401, and the guard stops vouching; introspection refuses the app itself, and the
    guard answers 401 invalid_token, as userinfo does, not 503 as for an outage), by userinfo and by
    introspection, and the person's Sessions tab no longer lists it; the session and the other app go on."""
    url, notes, diary, device = provider
    with listening_guard(url, notes) as guard:
        tokens = signed_in(url, notes, device)
        others = signed_in(url, diary, device)
        assert guard.verify(f"Bearer {tokens['access_token']}").session_id == device.session_id
        wait_until(lambda: guard._feed.heard_at is not None and time.monotonic() - guard._feed.heard_at > 0.5,
                   timeout=10, what="the guard's poll held by citylogin")

        def userinfo(token: dict) -> int:
            return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"},
                                timeout=10).status_code

        def active(token: dict) -> bool:
            return requests.post(url + "/session/introspect", data={"token": token["access_token"]}, timeout=10,
                                 auth=(diary.app.client_id, diary.client_secret)).json()["active"]

        def listed() -> set[str]:
            return {a["client_id"] for s in device.list_sessions() if s["current"] for a in s["apps"]}
        assert listed() == {notes.app.client_id, diary.app.client_id}

        apps.remove_app(served[1], client_id=notes.app.client_id)
        removed = time.monotonic()
        wait_until(lambda: refused_code(guard, tokens["access_token"]) == "invalid_token", timeout=2,
                   what="the removed app's token refused by its guard")
        wait_until(lambda: userinfo(tokens) == 401 and not active(tokens), timeout=2 - (time.monotonic() - removed),
                   what="the removed app's token refused by userinfo and introspection")
        assert listed() == {diary.app.client_id}
        assert userinfo(others) == 200 and active(others) and device.request("GET", "/session/me").status_code == 200
