"""The shipped gunicorn settings (deploy/gunicorn.conf.py: citylogin's threaded worker, 2 workers x
64 threads) against the flood of issue 16 item 1: 500 idle event streams with one user's access
token and 300 sockets that trickle their headers. /healthz keeps answering within a second, the
streams beyond the per-user cap end with `stream_replaced`, and the slow sockets are cut with 408
at CITYLOGIN_REQUEST_READ_TIMEOUT. And the keep-alive race: a kept-alive connection outlasts a proxy's
idle timeout, and one whose next request came as its timeout ended is served, not reset."""
from __future__ import annotations

import json
import os
import select
import selectors
import socket
import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from citylogin.server.gunicorn_worker import MAX_BODY_BYTES as WORKER_BODY_LIMIT, ThreadWorker
from common.config import Settings
from tests.conftest import FAST_ARGON2, config_env
from tests.support.live import PASSWORD, register_device
from tests.support.services import running_gunicorn
from common.web.app_factory import MAX_BODY_BYTES

ROOT = Path(__file__).resolve().parents[3]
STREAMS, SLOW_SOCKETS = 500, 300
READ_TIMEOUT = Settings.model_fields["request_read_timeout"].default  # shipped: 10 s


@pytest.fixture(scope="module")
def shipped(dynamodb_endpoint, data_dir, table_prefix, tmp_path_factory):
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir, "table_prefix": table_prefix,
                      "log_level": "WARNING", **FAST_ARGON2,
                      # a stream whose client left ends at its next heartbeat: gunicorn then stops sooner
                      "events_heartbeat": 2})
    with running_gunicorn(env, "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                          cwd=tmp_path_factory.mktemp("gunicorn")) as url:
        parts = urlsplit(url)
        yield url, (parts.hostname, parts.port)


def healthz_seconds(url: str) -> float:
    started = time.monotonic()
    response = requests.get(url + "/healthz", timeout=5)
    assert response.status_code == 200
    return time.monotonic() - started


class Sockets:
    """Raw client sockets, read together with poll() (select() stops at descriptor 1024)."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []
        self.received: dict[int, bytes] = {}
        self.closed: set[int] = set()

    def open(self, address, first_bytes: bytes) -> None:
        sock = socket.create_connection(address, timeout=10)
        sock.sendall(first_bytes)
        sock.setblocking(False)
        self.socks.append(sock)
        self.received[sock.fileno()] = b""

    def read_until(self, done, timeout: float) -> None:
        """Read whatever arrives until done(self) or `timeout` seconds."""
        poller = select.poll()
        for sock in self.socks:
            if sock.fileno() not in self.closed:
                poller.register(sock, select.POLLIN)
        deadline = time.monotonic() + timeout
        while not done(self) and time.monotonic() < deadline:
            for fd, _ in poller.poll(200):
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if data:
                    self.received[fd] += data
                else:
                    self.closed.add(fd)
                    poller.unregister(fd)

    def with_text(self, text: bytes) -> list[int]:
        return [fd for fd, data in self.received.items() if text in data]

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def test_five_hundred_idle_streams_and_three_hundred_slow_sockets_leave_healthz_answering(shipped):
    url, address = shipped
    client = register_device(url)
    client.login(PASSWORD)
    streams, slow = Sockets(), Sockets()
    try:
        for _ in range(STREAMS):  # each with a proof of its own: a DPoP proof is single-use
            auth = client.auth_headers("GET", url + "/session/events")
            streams.open(address, (f"GET /session/events HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
                                   f"Authorization: {auth['Authorization']}\r\nDPoP: {auth['DPoP']}\r\n"
                                   "Accept: text/event-stream\r\n\r\n").encode())
        # Every stream is answered (none waits for a thread), and the ones beyond one user's cap
        # in each of the two workers are replaced, ended and closed.
        cap = Settings.model_fields["events_max_streams_per_user"].default
        streams.read_until(lambda s: len(s.with_text(b"HTTP/1.1 200")) == STREAMS
                           and len(s.closed) >= STREAMS - 2 * cap, timeout=90)
        assert len(streams.with_text(b"HTTP/1.1 200")) == STREAMS
        assert len(streams.with_text(b"event: stream_replaced")) >= STREAMS - 2 * cap
        assert len(streams.closed) >= STREAMS - 2 * cap
        assert max(healthz_seconds(url) for _ in range(3)) < 1.0

        opened_at = time.monotonic()
        for _ in range(SLOW_SOCKETS):
            slow.open(address, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.5):
                for sock in slow.socks:
                    try:
                        sock.send(b"X")
                    except OSError:
                        pass
        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        time.sleep(1.5)  # every slow socket has sent a few more bytes
        assert time.monotonic() - opened_at < READ_TIMEOUT
        assert max(healthz_seconds(url) for _ in range(5)) < 1.0

        # At the deadline each slow socket hears 408 and is closed; none was ever answered otherwise.
        slow.read_until(lambda s: len(s.closed) == SLOW_SOCKETS, timeout=READ_TIMEOUT + 10)
        stop.set()
        assert len(slow.closed) == SLOW_SOCKETS
        assert time.monotonic() - opened_at >= READ_TIMEOUT - 1
        assert len(slow.with_text(b"HTTP/1.1 408 Request Timeout")) == SLOW_SOCKETS
        assert b'"code": "request_timeout"' in next(iter(slow.received.values()))
        assert healthz_seconds(url) < 1.0
    finally:
        streams.close()
        slow.close()


def test_a_body_that_waits_for_100_continue_gets_it_once_and_is_answered(shipped):
    _, address = shipped
    body = b'{"refresh_token": "x"}'
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"POST /session/refresh HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 401 ") and b"invalid_refresh_token" in answer
    assert b"100 Continue" not in answer


def test_a_head_over_64_kib_is_refused_with_431(shipped):
    _, address = shipped
    with socket.create_connection(address, timeout=10) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: a\r\n" * 7000)  # and no end
        except OSError:
            pass  # closed while sending: the answer is still there to read
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 ") and b'"code": "request_header_too_large"' in answer


def exchange(address, request: bytes) -> bytes:
    """Send one raw request that asks the server to close, and read the answer to the end."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def healthz_with(headers: bytes, target: bytes = b"/healthz") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n"


@pytest.mark.parametrize("headers", [
    pytest.param(b"X-Long: " + b"a" * 8400 + b"\r\n", id="one-8.2-KB-header"),
    pytest.param(b"".join(b"X-Line-%d: v\r\n" % i for i in range(150)), id="150-header-lines"),
    pytest.param(b"X-Long: " + b"a" * 60000 + b"\r\n", id="one-60-KB-header"),
])
def test_heads_within_64_kib_reach_the_app_whatever_their_shape(shipped, headers):
    # gunicorn's own limits (8190-byte lines, 100 of them) would answer these with an HTML 431.
    answer = exchange(shipped[1], healthz_with(headers))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_a_long_request_line_within_64_kib_reaches_the_app(shipped):
    answer = exchange(shipped[1], healthz_with(b"", target=b"/no-such-page?q=" + b"a" * 10000))
    assert answer.startswith(b"HTTP/1.1 404 ") and b"application/problem+json" in answer


@pytest.mark.parametrize("headers", [
    pytest.param(b"X-Long: " + b"a" * 66000 + b"\r\n", id="one-header"),
    pytest.param(b"".join(b"X-Line-%05d: v\r\n" % i for i in range(4500)), id="many-lines"),
])
def test_a_whole_head_over_64_kib_is_a_431_problem(shipped, headers):
    answer = exchange(shipped[1], healthz_with(headers))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 ") and b"Content-Type: application/problem+json" in head
    assert json.loads(body)["code"] == "request_header_too_large"


@pytest.mark.parametrize("request_bytes", [
    pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", id="header-without-colon"),
    pytest.param(b"GET /healthz?access_token=secret-in-line HTTP/9.9\r\nHost: x\r\n\r\n", id="bad-version"),
    pytest.param(b"G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", id="bad-method"),
])
def test_what_the_parser_refuses_is_a_problem_document(shipped, request_bytes):
    answer = exchange(shipped[1], request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"Content-Type: application/problem+json" in head
    assert json.loads(body)["code"] == "bad_request"


def test_a_kept_alive_connection_idle_past_gunicorns_default_still_carries_the_next_request(shipped):
    url, address = shipped
    request = f"GET /healthz HTTP/1.1\r\nHost: {address[0]}\r\n\r\n".encode()
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(request)
        first = read_one_answer(sock)
        time.sleep(3)  # past gunicorn's own 2 s; the shipped 75 s outlasts a proxy's 60 s
        sock.sendall(request)
        assert first.startswith(b"HTTP/1.1 200") and read_one_answer(sock).startswith(b"HTTP/1.1 200")


def read_one_answer(sock: socket.socket) -> bytes:
    """One answer with a Content-Length body, read whole from a blocking socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or pytest.fail(f"closed after {data!r}")
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536) or pytest.fail("closed in the body")
    return head + b"\r\n\r\n" + body


class KeptAlive:
    """What gunicorn keeps of a kept-alive connection: its socket, its deadline, its close."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock, self.timeout, self.closed = sock, timeout, False

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def test_an_expired_kept_alive_connection_whose_next_request_came_is_served_not_reset():
    """The keep-alive race: the loop finds a connection's keep-alive timeout over, but its next request
    arrived since it last looked. Closing it would reset the connection and lose that request; it is
    served. An idle one is closed as before (a real worker's method on real sockets and a real poller)."""
    worker = ThreadWorker.__new__(ThreadWorker)  # the loop's state alone: no process, no threads
    worker.poller, worker.keepalived_conns, worker.nr_conns = selectors.DefaultSelector(), deque(), 3
    served: list = []
    worker.enqueue_req = served.append
    pairs = [socket.socketpair() for _ in range(3)]
    expired, later = time.monotonic() - 1, time.monotonic() + 3600
    deadlines = (expired, expired, later)
    waiting, idle, current = (KeptAlive(ours, at) for (ours, _), at in zip(pairs, deadlines, strict=True))
    for conn in (waiting, idle, current):
        conn.sock.setblocking(False)
        worker.keepalived_conns.append(conn)
        worker.poller.register(conn.sock, selectors.EVENT_READ, None)
    pairs[0][1].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the request that came just now
    try:
        worker.murder_keepalived()
        assert served == [waiting] and not waiting.closed                   # served, not reset
        assert idle.closed and list(worker.keepalived_conns) == [current]   # closed as gunicorn closes it
        assert worker.nr_conns == 2 and not current.closed
    finally:
        worker.poller.close()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def test_pipelined_requests_on_one_connection_are_all_answered(shipped):
    _, address = shipped
    body = b'{"refresh_token": "x"}'
    post = (b"POST /session/refresh HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(post + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + post
                     + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.count(b"HTTP/1.1 401 ") == 2 and answer.count(b"HTTP/1.1 200 ") == 2


def test_the_worker_reads_bodies_up_to_the_apps_limit():
    assert WORKER_BODY_LIMIT == MAX_BODY_BYTES
