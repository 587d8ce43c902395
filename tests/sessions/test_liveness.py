"""One truth for "is this session live" (SPEC §4, §5): the login transaction, refresh, the guard
and the idle timeout agree. A refresh is activity; a session the presence no longer counts is
not usable; the effective idle timeout is never shorter than the configured one."""
from __future__ import annotations

import pytest
import requests

from citylogin.client.api import Client, ConcurrentLoginRequired
from sessions.service import liveness, revoke_session, session_store
from tests.support.fixtures import bearer_problem, problem
from tests.support.live import PASSWORD, FakeClock, add_device, on_clock, register_device

SHORT = {"session_idle_timeout": 60, "access_token_ttl": 30, "max_concurrent_devices": 1,
         "concurrency_policy": "ask"}


def me(client: Client) -> requests.Response:
    """GET /session/me with the client's token and a fresh DPoP proof, and no refresh on 401."""
    url = client.base_url + "/session/me"
    return requests.get(url, headers=client.auth_headers("GET", url), timeout=10)


def post_refresh(client: Client, refresh_token: str) -> requests.Response:
    url = client.base_url + "/session/refresh"
    return requests.post(url, json={"refresh_token": refresh_token}, headers={"DPoP": client.proof("POST", url)},
                         timeout=10)


def test_a_device_that_only_refreshes_keeps_its_place(make_server):
    # The reproduction: idle 60 s, tokens 30 s, limit 1, ask; A only refreshes for 90 s.
    url, ctx = make_server(**SHORT)
    ctx.clock = clock = FakeClock()
    a = register_device(url)
    b = add_device(ctx, a)
    on_clock(clock, a, b)
    a.login(PASSWORD)
    for _ in range(4):
        clock.advance(25)
        a.refresh()
    with pytest.raises(ConcurrentLoginRequired):
        b.login(PASSWORD)
    assert me(a).status_code == 200


@pytest.mark.parametrize("gaps", [
    pytest.param((20,) * 12, id="four-minutes-of-use-20-s-apart"),
    pytest.param((59,) * 3, id="each-just-inside-the-configured-60-s"),  # never shorter than configured
])
def test_a_session_used_within_the_idle_timeout_lives_on_and_ends_once_idle_past_it(make_server, gaps):
    url, ctx = make_server(session_idle_timeout=60, access_token_ttl=3600)
    ctx.clock = clock = FakeClock()
    client = register_device(url)
    on_clock(clock, client)
    client.login(PASSWORD)
    for gap in gaps:
        clock.advance(gap)
        assert me(client).status_code == 200
    rule = liveness(ctx.settings)
    clock.advance(rule.idle_timeout + rule.touch_every)
    assert bearer_problem(me(client)) == (401, "session_revoked", "idle_timeout")


def test_a_login_that_drops_an_idle_device_ends_its_session(make_server):
    url, ctx = make_server(**SHORT)
    ctx.clock = clock = FakeClock()
    a = register_device(url)
    b = add_device(ctx, a)
    on_clock(clock, a, b)
    a.login(PASSWORD)
    old_session, old_refresh = a.session_id, a.refresh_token
    rule = liveness(ctx.settings)
    clock.advance(rule.idle_timeout + rule.touch_every)
    b.login(PASSWORD)  # A is idle: no 409, and its session is ended with it
    ended = session_store(ctx).get(old_session)
    assert (ended.status, ended.revoked_reason) == ("revoked", "idle_timeout")
    refreshed = post_refresh(a, old_refresh)
    assert problem(refreshed) == (401, "session_revoked", "idle_timeout")


def _drop_presence_entry(ctx, *, user_uuid: str, device_id: str) -> None:
    """What an older version did to idle entries: remove them without ending the session."""
    ctx.dynamodb.update_item(TableName=ctx.tables.presence, Key={"user_uuid": {"S": user_uuid}},
                             UpdateExpression="REMOVE entries.#d SET #v = #v + :one",
                             ExpressionAttributeNames={"#d": device_id, "#v": "version"},
                             ExpressionAttributeValues={":one": {"N": "1"}})


def test_a_session_the_presence_no_longer_counts_is_not_usable(make_server):
    url, ctx = make_server(**SHORT)
    ctx.clock = clock = FakeClock()
    a = register_device(url)
    on_clock(clock, a)
    a.login(PASSWORD)
    _drop_presence_entry(ctx, user_uuid=a.key_file.user_uuid, device_id=a.key_file.device_id)
    clock.advance(liveness(ctx.settings).touch_every)
    assert bearer_problem(me(a)) == (401, "session_revoked", "idle_timeout")
    assert session_store(ctx).get(a.session_id).status == "revoked"


def test_a_refresh_of_an_uncounted_session_ends_it(make_server):
    url, ctx = make_server(**SHORT)
    a = register_device(url)
    a.login(PASSWORD)
    _drop_presence_entry(ctx, user_uuid=a.key_file.user_uuid, device_id=a.key_file.device_id)
    refreshed = post_refresh(a, a.refresh_token)
    assert problem(refreshed) == (401, "session_revoked", "idle_timeout")


def test_a_touch_that_reached_only_the_session_still_counts_at_login(make_server):
    # The session record is the truth: a login that finds the presence stale re-reads it.
    url, ctx = make_server(**SHORT)
    ctx.clock = clock = FakeClock()
    a = register_device(url)
    b = add_device(ctx, a)
    on_clock(clock, a, b)
    a.login(PASSWORD)
    clock.advance(liveness(ctx.settings).idle_timeout)
    now = int(clock().timestamp())
    ctx.dynamodb.update_item(TableName=ctx.tables.sessions, Key={"session_id": {"S": a.session_id}},
                             UpdateExpression="SET last_seen_epoch = :now",
                             ExpressionAttributeValues={":now": {"N": str(now)}})
    clock.advance(liveness(ctx.settings).touch_every + 1)
    with pytest.raises(ConcurrentLoginRequired):
        b.login(PASSWORD)


def test_logout_all_ends_a_session_the_user_index_does_not_show_yet(make_server):
    # The user index is eventually consistent; logout_all decides from the consistent presence.
    url, ctx = make_server(max_concurrent_devices=2)
    a = register_device(url)
    a.login(PASSWORD)
    b = add_device(ctx, a)
    b.login(PASSWORD)

    def lagging_index(parsed, model, **_):
        if model.name == "Query":  # the index has not caught up with B's login yet
            parsed["Items"] = [i for i in parsed.get("Items", []) if i["session_id"]["S"] != b.session_id]
            parsed["Count"] = len(parsed["Items"])

    ctx.dynamodb.meta.events.register("after-call.dynamodb.Query", lagging_index)
    try:
        response = a.request("POST", "/session/logout_all", json={"include_current": False})
        assert response.status_code == 204
    finally:
        ctx.dynamodb.meta.events.unregister("after-call.dynamodb.Query", lagging_index)
    assert bearer_problem(me(b)) == (401, "session_revoked", "remote_logout")
    assert me(a).status_code == 200


def test_the_first_ending_of_a_session_stands(make_server):
    # A logout that read the session before a login displaced it must not rewrite why and when
    # it ended (the event stream and the session list would tell the wrong story).
    url, ctx = make_server(concurrency_policy="force")
    a = register_device(url)
    a.login(PASSWORD)
    stale = session_store(ctx).get(a.session_id)
    b = add_device(ctx, a)
    b.login(PASSWORD)
    revoke_session(ctx, session=stale, reason="logged_out")
    ended = session_store(ctx).get(a.session_id)
    assert (ended.status, ended.revoked_reason, ended.by_device) == ("revoked", "displaced", b.key_file.device_id)
