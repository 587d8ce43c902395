"""keys.ring_refresher (SPEC §10): an app re-reads the key ring on its own thread, so an idle
process publishes a rotated key without any request paying for the read; an outage of DynamoDB
costs one log line, not one a read; the thread ends with its app. Across processes:
tests/citylogin/test_key_ring_reload.py."""
from __future__ import annotations

import gc
import logging
import threading
import time

from citylogin.app import create_app
from database import dynamo
from keys.ring import SIGNING_KINDS, ensure_ring, rotate
from keys.ring_import import initial_entries
from keys.ring_reader import RingReader
from keys.ring_refresher import THREAD_NAME, jwks_max_age
from keys.ring_store import KeyRingStore
from tests.citylogin.test_dynamodb_calls import CallCounter
from tests.conftest import unique_name
from tests.keys.test_key_ring import aes, create_ring_table, settings_for
from tests.support.tcp_faults import refused_endpoint

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
    new_kids = {entry.kid for entry in rotate(ctx.key_ring) if entry.kind in SIGNING_KINDS}  # EdDSA, RSA, P-256
    new_kid = next(iter(new_kids))
    counter.take()  # the rotation's own calls

    deadline = time.monotonic() + 4 * RELOAD_SECONDS
    while new_kid not in jwks_kids(client):
        assert time.monotonic() < deadline, "the rotated key was never published"
        time.sleep(0.1)
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
    with refused_endpoint() as endpoint, caplog.at_level(logging.WARNING, logger="keys.ring_reader"):
        down = dynamo.make_client(region="us-east-1", endpoint_url=endpoint, connect_timeout=0.2, read_timeout=0.2,
                                  max_attempts=1)
        reader = RingReader(KeyRingStore(down, store.table, aes()), contents)
        for _ in range(5):
            assert reader.reload() is contents
    # Only this reader's logger: another test's refresher thread may still be warning about its own ring.
    assert [record.getMessage() for record in caplog.records if record.name == "keys.ring_reader"] == [
        "key ring not re-read, keeping the keys read before: EndpointConnectionError"]
