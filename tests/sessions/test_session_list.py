"""GET /session/list pages (newest first, live sessions unless asked, a cursor bound to the caller)
and the sessions table's TTL: a week past a session's end (issue 11 item 3)."""
from __future__ import annotations

import pytest

from common.timefmt import parse_iso
from sessions.service import session_store
from sessions.store import SESSION_RETENTION_SECONDS
from tests.sessions.test_session_endpoints import cursor_of, devices
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, add_device, on_clock
from tests.support.seats import open_session

SESSION_ID = "0b7c6f1e-4a59-4c1e-9d3a-6f0f2b1c9e11"


def relog(ctx, client, times: int, clock, *, step: float = 1) -> None:
    """Log `client`'s device in `times` times through the service, `step` seconds apart: each ends the one before."""
    key = client.key_file
    for _ in range(times):
        open_session(ctx, user_uuid=key.user_uuid, device_id=key.device_id, device_name=key.device_name)
        clock.advance(step)


def pages(client, query: str) -> list[list[dict]]:
    """Every page of GET /session/list?`query`, following next_cursor."""
    found, cursor = [], None
    while True:
        body = client.get_json(f"/session/list?{query}" + (f"&cursor={cursor}" if cursor else ""))
        found.append(body["sessions"])
        cursor = body["next_cursor"]
        if not cursor:
            return found
        assert len(found) < 10, "the cursors do not end"


def test_pages_of_ten_over_26_sessions_newest_first_without_repeats(make_server):
    ctx, clock, (a,) = devices(make_server, 1)
    relog(ctx, a, 25, clock)
    a.login(PASSWORD)
    found = pages(a, "limit=10&include_ended=true")
    assert [len(page) for page in found] == [10, 10, 6]
    listed = [s for page in found for s in page]
    assert len({s["session_id"] for s in listed}) == 26
    assert [s["created_at"] for s in listed] == sorted({s["created_at"] for s in listed}, reverse=True)
    assert listed[0]["session_id"] == a.session_id and listed[0]["current"] is True
    assert [s["status"] for s in listed] == ["active"] + ["revoked"] * 25
    assert {s["revoked_reason"] for s in listed[1:]} == {"logged_out"}


def test_only_live_sessions_by_default_in_full_pages(make_server):
    ctx, clock, (a, b) = devices(make_server, 2, max_concurrent_devices=2)
    b.login(PASSWORD)
    clock.advance(1)
    relog(ctx, a, 12, clock)             # twelve ended sessions between the two live ones
    a.login(PASSWORD)
    body = a.get_json("/session/list")
    assert [s["session_id"] for s in body["sessions"]] == [a.session_id, b.session_id]
    assert body["next_cursor"] is None
    found = pages(a, "limit=1")          # each page reads on past the ended ones until it is full
    assert [[s["session_id"] for s in page] for page in found] == [[a.session_id], [b.session_id]]
    assert a.get_json("/session/list?include_ended=false&limit=100")["sessions"] == body["sessions"]


def test_an_idle_session_is_ended_and_left_out(make_server):
    _, clock, (a, b) = devices(make_server, 2, max_concurrent_devices=2)
    b.login(PASSWORD)
    clock.advance(1)
    a.login(PASSWORD)
    clock.advance(1000)
    a.get_json("/session/me")            # a stays in use; b goes idle
    clock.advance(1000)
    listed = a.get_json("/session/list")["sessions"]
    assert [s["session_id"] for s in listed] == [a.session_id]
    ended = a.get_json("/session/list?include_ended=1")["sessions"]
    assert [(s["status"], s["revoked_reason"]) for s in ended] == [("active", None), ("expired", "idle_timeout")]


def test_a_cursor_of_one_user_reads_nothing_of_another(make_server):
    ctx, clock, (a,) = devices(make_server, 1)
    relog(ctx, a, 5, clock)
    a.login(PASSWORD)
    of_a = {s["session_id"] for page in pages(a, "limit=2&include_ended=true") for s in page}
    cursor = a.get_json("/session/list?limit=2&include_ended=true")["next_cursor"]
    assert cursor and len(of_a) == 6

    _, other_clock, (b,) = devices(make_server, 1)
    other_clock.moment = clock.moment
    b.login(PASSWORD)
    response = b.request("GET", "/session/list", params={"cursor": cursor, "include_ended": "true"})
    if response.status_code == 200:
        assert not {s["session_id"] for s in response.json()["sessions"]} & of_a
    else:
        assert problem(response)[:2] == (400, "invalid_field")


