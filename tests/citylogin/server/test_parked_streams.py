"""Event streams under citylogin's gunicorn worker hold no thread (citylogin.server.stream_pump): a worker
with 4 request threads serves 300 open streams of one session, keeps answering other requests,
sends every stream its heartbeats, tells every one of them when the session ends and closes them
cleanly (the chunked body's last chunk), and lets a stream whose client left go."""
from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.citylogin.server.test_gunicorn_slow_clients import Sockets, healthz_seconds
from tests.conftest import FAST_ARGON2, config_env
from tests.support.live import PASSWORD, register_device
from tests.support.services import running_gunicorn

ROOT = Path(__file__).resolve().parents[3]
THREADS, STREAMS, LEAVING = 4, 300, 50
METRICS_TOKEN = "parked-streams-metrics"
HEARTBEAT = b"\r\n: keep-alive\n\n\r\n"  # a chunk of its own (not the head's "Connection: keep-alive")


@pytest.fixture(scope="module")
def few_threads(dynamodb_endpoint, data_dir, table_prefix, tmp_path_factory):
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir, "table_prefix": table_prefix,
                      "log_level": "WARNING", **FAST_ARGON2, "events_heartbeat": 1,
                      "events_max_streams_per_session": 1000, "events_max_streams_per_user": 1000,
                      "metrics_token": METRICS_TOKEN})
    with running_gunicorn(env, "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--workers", "1",
                          "--threads", str(THREADS), cwd=tmp_path_factory.mktemp("gunicorn")) as url:
        parts = urlsplit(url)
        yield url, (parts.hostname, parts.port)


def events_request(client, url: str, address, method: str = "GET") -> bytes:
    """A raw request for the event stream, with its own proof (a DPoP proof is single-use)."""
    auth = client.auth_headers(method, url + "/session/events")
    return (f"{method} /session/events HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
            f"Authorization: {auth['Authorization']}\r\nDPoP: {auth['DPoP']}\r\n"
            "Accept: text/event-stream\r\n\r\n").encode()


def open_streams(sockets: Sockets, client, url: str, address, count: int) -> None:
    for _ in range(count):
        sockets.open(address, events_request(client, url, address))


def logged_in(url: str):
    client = register_device(url)
    client.login(PASSWORD)
    return client


def open_stream_gauge(url: str) -> float:
    text = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30).text
    return float(re.search(r"^citylogin_event_streams_active(?:\{[^}]*\})? (\S+)$", text, re.M).group(1))


def test_three_hundred_streams_on_four_threads_all_beat_and_all_hear_the_end(few_threads):
    url, address = few_threads
    client = logged_in(url)
    streams = Sockets()
    try:
        open_streams(streams, client, url, address, STREAMS)
        # each answered, its retry sent and, a second later, a heartbeat: no thread waits on any
        streams.read_until(lambda s: len(s.with_text(HEARTBEAT)) == STREAMS, timeout=60)
        assert len(streams.with_text(b"HTTP/1.1 200 OK")) == STREAMS
        assert len(streams.with_text(b"retry: 3000")) == STREAMS
        assert len(streams.with_text(HEARTBEAT)) == STREAMS
        assert not streams.closed
        assert max(healthz_seconds(url) for _ in range(5)) < 1.0
        assert requests.get(url + "/session/me", headers=client.auth_headers("GET", url + "/session/me"),
                            timeout=5).status_code == 200

        client.logout()
        streams.read_until(lambda s: len(s.closed) == STREAMS, timeout=30)
        # the event in its own chunk, then the last chunk
        told = [fd for fd, data in streams.received.items()
                if b'event: session_revoked\ndata: {"reason": "logged_out"' in data and data.endswith(b"\r\n0\r\n\r\n")]
        assert len(told) == STREAMS
        assert len(streams.closed) == STREAMS
    finally:
        streams.close()


def test_a_stream_whose_client_left_is_let_go(few_threads):
    url, address = few_threads
    client = logged_in(url)
    before = open_stream_gauge(url)
    staying, leaving = Sockets(), Sockets()
    try:
        open_streams(staying, client, url, address, 5)
        open_streams(leaving, client, url, address, LEAVING)
        leaving.read_until(lambda s: len(s.with_text(b"retry: 3000")) == LEAVING, timeout=30)
        assert open_stream_gauge(url) == before + 5 + LEAVING
        leaving.close()
        deadline = time.monotonic() + 20
        while open_stream_gauge(url) != before + 5 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert open_stream_gauge(url) == before + 5
    finally:
        staying.close()
        leaving.close()


def test_a_head_request_is_answered_and_parks_nothing(few_threads):
    url, address = few_threads
    client = logged_in(url)
    before = open_stream_gauge(url)
    with socket.create_connection(address, timeout=10) as sock:  # kept open: a parked stream would stay
        sock.sendall(events_request(client, url, address, "HEAD"))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        assert open_stream_gauge(url) == before
