"""The guard's session check: the background long poll of /ssf/poll (revocations heard within a
second, acknowledged, forgotten when their tokens could no longer be valid), the fallback to
introspection when the feed is stale, the refusal when citylogin cannot be reached, and close()."""
from __future__ import annotations

import logging
import threading
import time

import pytest

from citylogin_guard import Guard, Unauthorized, Unavailable
from citylogin_guard.ended import EndedSessions
from citylogin_guard.jwks import KeySet
from citylogin_guard.tokens import InvalidSecurityEvent, SessionEnded, sessions_ended
from tests.guard.checks import refused_code
from tests.guard.transmitter import GRANT_CLAIM, SESSION_REVOKED, Signer, Transmitter
from tests.support.waiting import wait_until

FEED_THREAD = "citylogin-guard-feed"


def test_a_revoked_session_is_refused_within_a_second_from_the_feed(guard, transmitter):
    token = transmitter.access_token()
    other = transmitter.access_token()
    principal = guard.verify(f"Bearer {token}")
    jti = transmitter.revoke(principal.session_id, reason="displaced")
    wait_until(lambda: refused_code(guard, token) == "session_revoked", timeout=1.0, what="the revocation refused")
    with pytest.raises(Unauthorized) as refused:
        guard.verify(f"Bearer {token}")
    assert refused.value.reason == "displaced"
    assert guard.verify(f"Bearer {other}").session_id != principal.session_id
    assert transmitter.introspections == 0, "heard from the feed, not by introspection"
    wait_until(lambda: jti in transmitter.acked, timeout=30, what="the event acknowledged")
    assert transmitter.pending() == []


def test_an_ended_grant_refuses_the_tokens_issued_from_it_and_no_others_of_its_session(guard, transmitter):
    """citylogin's session-revoked naming an app's grant (its sign-in on a session that goes on): the
    tokens whose jti names that grant are refused, every other token of the session passes."""
    grant, again = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
    issued = [transmitter.access_token(session_id="s-1", jti=f"{grant}.{n}") for n in (1, 2)]
    signed_in_again = transmitter.access_token(session_id="s-1", jti=f"{again}.1")
    sessions_own = transmitter.access_token(session_id="s-1")  # citylogin's own token: its jti names no grant
    assert all(refused_code(guard, t) is None for t in (*issued, signed_in_again, sessions_own))
    jti = transmitter.revoke("s-1", reason="refresh_reuse", grant_id=grant)
    wait_until(lambda: refused_code(guard, issued[0]) == "session_revoked", timeout=30,
               what="the ended grant's token refused")
    with pytest.raises(Unauthorized) as refused:
        guard.verify(f"Bearer {issued[1]}")
    assert (refused.value.code, refused.value.reason) == ("session_revoked", "refresh_reuse")
    assert refused_code(guard, signed_in_again) is None and refused_code(guard, sessions_own) is None
    assert grant in guard.ended_grants and "s-1" not in guard.ended_sessions
    assert transmitter.introspections == 0, "heard from the feed, not by introspection"
    wait_until(lambda: jti in transmitter.acked, timeout=30, what="the event acknowledged")


@pytest.mark.parametrize("grant, read", [
    (None, None), ("0123456789abcdef", "0123456789abcdef"),
    (7, InvalidSecurityEvent), ("", InvalidSecurityEvent), ("0123456789abcdef.1", InvalidSecurityEvent),
    (["0123456789abcdef"], InvalidSecurityEvent), ({"id": "0123456789abcdef"}, InvalidSecurityEvent),
])
def test_the_guard_reads_the_grant_a_set_names_and_refuses_a_malformed_one(grant, read):
    signer, issuer, client_id = Signer(), "https://citylogin.example", "app-1"
    event = {"subject": {"format": "complex", "session": {"format": "opaque", "id": "s-1"}},
             "event_timestamp": 1795000000, "reason_admin": {"en": "signed_out"}}
    if grant is not None:
        event[GRANT_CLAIM] = grant
    token = signer.sign({"iss": issuer, "aud": client_id, "jti": "j", "iat": int(time.time()),
                         "events": {SESSION_REVOKED: event}}, typ="secevent+jwt")
    keys = KeySet(lambda: {"keys": [signer.jwk()]})

    def parsed() -> list[SessionEnded]:
        return sessions_ended(token, keys=keys, issuer=issuer, client_id=client_id, leeway=1.0)
    if read is InvalidSecurityEvent:  # never taken for the session's end: not acknowledged, asked again
        with pytest.raises(InvalidSecurityEvent):
            parsed()
    else:
        assert parsed() == [SessionEnded("s-1", 1795000000.0, "signed_out", read)]