@pytest.mark.parametrize("cursor", [
    "garbage!!", "e30", cursor_of([1]), cursor_of({"c": 5, "s": SESSION_ID}), cursor_of({"c": "", "s": SESSION_ID}),
    cursor_of({"c": "yesterday", "s": SESSION_ID}), cursor_of({"c": "2024-01-01T00:00:00Z", "s": "not-a-uuid"}),
    cursor_of({"c": "2024-01-01T00:00:00Z", "s": SESSION_ID.upper()}), "x" * 1025])
def test_a_bad_cursor_is_an_invalid_field(make_server, cursor):
    _, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    response = a.request("GET", "/session/list", params={"cursor": cursor})
    assert problem(response)[:2] == (400, "invalid_field")
    assert response.json()["field"] == "cursor"


@pytest.mark.parametrize("field, value", [("limit", "0"), ("limit", "101"), ("limit", "abc"), ("limit", "1.5"),
                                          ("limit", ""), ("include_ended", "perhaps")])
def test_a_bad_limit_or_include_ended_is_an_invalid_field(make_server, field, value):
    _, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    response = a.request("GET", "/session/list", params={field: value})
    assert problem(response)[:2] == (400, "invalid_field")
    assert response.json()["field"] == field


def test_a_cursor_of_a_session_gone_meanwhile_still_pages_on(make_server):
    ctx, clock, (a,) = devices(make_server, 1)
    relog(ctx, a, 3, clock)
    a.login(PASSWORD)
    first = a.get_json("/session/list?limit=2&include_ended=true")
    ctx.dynamodb.delete_item(TableName=ctx.tables.sessions,
                             Key={"session_id": {"S": first["sessions"][1]["session_id"]}})
    rest = a.get_json(f"/session/list?limit=2&include_ended=true&cursor={first['next_cursor']}")
    assert len(rest["sessions"]) == 2 and rest["next_cursor"] is None


# --- the TTL: a week past the end -------------------------------------------------------------

def ttl_and_end(ctx, session_id: str) -> tuple[int, int]:
    record = session_store(ctx).get(session_id)
    end = record.expires_epoch if record.revoked_at is None else int(parse_iso(record.revoked_at).timestamp())
    return record.expires_ttl, end


def test_an_active_session_is_kept_a_week_past_its_max_lifetime(make_server):
    ctx, _, (a,) = devices(make_server, 1)
    a.login(PASSWORD)
    ttl, end = ttl_and_end(ctx, a.session_id)
    assert ttl == end + SESSION_RETENTION_SECONDS == session_store(ctx).get(a.session_id).expires_epoch + 7 * 86400


@pytest.mark.parametrize("ending", ["logout", "relogin", "remote", "displaced", "idle"])
def test_an_ended_session_is_kept_a_week_past_its_end(make_server, ending):
    ctx, clock, (a, b) = devices(make_server, 2, max_concurrent_devices=1 if ending == "displaced" else 2,
                                 concurrency_policy="force")
    a.login(PASSWORD)
    ended = a.session_id
    clock.advance(600)
    if ending == "logout":
        a.logout()
    elif ending == "relogin":
        a.login(PASSWORD)
    elif ending == "remote":
        b.login(PASSWORD)
        assert b.request("DELETE", f"/session/{ended}").status_code == 204
    elif ending == "displaced":
        b.login(PASSWORD)
    else:                                # idle: dropped (and ended) by the next login of the user
        clock.advance(3600)
        b.login(PASSWORD)
    ttl, end = ttl_and_end(ctx, ended)
    assert end == int(clock.moment.timestamp())
    assert ttl == end + SESSION_RETENTION_SECONDS
    record = session_store(ctx).get(ended)
    assert ttl < record.expires_epoch + SESSION_RETENTION_SECONDS


def test_sessions_started_within_one_second_page_without_repeats_or_gaps(make_server):
    # created_at has whole seconds: the cursor also holds the session id, which orders equal times.
    ctx, clock, (a,) = devices(make_server, 1)
    relog(ctx, a, 6, clock, step=0)
    a.login(PASSWORD)
    found = pages(a, "limit=2&include_ended=true")
    assert [len(page) for page in found] == [2, 2, 2, 1]
    assert len({s["session_id"] for page in found for s in page}) == 7


def test_each_session_says_the_class_it_counts_under(make_server):
    """The Sessions tab shows each session's kind of device (SPEC §5's classes; `tv` for a screen signed in
    by the device authorization grant): the class the session counted under at its login."""
    ctx, clock, (a,) = devices(make_server, 1, max_concurrent_devices=2)
    phone = add_device(ctx, a, name="phone", device_class="mobile")
    on_clock(clock, phone)
    a.login(PASSWORD)
    phone.login(PASSWORD)
    listed = {s["session_id"]: s["device_class"] for s in a.get_json("/session/list")["sessions"]}
    assert listed == {a.session_id: "desktop", phone.session_id: "mobile"}   # the CLI says desktop
