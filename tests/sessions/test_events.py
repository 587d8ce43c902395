"""GET /session/events: the evicted device hears why, within 2 s, at a bounded DynamoDB cost: the
feed's one Query per interval (SPEC §11), whatever the number of streams."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from citylogin.client.api import Client, generate_key, public_key_pem
from devices import service as devices
from sessions import service as sessions
from tests.citylogin.test_dynamodb_calls import CallCounter
from tests.support.live import PASSWORD, add_device, bearer_login, register_device
from tests.support.seats import open_session


class EventReader:
    """Reads one SSE stream in a thread; records the first named event and when it came."""

    def __init__(self, url: str, caller: Client | str) -> None:
        """`caller`: a client of a bound session (its token and a fresh DPoP proof go as headers), or
        the access token of a bearer session, as ?access_token= (what a browser's EventSource sends)."""
        if isinstance(caller, str):
            auth: dict = {"params": {"access_token": caller}}
        else:
            auth = {"headers": caller.auth_headers("GET", url + "/session/events")}
        self.response = requests.get(url + "/session/events", stream=True, timeout=(10, 60), **auth)
        self.event: tuple[str, dict] | None = None
        self.received_at: float | None = None
        self.opened = self.response.status_code == 200
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        name = None
        for line in self.response.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                self.event, self.received_at = (name, json.loads(line[6:])), time.monotonic()
                break
        self.response.close()

    def wait(self, timeout: float) -> tuple[str, dict] | None:
        self.thread.join(timeout)
        return self.event


def test_displaced_device_is_told_why_within_two_seconds(make_server):
    url, ctx = make_server()
    a = register_device(url)
    b = add_device(ctx, a, name="phone B")
    a.login(PASSWORD)
    reader = EventReader(url, a)
    # Opened: the server answers only once the stream is subscribed, so the eviction cannot come too early.
    assert reader.opened and reader.response.headers["Content-Type"].startswith("text/event-stream")
    b.login(PASSWORD, force=True)
    revoked_at = time.monotonic()
    assert reader.wait(30) == ("session_revoked", {"reason": "displaced", "by_device": b.key_file.device_id})
    assert reader.received_at - revoked_at < 2.0


def test_bad_tokens_get_401_not_a_stream(make_server):
    url, _ = make_server()
    for params in ({}, {"access_token": "junk"}):
        response = requests.get(url + "/session/events", params=params, timeout=10)
        assert (response.status_code, response.json()["code"]) == (401, "invalid_token")


def test_the_token_is_not_logged(make_server, caplog):
    url, ctx = make_server(max_concurrent_devices=2)
    a = register_device(url)
    a.login(PASSWORD)
    b = add_device(ctx, a)
    bearer_login(b)  # bearer on purpose: its stream takes the token as ?access_token=
    hidden = [a.access_token, b.access_token]
    with caplog.at_level("INFO"), caplog.at_level("INFO", logger="werkzeug"):
        bound, bearer = EventReader(url, a), EventReader(url, b.access_token)
        assert bound.opened and bearer.opened
        hidden.append(bound.response.request.headers["DPoP"])
        a.logout()
        b.logout()
        bound.wait(30)
        bearer.wait(30)
    assert bound.event[1]["reason"] == bearer.event[1]["reason"] == "logged_out"
    assert "/session/events" in caplog.text and "access_token=[redacted]" in caplog.text
    assert not [secret for secret in hidden if secret in caplog.text]


def open_sessions(ctx, first, count):
    """`count` devices of one user, each with a live session (policy allows them all). The sessions
    are opened server-side without a key, so they are bearer sessions: tests read their streams with
    ?access_token= on purpose."""
    tokens = {}
    for i in range(count):
        issued = devices.issue_device(ctx, user_uuid=first.key_file.user_uuid, device_name=f"d{i}",
                                      is_primary=False, public_key=public_key_pem(generate_key()), csr=None)
        devices.store_new_device(ctx, issued)
        opened = open_session(ctx, user_uuid=issued.record.user_uuid, device_id=issued.record.device_id,
                              device_name=f"d{i}")
        tokens[opened.session.session_id] = (opened.session, opened.tokens.access_token)
    return tokens


def test_two_hundred_streams_cost_bounded_reads_and_all_hear_in_time(make_server):
    count = 200
    url, ctx = make_server(max_concurrent_devices=0, max_registered_devices=count + 5,
                           events_max_streams_per_user=count)
    first = register_device(url)
    tokens = open_sessions(ctx, first, count)
    with ThreadPoolExecutor(32) as pool:
        readers = dict(zip(tokens, pool.map(lambda item: EventReader(url, item[1]), tokens.values()), strict=True))
    assert all(r.opened for r in readers.values())

    counter = CallCounter(ctx.dynamodb)
    time.sleep(1.5)  # let the watcher see every session at least once
    counter.take()
    window = 4.0
    time.sleep(window)
    idle = counter.take()
    polls_per_second = 1 / ctx.settings.events_poll_interval
    # The feed's one Query per interval, whatever the number of streams; no read per session.
    assert idle["GetItem"] == 0 and idle["BatchGetItem"] == 0, idle
    assert idle["Query"] <= window * polls_per_second + 1, idle

    revoked_at = {}
    for session_id, (session, _) in tokens.items():
        sessions.revoke_session(ctx, session=session, reason="remote_logout", by_device=first.key_file.device_id)
        revoked_at[session_id] = time.monotonic()
    for reader in readers.values():
        reader.wait(10)
    late = {sid: r.received_at - revoked_at[sid] for sid, r in readers.items()
            if r.event is None or r.received_at - revoked_at[sid] >= 2.0}
    assert late == {}
    assert {r.event[1]["reason"] for r in readers.values()} == {"remote_logout"}