def test_the_guard_long_polls_and_acknowledges_each_event_once_processed(guard, transmitter):
    jtis = [transmitter.revoke(f"s-{n}") for n in range(3)]
    wait_until(lambda: set(jtis) <= transmitter.acked, timeout=30, what="all three acknowledged")
    assert all(f"s-{n}" in guard.ended_sessions for n in range(3))
    assert any(poll.get("returnImmediately") is False for poll in transmitter.polls)
    assert all(poll.get("maxEvents") == 100 for poll in transmitter.polls)


def test_a_session_is_forgotten_once_its_tokens_can_no_longer_be_valid():
    now = [1000.0]
    ended = EndedSessions(clock=lambda: now[0])
    ended.add("old", forget_at=1010.0, reason="logged_out")
    ended.add("new", forget_at=1400.0, reason=None)
    assert ended.reason("old") == (True, "logged_out") and ended.prune() == 2
    now[0] = 1010.0
    assert ended.prune() == 1 and "old" not in ended and ended.reason("new") == (True, None)


def test_the_feed_keeps_an_event_for_the_token_ttl_past_its_time_then_forgets_it(guard, transmitter):
    # Kept until event_timestamp + the token ttl (300 s) + twice the clock skew allowed.
    kept_for = transmitter.token_ttl + 2 * guard.leeway
    transmitter.revoke("recent", event_timestamp=time.time() - kept_for + 60)
    transmitter.revoke("long-gone", event_timestamp=time.time() - kept_for - 2)
    wait_until(lambda: len(transmitter.acked) == 2, timeout=30, what="both acknowledged")
    assert "recent" in guard.ended_sessions and "long-gone" not in guard.ended_sessions


def test_a_set_that_fails_its_checks_is_not_acknowledged_and_the_guard_asks_citylogin(make_guard, transmitter):
    guard = make_guard(stale_after=1.0)
    token = transmitter.access_token()
    bad = [transmitter.revoke("s-bad-aud", aud="another-app"), transmitter.revoke("s-unknown-key", signer=Signer())]
    wait_until(lambda: not guard.heard(), timeout=30, what="the feed counted as unheard")
    assert guard.verify(f"Bearer {token}") and transmitter.introspections == 1
    assert not set(bad) & transmitter.acked and "s-bad-aud" not in guard.ended_sessions


def test_a_quiet_long_poll_keeps_the_feed_heard(make_guard, transmitter):
    # citylogin holds a quiet poll 30 s; the guard cuts it at stale_after / 2 and polls at once.
    guard = make_guard(stale_after=2.0)
    token = transmitter.access_token()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert guard.heard()
        guard.verify(f"Bearer {token}")
        time.sleep(0.05)
    assert transmitter.introspections == 0


def test_a_stale_feed_falls_back_to_introspection_each_answer_kept_at_most_a_second(make_guard, transmitter):
    guard = make_guard(stale_after=0.5)
    token = transmitter.access_token()
    transmitter.poll_status = 503
    wait_until(lambda: not guard.heard(), timeout=30, what="the feed stale")
    principal = guard.verify(f"Bearer {token}")
    guard.verify(f"Bearer {token}")
    assert transmitter.introspections == 1, "the second answer from the cache"
    transmitter.revoke(principal.session_id)  # its SET never arrives: polls fail
    time.sleep(1.05)
    assert refused_code(guard, token) == "session_revoked"
    assert principal.session_id not in guard.ended_sessions and transmitter.introspections == 2


def test_an_unreachable_citylogin_leaves_every_token_unverifiable(make_guard, transmitter):
    guard = make_guard(stale_after=0.5)
    seen, unseen = transmitter.access_token(), transmitter.access_token()
    guard.verify(f"Bearer {seen}")
    transmitter.stop()
    wait_until(lambda: not guard.heard(), timeout=30, what="the feed stale")
    for token in (seen, unseen):
        with pytest.raises(Unavailable) as unavailable:
            guard.verify(f"Bearer {token}")
        assert unavailable.value.code == "session_unverifiable" and unavailable.value.status == 503
        assert unavailable.value.retry_after == 5 and unavailable.value.headers()["Retry-After"] == "5"


def test_a_token_citylogin_said_was_inactive_stays_refused_with_401_while_it_is_down(make_guard, transmitter):
    """An inactive answer is final (the token never becomes active again): kept until the token expires,
    it refuses the token with 401 through an outage, where an active answer (kept 1 s) would not."""
    guard = make_guard(stale_after=0.5)
    ended, live = transmitter.access_token(session_id="s-ended"), transmitter.access_token(session_id="s-live")
    transmitter.poll_status = 503                       # the feed fails: the session's SET never arrives
    wait_until(lambda: not guard.heard(), timeout=30, what="the feed stale")
    transmitter.revoke("s-ended")
    assert refused_code(guard, ended) == "session_revoked" and refused_code(guard, live) is None
    assert transmitter.introspections == 2
    transmitter.stop()
    time.sleep(1.05)                                    # past the 1 s an active answer is kept
    assert refused_code(guard, ended) == "session_revoked"
    with pytest.raises(Unavailable):
        guard.verify(f"Bearer {live}")
    assert transmitter.introspections == 2


