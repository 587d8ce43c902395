"""/session: listing and ending sessions, history pages, and refresh-token rotation with reuse
detection (SPEC §4 session_manager)."""
from __future__ import annotations

import base64
import json
import secrets
import threading
import uuid
from datetime import timedelta

import pytest
import requests

from common.crypto.tokens import keyed_token, token_digest
from tests.support.fixtures import bearer_problem, problem
from tests.support.live import PASSWORD, FakeClock, add_device, on_clock, register_device
from common.clock import utc_now

SESSION_FIELDS = {"session_id", "device_id", "device_name", "created_at", "last_seen_at", "ip", "user_agent",
                  "current", "status", "revoked_reason"}
HISTORY_FIELDS = {"at", "device_id", "ip", "user_agent", "result", "evicted"}


def devices(make_server, count: int, **settings):
    """(ctx, clock, [clients]): `count` devices of one new user, on an app with `settings` and a FakeClock."""
    url, ctx = make_server(**settings)
    ctx.clock = clock = FakeClock()
    first = register_device(url)
    clients = [first] + [add_device(ctx, first, name=f"device {n}") for n in range(2, count + 1)]
    on_clock(clock, *clients)
    return ctx, clock, clients


def sessions_by_id(client) -> dict[str, dict]:
    """Every session the list still holds, ended ones too (one page of up to 100)."""
    body = client.get_json("/session/list?include_ended=true&limit=100")
    assert body["next_cursor"] is None
    return {s["session_id"]: s for s in body["sessions"]}


def me(client):
    return client.request("GET", "/session/me")


def post_refresh(client, refresh_token: str) -> requests.Response:
    """A raw refresh, with a fresh DPoP proof by the device's key (the sessions are bound)."""
    url = client.base_url + "/session/refresh"
    return client.http.post(url, json={"refresh_token": refresh_token}, headers={"DPoP": client.proof("POST", url)},
                            timeout=10)


