"""The outbox (SPEC §11): every session end, whatever its reason, puts one event into the security
events feed in the transaction that ends the session, so that no session ends without its event —
even when the process is killed in the middle."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from common.database import dynamo
from sessions import service as sessions
from sessions.feed_store import FEED
from sessions.models import RevokeReason
from tests.conftest import config_env, unique_name
from tests.support.live import PASSWORD, FakeClock, add_device, on_clock, register_device
from tests.support.seats import open_session
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def feed_rows(ctx) -> list[dict]:
    rows, args = [], {"TableName": ctx.tables.security_events, "KeyConditionExpression": "feed = :f",
                      "ExpressionAttributeValues": {":f": {"S": FEED}}, "ConsistentRead": True}
    while True:
        page = ctx.dynamodb.query(**args)
        rows += [dynamo.from_item(item) for item in page["Items"]]
        if not page.get("LastEvaluatedKey"):
            return rows
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def rows_of(ctx, session_ids) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {sid: [] for sid in session_ids}
    for row in feed_rows(ctx):
        if row["session_id"] in found:
            found[row["session_id"]].append(row)
    return found


def test_each_way_a_session_ends_puts_one_event_with_its_reason_and_initiator(make_server):
    url, ctx = make_server(max_concurrent_devices=1, concurrency_policy="force", session_idle_timeout=60)
    ctx.clock = clock = FakeClock()
    a = register_device(url)
    b = add_device(ctx, a, name="b")
    c = add_device(ctx, a, name="c")
    on_clock(clock, a, b, c)
    ended = {}
    a.login(PASSWORD)
    ended[a.session_id] = ("logged_out", "user", a.key_file.device_id)
    a.logout()
    a.login(PASSWORD)
    ended[a.session_id] = ("displaced", "policy", b.key_file.device_id)
    b.login(PASSWORD)  # force: displaces a
    clock.advance(3600)  # b idles out; c's login drops it in its transaction
    ended[b.session_id] = ("idle_timeout", "system", None)
    c.login(PASSWORD)
    ended[c.session_id] = ("admin", "admin", None)
    assert sessions.end_all_sessions(ctx, user_uuid=c.key_file.user_uuid, reason=RevokeReason.ADMIN) == 1
    b.login(PASSWORD)
    old_refresh = b.refresh_token
    b.refresh()
    clock.advance(ctx.settings.refresh_reuse_grace + 1)
    ended[b.session_id] = ("refresh_reuse", "system", None)
    reused = b.http.post(url + "/session/refresh", json={"refresh_token": old_refresh},
                         headers={"DPoP": b.proof("POST", url + "/session/refresh")}, timeout=10)
    assert (reused.status_code, reused.json()["code"]) == (401, "refresh_token_reused")
    live = open_session(ctx, user_uuid=c.key_file.user_uuid, device_id=c.key_file.device_id, device_name="c")

    found = rows_of(ctx, [*ended, live.session.session_id])
    assert found.pop(live.session.session_id) == []  # a live session has no event
    for session_id, (reason, initiator, by_device) in ended.items():
        assert len(found[session_id]) == 1, (reason, found[session_id])
        row = found[session_id][0]
        assert (row["reason"], row["initiating_entity"], row.get("by_device")) == (reason, initiator, by_device)
        assert row["user_uuid"] == a.key_file.user_uuid and row[dynamo.TTL_ATTRIBUTE] > row["event_epoch"]
        record = sessions.session_store(ctx).get(session_id)
        assert record.status == "revoked" and record.revoked_reason == reason
        assert row["device_id"] == record.device_id


def test_an_access_token_never_outlives_its_sessions_max_lifetime(make_server):
    url, ctx = make_server(session_max_lifetime=600, access_token_ttl=900)
    client = register_device(url)
    client.login(PASSWORD)
    claims = ctx.jwt.decode(client.access_token)
    assert claims["exp"] == sessions.session_store(ctx).get(client.session_id).expires_epoch


@pytest.mark.slow
def test_no_session_ends_without_its_event_when_the_process_is_killed_mid_way(base_config, make_server):
    _, ctx = make_server()  # creates the tables
    user_uuid = str(uuid.uuid4())
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}, **config_env(base_config)}
    kills = 0
    # Were the event a second write after the ending one, about one kill in four would land between
    # them (the round trip of that write in a round of three or four): eight kills would miss it
    # with a probability of 0.75^8 = 0.1.
    for _ in range(8):
        worker = subprocess.Popen([sys.executable, "-m", "tests.support.ending_worker", user_uuid], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert worker.stdout.readline().strip() == "ready"
        time.sleep(random.uniform(0.3, 1.0))
        worker.kill()  # SIGKILL: no cleanup, wherever it is
        worker.wait()
        kills += 1

    def events() -> Counter[str]:
        return Counter(row["session_id"] for row in feed_rows(ctx) if row["user_uuid"] == user_uuid)

    def ended_sessions() -> set[str]:
        return {r.session_id for r in sessions.session_store(ctx).list_for_user(user_uuid) if r.status == "revoked"}

    def agreed() -> tuple[Counter[str], set[str]] | None:
        # A killed worker's last transaction may still be committing in DynamoDB Local (the request
        # was sent whole), and the user index is eventually consistent: read both again until they
        # agree. A session ended without its event, or an event without its end, never does.
        rows, ended = events(), ended_sessions()
        return (rows, ended) if set(rows) == ended else None

    rows, ended = wait_until(agreed, timeout=30, what="every ended session with its event, no other")
    assert kills == 8 and len(ended) > 20
    assert max(rows.values()) == 1


def test_the_sweeper_ends_sessions_over_by_time_each_once_with_its_event(make_server):
    # Tables of its own: the sweep ends every session over by time, this module's others too.
    url, ctx = make_server(max_concurrent_devices=0, session_idle_timeout=600, session_max_lifetime=3600,
                           table_prefix=unique_name("sweep") + "_")
    ctx.clock = clock = FakeClock()
    old = register_device(url)
    idle, used = add_device(ctx, old, name="idle"), add_device(ctx, old, name="used")
    on_clock(clock, old, idle, used)
    for client in (old, idle, used):  # logged in 300 s apart
        client.login(PASSWORD)
        clock.advance(300)
    assert used.request("GET", "/session/me").status_code == 200  # used again, 300 s after its login
    clock.advance(400)  # old and idle: no request for longer than the idle timeout (600 s + 60)
    assert sessions.sweep_ended(ctx) == 2  # old and idle: no request for longer than the idle timeout
    assert sessions.sweep_ended(ctx) == 0  # each ends once
    clock.advance(3600)  # used: past its max lifetime
    assert sessions.sweep_ended(ctx) == 1
    found = rows_of(ctx, [old.session_id, idle.session_id, used.session_id])
    assert {sid: [(r["reason"], r["initiating_entity"]) for r in rows] for sid, rows in found.items()} == {
        old.session_id: [("idle_timeout", "system")], idle.session_id: [("idle_timeout", "system")],
        used.session_id: [("max_lifetime", "system")]}
    presence = sessions.read_presence(ctx, user_uuid=idle.key_file.user_uuid)
    assert presence.entries == {}  # out of the presence with their end
    for client in (old, idle, used):
        record = sessions.session_store(ctx).get(client.session_id)
        assert record.status == "revoked" and record.live_shard is None


def test_a_session_used_after_the_index_said_due_is_not_swept(make_server):
    url, ctx = make_server(session_idle_timeout=600)
    ctx.clock = clock = FakeClock()
    client = register_device(url)
    client.login(PASSWORD)
    clock.advance(700)
    session = sessions.session_store(ctx).get(client.session_id)
    # A request wins the race: the session records activity after the sweeper read it as over.
    sessions.session_store(ctx).touch(session, now=int(clock().timestamp()) - 100, idle_cutoff=0)
    now = int(clock().timestamp())
    moment = clock()
    assert not sessions.session_store(ctx).end_over(session, reason="idle_timeout", at=moment.isoformat(),
                                                    at_ms=now * 1000, idle_cutoff=now - 600 - 60)
    assert rows_of(ctx, [client.session_id])[client.session_id] == []