def test_a_guard_started_while_citylogin_is_down_refuses_until_it_can_check():
    down = Transmitter()
    down.stop()
    token = down.access_token()
    with Guard(down.url, down.client_id, down.client_secret) as guard:
        with pytest.raises(Unavailable) as unavailable:        # citylogin's keys never read: a 503, not a 401
            guard.verify(f"Bearer {token}")
        assert unavailable.value.code == "session_unverifiable"


def test_close_stops_the_feed_at_once_even_while_a_long_poll_is_held(make_guard, transmitter):
    guard = make_guard(stale_after=60.0)  # a held poll is cut only after 30 s
    wait_until(lambda: transmitter.holding, timeout=30, what="a long poll held")
    assert any(t.name == FEED_THREAD for t in threading.enumerate())
    guard.close()
    assert not any(t.name == FEED_THREAD for t in threading.enumerate())


def test_a_token_issued_before_the_guard_listened_is_checked_with_citylogin(make_guard, transmitter):
    # An earlier process of this app heard and acknowledged the end of "s-old": the feed will not
    # tell this guard, so tokens issued before it listened are introspected.
    revoked_before, live_before = transmitter.access_token(session_id="s-old"), transmitter.access_token()
    transmitter.poll({"ack": [transmitter.revoke("s-old")], "returnImmediately": True})
    guard = make_guard()
    assert refused_code(guard, revoked_before) == "session_revoked"
    assert refused_code(guard, live_before) is None
    assert transmitter.introspections == 2
    assert refused_code(guard, transmitter.access_token()) is None and transmitter.introspections == 2


def test_credentials_refused_by_the_feed_stop_it_vouching_at_once(make_guard, transmitter):
    """The app removed (or its secret replaced): citylogin answers the poll 401, and the guard asks about
    every token from then on, long before the feed would go stale (SPEC §14: a removed app's tokens are
    refused within 2 s); an inactive answer refuses the token."""
    transmitter.hold = 0.2
    guard = make_guard(stale_after=60)
    token = transmitter.access_token()
    principal = guard.verify(f"Bearer {token}")
    assert transmitter.introspections == 0
    transmitter.poll_status = 401
    wait_until(lambda: not guard.heard(), timeout=30, what="the feed no longer vouching (stale only after 60 s)")
    transmitter.revoke(principal.session_id)  # its SET never arrives: polls are refused
    assert refused_code(guard, token) == "session_revoked" and transmitter.introspections == 1


def polls_made(transmitter: Transmitter, count: int) -> int:
    """Waits for `count` more polls to reach the transmitter; returns how many came meanwhile."""
    start = len(transmitter.polls)
    wait_until(lambda: len(transmitter.polls) >= start + count, timeout=10, what=f"{count} more polls")
    return len(transmitter.polls) - start


@pytest.mark.slow  # eight seconds of polls: the whole suite runs it
def test_steady_polling_is_quiet_at_info_and_the_feed_lost_and_back_are_one_warning_each(make_guard, transmitter,
                                                                                           caplog):
    """httpx logs each request at INFO: on the feed's thread that line counts as DEBUG, so an app logging at
    INFO sees nothing of a healthy feed, and at DEBUG at most one line per poll. What changes is logged
    once: the feed failing and the feed answering again."""
    caplog.set_level(logging.INFO)                        # an app's logging.basicConfig(level=INFO)
    guard = make_guard(stale_after=0.5)                   # a quiet long poll cut every 0.25 s
    caplog.clear()
    assert polls_made(transmitter, 6) >= 6
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == []

    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.clear()
    polls = polls_made(transmitter, 6)
    lines = [r for r in caplog.records if r.name == "httpx"]
    assert lines and all(r.levelno == logging.DEBUG and "/ssf/poll" in r.getMessage() for r in lines)
    assert len(lines) <= polls + 1                        # one per poll answered at most (a cut poll logs none)

    caplog.set_level(logging.INFO, logger="httpx")
    caplog.clear()
    transmitter.poll_status = 503
    wait_until(lambda: not guard.heard(), timeout=30, what="the feed stale")
    polls_made(transmitter, 3)
    transmitter.poll_status = 200
    wait_until(guard.heard, timeout=10, what="the feed heard again")
    polls_made(transmitter, 4)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("citylogin_guard", "WARNING", "citylogin guard: the event feed failed (TransmitterUnreachable: poll: "
                                       "HTTP 503); checking tokens by introspection"),
        ("citylogin_guard", "WARNING", "citylogin guard: the event feed answers again")]


def test_the_apps_own_httpx_requests_keep_their_info_line(make_guard, transmitter, caplog):
    import httpx

    caplog.set_level(logging.INFO)
    make_guard()
    caplog.clear()
    httpx.get(transmitter.url + "/.well-known/ssf-configuration", timeout=5)
    assert [(r.name, r.levelname) for r in caplog.records] == [("httpx", "INFO")]