def cursor_of(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# --- GET /session/list -------------------------------------------------------------------

def test_list_marks_the_caller_and_shows_displaced_sessions(make_server):
    _, clock, (a, b, c) = devices(make_server, 3, max_concurrent_devices=2, concurrency_policy="force")
    stranger = register_device(a.base_url)
    stranger.login(PASSWORD)
    for client in (a, b):
        client.login(PASSWORD)
        clock.advance(10)
    listed = sessions_by_id(a)
    assert set(listed) == {a.session_id, b.session_id}
    assert listed[a.session_id]["current"] is True and listed[b.session_id]["current"] is False
    assert {s["status"] for s in listed.values()} == {"active"}

    c.login(PASSWORD)  # the limit is two: a, the oldest login, is displaced
    listed = sessions_by_id(c)
    assert set(listed) == {a.session_id, b.session_id, c.session_id}
    for session in listed.values():
        assert SESSION_FIELDS <= set(session), session
        assert session["created_at"].endswith("Z") and session["last_seen_at"].endswith("Z")
    assert (listed[a.session_id]["status"], listed[a.session_id]["revoked_reason"]) == ("revoked", "displaced")
    assert (listed[b.session_id]["status"], listed[b.session_id]["revoked_reason"]) == ("active", None)
    assert [s["session_id"] for s in listed.values() if s["current"]] == [c.session_id]
    assert listed[c.session_id]["device_id"] == c.key_file.device_id
    assert listed[c.session_id]["ip"] == "127.0.0.1"


# --- DELETE /session/<id> ----------------------------------------------------------------

def test_delete_another_device_session_logs_it_out(make_server):
    _, _, (a, b) = devices(make_server, 2, max_concurrent_devices=2)
    a.login(PASSWORD)
    b.login(PASSWORD)
    assert a.request("DELETE", f"/session/{b.session_id}").status_code == 204
    assert bearer_problem(me(b)) == (401, "session_revoked", "remote_logout")
    assert me(a).status_code == 200
    listed = sessions_by_id(a)
    assert (listed[b.session_id]["status"], listed[b.session_id]["revoked_reason"]) == ("revoked", "remote_logout")


def test_delete_own_current_session_ends_it(make_server):
    _, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    assert a.request("DELETE", f"/session/{a.session_id}").status_code == 204
    assert bearer_problem(me(a))[:2] == (401, "session_revoked")


def test_delete_of_a_session_that_is_not_the_callers_is_not_found(make_server):
    _, _, (a,) = devices(make_server, 1)
    stranger = register_device(a.base_url)
    a.login(PASSWORD)
    stranger.login(PASSWORD)
    for session_id in (stranger.session_id, str(uuid.uuid4())):
        assert problem(a.request("DELETE", f"/session/{session_id}"))[:2] == (404, "session_not_found")
    # Session ids are UUIDs: anything else matches no route.
    assert problem(a.request("DELETE", "/session/not-a-session"))[:2] == (404, "not_found")
    assert me(stranger).status_code == 200  # untouched
    assert me(a).status_code == 200


# --- POST /session/logout_all --------------------------------------------------------------

def test_logout_all_without_current_then_with_it(make_server):
    _, _, (a, b, c) = devices(make_server, 3, max_concurrent_devices=0)
    for client in (a, b, c):
        client.login(PASSWORD)
    response = a.request("POST", "/session/logout_all", json={"include_current": False})
    assert response.status_code == 204
    for other in (b, c):
        assert bearer_problem(me(other)) == (401, "session_revoked", "remote_logout")
    assert me(a).status_code == 200

    assert a.request("POST", "/session/logout_all").status_code == 204  # no body: include_current defaults to true
    status, code, reason = bearer_problem(me(a))
    assert (status, code) == (401, "session_revoked") and reason in ("logged_out", "remote_logout")


def test_logout_all_with_a_malformed_body_is_invalid(make_server):
    _, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    response = a.request("POST", "/session/logout_all", data=b"{oops", headers={"Content-Type": "application/json"})
    assert problem(response)[:2] == (400, "invalid_json")
    assert problem(a.request("POST", "/session/logout_all", json={"include_current": "perhaps"}))[:2] \
        == (400, "invalid_field")
    assert me(a).status_code == 200


# --- GET /session/history ----------------------------------------------------------------

def test_history_pages_newest_first_with_chained_cursors(make_server):
    _, clock, clients = devices(make_server, 5, max_concurrent_devices=0)
    for client in clients:
        client.login(PASSWORD)
        clock.advance(1)
    reader = clients[-1]
    pages, cursor = [], None
    while True:
        body = reader.get_json("/session/history?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            break
        assert len(pages) < 5, "the cursors do not end"
    assert [len(page) for page in pages] == [2, 2, 1]
    items = [item for page in pages for item in page]
    for item in items:
        assert HISTORY_FIELDS <= set(item), item
        assert item["result"] == "success" and item["ip"] == "127.0.0.1"
    assert [i["device_id"] for i in items] == [c.key_file.device_id for c in reversed(clients)]
    assert [i["at"] for i in items] == sorted({i["at"] for i in items}, reverse=True)  # newest first, no repeats


def test_history_keeps_the_order_of_attempts_within_one_second(make_server):
    # The server's clock tells these logins apart (200 ms each), so "newest first" must hold too.
    _, clock, clients = devices(make_server, 5, max_concurrent_devices=0)
    clock.moment = clock.moment.replace(microsecond=0) + timedelta(seconds=1, milliseconds=50)
    for client in clients:
        client.login(PASSWORD)
        clock.moment += timedelta(milliseconds=200)
    items = clients[0].get_json("/session/history?limit=10")["items"]
    assert [i["device_id"] for i in items] == [c.key_file.device_id for c in reversed(clients)]


@pytest.mark.parametrize("cursor", ["garbage!!", "e30", cursor_of({"k": 5}), cursor_of({"k": ""}), cursor_of([1])])
def test_history_refuses_a_garbage_cursor(make_server, cursor):
    _, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    response = a.request("GET", "/session/history", params={"cursor": cursor})
    assert problem(response)[:2] == (400, "invalid_field")
    assert response.json()["field"] == "cursor"


@pytest.mark.parametrize("limit", ["0", "abc", "-1", "101", "1.5", ""])
def test_history_refuses_a_bad_limit(make_server, limit):
    _, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    response = a.request("GET", "/session/history", params={"limit": limit})
    assert problem(response)[:2] == (400, "invalid_field")
    assert response.json()["field"] == "limit"


# --- POST /session/refresh -----------------------------------------------------------------

def test_refresh_rotates_the_refresh_token(make_server):
    _, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    first_access, first_refresh = a.access_token, a.refresh_token
    response = post_refresh(a, first_refresh)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["refresh_token"] != first_refresh and body["access_token"] != first_access
    assert body["expires_in"] > 0
    a.access_token, a.refresh_token = body["access_token"], body["refresh_token"]
    assert me(a).json()["session_id"] == a.session_id
    assert post_refresh(a, a.refresh_token).status_code == 200  # the successor rotates in turn


def test_reused_refresh_token_within_grace_gets_the_same_pair_then_revokes_after(make_server):
    ctx, clock, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    old = a.refresh_token
    first = post_refresh(a, old)
    assert first.status_code == 200
    again = post_refresh(a, old)  # a parallel refresh of the same app, a moment later
    assert again.status_code == 200
    assert (again.json()["access_token"], again.json()["refresh_token"]) == \
        (first.json()["access_token"], first.json()["refresh_token"])

    clock.advance(ctx.settings.refresh_reuse_grace + 1)
    assert problem(post_refresh(a, old))[:2] == (401, "refresh_token_reused")
    a.access_token = first.json()["access_token"]
    assert bearer_problem(me(a)) == (401, "session_revoked", "refresh_reuse")
    assert problem(post_refresh(a, first.json()["refresh_token"])) == (401, "session_revoked", "refresh_reuse")


def test_a_grace_retry_never_hands_out_a_successor_that_is_not_the_stored_one(make_server):
    """During a rolling deploy the rotation may have been made by a release that formed its refresh
    tokens otherwise: the retry then re-derives a token whose digest is not the stored one, which
    could never refresh. It is refused at once instead of handed out."""
    ctx, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    old = a.refresh_token
    assert post_refresh(a, old).status_code == 200
    other = token_digest("a token of another form", purpose="refresh")
    ctx.dynamodb.update_item(TableName=ctx.tables.sessions, Key={"session_id": {"S": a.session_id}},
                             UpdateExpression="SET refresh_digest = :other",
                             ExpressionAttributeValues={":other": {"S": other}})
    assert problem(post_refresh(a, old))[:2] == (401, "invalid_refresh_token")


def test_parallel_refreshes_of_one_token_all_get_the_same_pair(make_server):
    ctx, _, (a,) = devices(make_server, 1)
    ctx.clock = utc_now  # real time: the threads race as on a phone that woke up
    on_clock(utc_now, a)
    a.login(PASSWORD)
    token, results = a.refresh_token, []
    barrier = threading.Barrier(6)

    def refresh():
        proof = a.proof("POST", a.base_url + "/session/refresh")  # each its own: a proof is single-use
        barrier.wait()
        results.append(requests.post(a.base_url + "/session/refresh", json={"refresh_token": token},
                                     headers={"DPoP": proof}, timeout=30))

    threads = [threading.Thread(target=refresh) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
    assert len({r.json()["refresh_token"] for r in results}) == 1
    a.access_token = results[0].json()["access_token"]
    assert me(a).status_code == 200


def test_forged_refresh_token_is_invalid_and_leaves_the_session_alone(make_server):
    _, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    forged = [f"{a.session_id}.{generation}.{secrets.token_urlsafe(32)}" for generation in (0, 1, 2, 7)]
    forged += [f"{uuid.uuid4()}.1.{secrets.token_urlsafe(32)}", "garbage", f"{a.session_id}.x.y"]
    for token in forged:
        assert problem(post_refresh(a, token))[:2] == (401, "invalid_refresh_token"), token
    assert me(a).status_code == 200
    assert post_refresh(a, a.refresh_token).status_code == 200


def test_a_refresh_token_carrying_another_holder_is_invalid(make_server):
    # The token names its user, device and end so that a refresh writes without reading first: a
    # token edited to name someone else's is refused by its MAC, and the session stays as it was.
    _, _, (a, b) = devices(make_server, 2, max_concurrent_devices=0)
    a.login(PASSWORD)
    b.login(PASSWORD)
    session_id, generation, kid, carried, mac = a.refresh_token.split(".")
    other = b.refresh_token.split(".")[3]
    user, device, expires = json.loads(base64.urlsafe_b64decode(carried + "=" * (-len(carried) % 4)))
    edited = [other, cursor_of([user, device, expires + 86400]), cursor_of([user, b.key_file.device_id, expires]), ""]
    for holder in edited:
        token = ".".join([session_id, generation, kid, holder, mac])
        assert problem(post_refresh(a, token))[:2] == (401, "invalid_refresh_token"), holder
    assert post_refresh(a, a.refresh_token).status_code == 200


def test_a_refresh_token_of_the_previous_form_still_refreshes_into_the_new_one(make_server):
    # <session>.<generation>.<kid>.<mac>, as handed out before tokens carried their holder: read, then
    # rotated as before, and its successor carries its holder.
    ctx, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    old_form = _previous_form(ctx, a)
    refreshed = post_refresh(a, old_form)
    assert refreshed.status_code == 200, refreshed.text
    successor = refreshed.json()["refresh_token"]
    assert len(successor.split(".")) == 5
    assert post_refresh(a, successor).status_code == 200


def _previous_form(ctx, client) -> str:
    """Give `client`'s session a refresh token of the previous form, as if issued before the upgrade."""
    kid = ctx.refresh_secrets.newest_kid()
    token = f"{client.session_id}.1.{kid}.{keyed_token(ctx.refresh_secrets.get(kid), f'refresh:{client.session_id}:1')}"
    ctx.dynamodb.update_item(TableName=ctx.tables.sessions, Key={"session_id": {"S": client.session_id}},
                             UpdateExpression="SET refresh_digest = :d, refresh_gen = :g",
                             ExpressionAttributeValues={":d": {"S": token_digest(token, purpose="refresh")},
                                                        ":g": {"N": "1"}})
    return token


def test_refresh_of_a_logged_out_session_says_why(make_server):
    _, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    refresh_token = a.refresh_token
    a.logout()
    assert problem(post_refresh(a, refresh_token)) == (401, "session_revoked", "logged_out")
