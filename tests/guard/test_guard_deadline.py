"""The guard against a citylogin that hangs (it accepts connections, reads each request and answers none) and
one that no longer knows the app. A check that must ask citylogin makes one call, which waits the guard's
`call_timeout` (0.5 s by default) to connect and for each read, and the request gets 503
session_unverifiable; what the guard already holds answers at once, asking nothing. citylogin refusing
the app's own credentials is not an outage: the token gets 401."""
from __future__ import annotations

import math
import time

import httpx
import pytest
from flask import Flask, g

from citylogin_guard import Code, Guard, Unauthorized, Unavailable
from citylogin_guard.jwks import REFETCH_INTERVAL
from tests.guard.checks import refused_code
from tests.guard.transmitter import Signer, Transmitter
from tests.support.waiting import wait_until

INTROSPECTION, JWKS, POLL = "/session/introspect", "/.well-known/jwks.json", "/ssf/poll"
# A deadline for the tests below, and a bound on an answer's wall time that a busy machine keeps well
# within (ten deadlines), and that the 3 s a guard used to wait for each call would break.
DEADLINE = 0.25
ANSWERED_WITHIN = 10 * DEADLINE


def test_the_deadline_is_a_setting_of_the_guard_half_a_second_by_default(transmitter):
    with Guard(transmitter.url, transmitter.client_id, transmitter.client_secret) as default, \
            Guard(transmitter.url, transmitter.client_id, transmitter.client_secret, call_timeout=DEADLINE) as set_:
        assert default.call_timeout == 0.5 and set_.call_timeout == DEADLINE
        # connect, send, each read and the wait for a pooled connection
        assert default._transmitter._client.timeout == httpx.Timeout(0.5)
        assert set_._transmitter._client.timeout == httpx.Timeout(DEADLINE)
    for wrong in (0, -1.0, math.nan):
        with pytest.raises(ValueError, match="call_timeout"):
            Guard(transmitter.url, transmitter.client_id, transmitter.client_secret, call_timeout=wrong)


def guarded_app(guard: Guard) -> Flask:
    app = Flask(__name__)
    guard.init_app(app)

    @app.get("/api/me")
    @guard.required
    def me():
        return {"user": g.citylogin.user_uuid}

    return app


def test_a_token_the_guard_cannot_judge_while_citylogin_hangs_gets_503_after_one_call_within_the_deadline(
        make_guard, transmitter):
    older = transmitter.access_token()             # issued before the guard listened: citylogin is asked
    guard = make_guard(stale_after=60, call_timeout=DEADLINE)   # the feed heard, and trusted through the test
    rotated = Signer()
    transmitter.published.append(rotated)
    unknown_key = transmitter.access_token(signer=rotated)      # signed by a key the guard has not read
    time.sleep(REFETCH_INTERVAL)                   # the JWKS read when the guard started may be read again
    transmitter.hang()
    http = guarded_app(guard).test_client()
    for token, asks in ((older, INTROSPECTION), (unknown_key, JWKS)):
        started = time.monotonic()
        answer = http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        took = time.monotonic() - started
        assert answer.status_code == 503, answer.get_json()
        assert answer.get_json()["code"] == "session_unverifiable" and answer.headers["Retry-After"] == "5"
        assert took < ANSWERED_WITHIN, f"{asks}: the 503 came after {took:.1f} s"
        wait_until(lambda asks=asks: transmitter.hung_on(asks) >= 1, timeout=30, what=f"the call to {asks} held")
        assert transmitter.hung_on(asks) == 1, f"{asks}: one call, not tried again"
    assert set(transmitter.hung) <= {INTROSPECTION, JWKS, POLL}


def test_what_the_guard_holds_answers_at_once_while_citylogin_hangs(make_guard, transmitter):
    """The guard asks the hung citylogin nothing for what it can judge already: a valid token with the keys it
    has (the feed heard), a session the feed said had ended, a token citylogin said was inactive. Each answer
    is the judgement itself: a call to citylogin would have ended in a 503."""
    inactive = transmitter.access_token(session_id="s-inactive")  # issued before the guard listened
    guard = make_guard(stale_after=60)
    seen, unseen = transmitter.access_token(session_id="s-seen"), transmitter.access_token(session_id="s-unseen")
    ended = transmitter.access_token(session_id="s-ended")
    assert guard.verify(f"Bearer {seen}").session_id == "s-seen"
    transmitter.revoked.add("s-inactive")          # introspection says inactive; no event comes
    assert refused_code(guard, inactive) == "session_revoked" and transmitter.introspections == 1
    transmitter.revoke("s-ended", reason="logged_out")
    wait_until(lambda: "s-ended" in guard.ended_sessions, timeout=30, what="the feed telling the session ended")

    transmitter.hang()
    assert guard.verify(f"Bearer {seen}").session_id == "s-seen"
    assert guard.verify(f"Bearer {unseen}").session_id == "s-unseen"
    with pytest.raises(Unauthorized) as refused:
        guard.verify(f"Bearer {ended}")
    assert (refused.value.status, refused.value.code, refused.value.reason) == (401, "session_revoked", "logged_out")
    assert refused_code(guard, inactive) == "session_revoked"
    assert set(transmitter.hung) <= {POLL}, "only the feed's thread called the hung citylogin"
    assert transmitter.introspections == 1


def test_an_app_citylogin_no_longer_knows_gets_401_for_a_token_it_must_ask_about_and_an_outage_503(make_guard,
                                                                                                     transmitter):
    """The app removed, or its secret replaced: citylogin refuses its credentials (401 invalid_client) on the
    feed and on introspection. It answers, so it is not down: the guard refuses the token (401 invalid_token,
    as userinfo and introspection do), where an unreachable citylogin gets 503 session_unverifiable."""
    transmitter.hold = 0.2                          # a held poll ends soon: the next one meets the refusal
    guard = make_guard()
    token = transmitter.access_token()
    assert guard.verify(f"Bearer {token}")
    transmitter.client_secret = "replaced"          # what citylogin does for a removed app: the credentials refused
    wait_until(lambda: not guard.heard(), timeout=30, what="the feed refused, no longer vouching")
    with pytest.raises(Unauthorized) as refused:
        guard.verify(f"Bearer {token}")
    assert not isinstance(refused.value, Unavailable)
    assert (refused.value.status, refused.value.code) == (401, Code.INVALID_TOKEN)
    assert refused.value.headers()["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert "credentials" in refused.value.detail and refused.value.retry_after is None

    transmitter.stop()                              # citylogin unreachable: the same token cannot be judged
    with pytest.raises(Unavailable) as unavailable:
        guard.verify(f"Bearer {token}")
    assert (unavailable.value.status, unavailable.value.code) == (503, Code.SESSION_UNVERIFIABLE)


def test_a_guard_started_against_a_hung_citylogin_answers_503_within_its_deadline():
    """Never answered (its metadata and keys never read), the guard answers 503 within its deadline."""
    hung = Transmitter()
    hung.hang()
    try:
        with Guard(hung.url, hung.client_id, hung.client_secret, call_timeout=DEADLINE) as guard:
            started = time.monotonic()
            with pytest.raises(Unavailable):
                guard.verify(f"Bearer {hung.access_token()}")
            took = time.monotonic() - started
            assert took < ANSWERED_WITHIN, f"the 503 came after {took:.1f} s"
            wait_until(lambda: hung.hung_on("/.well-known/ssf-configuration") >= 1, timeout=30,
                       what="the metadata asked for")
    finally:
        hung.stop()
