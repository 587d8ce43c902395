"""common.keys.ring_refresher (SPEC §10): an app re-reads the key ring on its own thread, so an idle
process publishes a rotated key without any request paying for the read; an outage of DynamoDB
costs one log line, not one a read; the thread ends with its app. Across processes:
tests/citylogin/test_key_ring_reload.py."""
from __future__ import annotations

import gc
import logging
import threading
import time

from citylogin.app import create_app
from common.database import dynamo
from common.keys.ring import SIGNING_KINDS, ensure_ring, rotate
from common.keys.ring_import import initial_entries
from common.keys.ring_reader import RingReader
from common.keys.ring_refresher import THREAD_NAME, jwks_max_age
from common.keys.ring_store import KeyRingStore
from tests.citylogin.test_dynamodb_calls import CallCounter
from tests.conftest import unique_name
from tests.common.keys.test_key_ring import aes, create_ring_table, settings_for
from tests.support.tcp_faults import refused_endpoint
from tests.support.waiting import wait_until

RELOAD_SECONDS = 3.0  # a read every second; a request would read only after 3 s without one


def refresher_threads() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == THREAD_NAME}


def jwks_kids(client) -> set[str]:
    return {key["kid"] for key in client.get("/.well-known/jwks.json").get_json()["keys"]}


def test_an_idle_app_publishes_a_rotated_key_read_by_its_own_thread(base_config):
    app = create_app({**base_config, "key_ring_reload_seconds": RELOAD_SECONDS})
    ctx, client = app.extensions["citylogin"], app.test_client()
    counter = CallCounter(ctx.dynamodb)  # counts every thread's calls but the refresher's
    old_kids = jwks_kids(client)
    refresher, reads = ctx.ring_refresher, []
    own_refresh = refresher.refresh
    refresher.refresh = lambda: (own_refresh(), reads.append(time.monotonic()))  # type: ignore[method-assign]
    new_kids = {entry.kid for entry in rotate(ctx.key_ring) if entry.kind in SIGNING_KINDS}  # EdDSA, RSA, P-256
    counter.take()  # the rotation's own calls
    # The second read the thread ends after the rotation began after it. Waited for, not timed: the JWKS
    # asked for right after it is a read old (a request would read only after RELOAD_SECONDS without one).
    done = len(reads)
    wait_until(lambda: len(reads) >= done + 2, timeout=60, what="two reads of the refresher's own")
    assert jwks_kids(client) == old_kids | new_kids
    assert counter.take() == {}  # no request read the ring: the refresher did
    response = client.get("/.well-known/jwks.json")
    assert response.headers["Cache-Control"] == f"public, max-age={jwks_max_age(RELOAD_SECONDS)}"
    assert jwks_max_age(RELOAD_SECONDS) == 1 and jwks_max_age(60) == 20
    ctx.ring_refresher.stop()


def test_the_refresher_thread_ends_with_its_app(base_config):
    before = refresher_threads()
    app = create_app({**base_config, "key_ring_reload_seconds": 0.6})
    started = refresher_threads() - before
    assert len(started) == 1
    del app
    gc.collect()
    thread = started.pop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_dynamodb_outage_is_one_log_line_and_keeps_the_keys(dynamodb_endpoint, tmp_path, caplog):
    store = KeyRingStore(dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, read_timeout=20),
                         unique_name("ring"), aes())
    create_ring_table(store.client, store.table)
    contents, _ = ensure_ring(store, initial=lambda: initial_entries(settings_for(tmp_path)))
    with refused_endpoint() as endpoint, caplog.at_level(logging.WARNING, logger="common.keys.ring_reader"):
        down = dynamo.make_client(region="us-east-1", endpoint_url=endpoint, connect_timeout=0.2, read_timeout=0.2,
                                  max_attempts=1)
        reader = RingReader(KeyRingStore(down, store.table, aes()), contents)
        for _ in range(5):
            assert reader.reload() is contents
    # Only this reader's logger: another test's refresher thread may still be warning about its own ring.
    assert [record.getMessage() for record in caplog.records if record.name == "common.keys.ring_reader"] == [
        "key ring not re-read, keeping the keys read before: EndpointConnectionError"]
