"""Every open GET /session/events stream holds a server thread, so their number is capped (issue 16
item 1): per session and per user a new stream replaces the oldest, which hears `stream_replaced`
and ends at once; per process one more is refused with 503 too_many_streams; and a stream ends when
its access token expires."""
from __future__ import annotations

import time

import requests

from tests.sessions.test_events import EventReader, open_sessions
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device


def _still_open(reader: EventReader) -> bool:
    return reader.thread.is_alive()


def test_a_third_stream_of_one_session_replaces_the_oldest(make_server):
    url, _ = make_server()  # two per session by default
    client = register_device(url)
    client.login(PASSWORD)
    first = EventReader(url, client)  # opened = subscribed: the first is the oldest
    second = EventReader(url, client)
    assert first.opened and second.opened
    third = EventReader(url, client)
    assert third.opened
    assert first.wait(30) == ("stream_replaced", {})
    time.sleep(0.3)
    assert _still_open(second) and _still_open(third)
    client.logout()
    assert second.wait(30)[0] == third.wait(30)[0] == "session_revoked"


def test_streams_of_one_user_beyond_the_cap_replace_the_oldest(make_server):
    url, ctx = make_server(max_concurrent_devices=0, events_max_streams_per_user=3)
    first = register_device(url)
    tokens = [token for _, token in open_sessions(ctx, first, 5).values()]
    readers = []
    # Bearer on purpose: open_sessions opens unbound sessions, whose streams take ?access_token=.
    for token in tokens:  # five sessions, one stream each: the two oldest are replaced in turn
        readers.append(EventReader(url, token))
        assert readers[-1].opened  # subscribed before the next one opens
    assert [r.wait(30) for r in readers[:2]] == [("stream_replaced", {})] * 2
    time.sleep(0.3)
    assert all(_still_open(r) for r in readers[2:])


def test_a_full_process_refuses_one_more_stream_with_503_and_takes_it_once_one_ends(make_server):
    url, _ = make_server(events_max_streams=2)
    clients = [register_device(url) for _ in range(3)]
    for client in clients:
        client.login(PASSWORD)
    open_ones = [EventReader(url, c) for c in clients[:2]]
    assert all(r.opened for r in open_ones)
    refused = requests.get(url + "/session/events", headers=clients[2].auth_headers("GET", url + "/session/events"),
                           timeout=10)
    assert refused.status_code == 503, refused.text
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert refused.json()["code"] == "too_many_streams" and refused.headers["Retry-After"] == "10"
    clients[0].logout()
    assert open_ones[0].wait(30)[0] == "session_revoked"  # its place is free before the event is sent
    replacement = EventReader(url, clients[2])
    assert replacement.opened
    clients[2].logout()
    assert replacement.wait(30)[0] == "session_revoked"


def test_a_head_request_gives_its_stream_place_back(make_server):
    url, _ = make_server(events_max_streams=1)
    client = register_device(url)
    client.login(PASSWORD)
    for _ in range(3):  # HEAD: the server closes the stream without reading it, which must free the place
        response = requests.head(url + "/session/events", headers=client.auth_headers("HEAD", url + "/session/events"),
                                 timeout=10)
        assert response.status_code == 200, response.headers
    reader = EventReader(url, client)
    assert reader.opened
    client.logout()
    assert reader.wait(30)[0] == "session_revoked"


def test_a_stream_ends_when_its_access_token_expires(make_server):
    url, ctx = make_server(events_heartbeat=1)
    ctx.clock = clock = FakeClock()
    client = register_device(url)
    on_clock(clock, client)
    client.login(PASSWORD)
    reader = EventReader(url, client)
    assert reader.opened
    clock.advance(ctx.settings.access_token_ttl + 1)
    assert reader.wait(30) == ("token_expired", {})


def test_a_head_request_opens_no_stream_and_so_replaces_none(make_server):
    url, _ = make_server()  # two per session by default
    client = register_device(url)
    client.login(PASSWORD)
    readers = [EventReader(url, client), EventReader(url, client)]
    assert all(r.opened for r in readers)
    for _ in range(3):
        head = requests.head(url + "/session/events", headers=client.auth_headers("HEAD", url + "/session/events"),
                             timeout=10)
        assert head.status_code == 200 and head.headers["Content-Type"].startswith("text/event-stream")
    client.logout()
    assert [r.wait(30)[0] for r in readers] == ["session_revoked"] * 2
