"""The prepared static answers (oidc.discovery.static_answers) under gunicorn with citylogin's worker: a plain GET or
HEAD of discovery, the JWKS or the SSF configuration is answered from the worker's event loop, byte for
byte what the Flask route sends (but for Date and X-Request-ID), 200 or 304, with no thread: it is
answered while the worker's one thread is held by another request. Anything else (a query, a body,
"Connection: close", HTTP/1.0 without keep-alive, pipelined requests) goes the usual way, and the
worker's protections (431 for an oversize head, keep-alive) hold for these paths too."""
from __future__ import annotations

import json
import re
import socket
import weakref
from urllib.parse import urlsplit

import pytest
import requests
from click.testing import CliRunner

from citylogin.cli.main import main
from tests.citylogin.test_metrics import TOKEN, scrape, value
from tests.conftest import FAST_ARGON2, config_env
from tests.support.services import running_gunicorn
from tests.support.waiting import wait_until
from oidc.discovery.static_answers import AUTHORIZATION_SERVER, DISCOVERY, JWKS, PATHS, SSF_CONFIGURATION

READ_TIMEOUT = 300  # the held thread below waits this long at most for a body that never comes
_DATE = re.compile(rb"\r\nDate: [^\r\n]*\r\n")


@pytest.fixture(scope="module")
def one_thread(dynamodb_endpoint, data_dir, table_prefix):
    """One worker with one thread: a request the loop answers needs none."""
    # A reload a second: the last test rotates the key ring and waits for the loop's JWKS to show it.
    config = {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir, "table_prefix": table_prefix,
              "log_level": "WARNING", "metrics_token": TOKEN, "request_read_timeout": READ_TIMEOUT,
              "key_ring_reload_seconds": 1.0, **FAST_ARGON2}
    with running_gunicorn(config_env(config), "--worker-class", "citylogin.server.gunicorn_worker.ThreadWorker",
                          "-w", "1", "--threads", "1", "--keep-alive", "75") as url:
        parts = urlsplit(url)
        yield url, (parts.hostname, parts.port), config_env(config)


def read_answer(sock: socket.socket, *, head_only: bool = False) -> bytes:
    """The next whole answer on `sock`: its head and, unless `head_only` or it has none, its body (what
    follows it stays buffered for the next call)."""
    reader = _readers.setdefault(sock, sock.makefile("rb"))
    lines = []
    while not lines or lines[-1] != b"\r\n":
        line = reader.readline(70000)
        assert line.endswith(b"\r\n"), f"closed before a whole head: {b''.join(lines) + line!r}"
        lines.append(line)
    head = b"".join(lines)
    length = re.search(rb"\r\nContent-Length: (\d+)", head)
    no_body = head_only or length is None or head.startswith((b"HTTP/1.1 304", b"HTTP/1.0 304"))
    body = b"" if no_body else reader.read(int(length.group(1)))
    assert no_body or len(body) == int(length.group(1)), "closed in the middle of a body"
    return head + body


_readers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def request(method: str, target: str, *extra: str, version: str = "1.1") -> bytes:
    fields = "".join(f"{field}\r\n" for field in ("Host: localhost", "X-Request-ID: same-for-both", *extra))
    return f"{method} {target} HTTP/{version}\r\n{fields}\r\n".encode()


def exchange(address, raw: bytes, *, head_only: bool = False) -> bytes:
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(raw)
        answer = read_answer(sock, head_only=head_only)
        # Nothing but the answer came: after it, the connection ends or answers the next request.
        if b"\r\nConnection: close\r\n" in answer:
            assert _readers[sock].read() == b""
        else:
            sock.sendall(request("GET", "/healthz"))
            assert read_answer(sock).startswith(b"HTTP/1.1 200 OK\r\n")
        return answer


def without_date(answer: bytes) -> bytes:
    assert len(_DATE.findall(answer)) == 1, answer[:300]
    return _DATE.sub(b"\r\nDate: -\r\n", answer)


def etag_of(address, path: str) -> str:
    head = exchange(address, request("GET", path)).partition(b"\r\n\r\n")[0].decode()
    return re.search(r"\r\nETag: (\"[^\"\r\n]*\")", head).group(1)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("conditional", [False, True])
def test_the_loops_answer_is_the_routes_answer(one_thread, path, method, conditional):
    url, address, _ = one_thread
    extra = [f"If-None-Match: W/\"other\", {etag_of(address, path)}"] if conditional else []
    here = exchange(address, request(method, path, *extra), head_only=method == "HEAD")
    # A query (even an empty one) is not a plain read of the document: the Flask route answers it.
    routed = exchange(address, request(method, path + "?", *extra), head_only=method == "HEAD")
    assert without_date(here) == without_date(routed)
    status = b"304 NOT MODIFIED" if conditional else b"200 OK"
    assert here.startswith(b"HTTP/1.1 " + status + b"\r\n") and b"\r\nConnection: keep-alive\r\n" in here
    assert b"\r\nX-Request-ID: same-for-both\r\n" in here
    body = here.partition(b"\r\n\r\n")[2]
    assert bool(body) == (method == "GET" and not conditional)
    if body:
        assert body == requests.get(url + path, timeout=10).content
        cors = b"\r\nAccess-Control-Allow-Origin: *\r\n" in here
        assert cors == (path != SSF_CONFIGURATION)


def test_an_answer_from_the_loop_needs_no_thread(one_thread):
    url, address, _ = one_thread
    holder = socket.create_connection(address, timeout=30)
    try:
        # Over the body limit: the one thread answers 413 only once it has read the rest, which never
        # comes until the end of this test (READ_TIMEOUT would end it first).
        holder.sendall(b"POST /session/refresh HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 100000\r\n\r\n" + b" " * 70000)
        for path in (DISCOVERY, AUTHORIZATION_SERVER, JWKS, SSF_CONFIGURATION):
            with socket.create_connection(address, timeout=60) as sock:
                for method in ("GET", "HEAD", "GET"):  # and the connection stays open between them
                    sock.sendall(request(method, path))
                    assert read_answer(sock, head_only=method == "HEAD").startswith(b"HTTP/1.1 200 OK\r\n")
        holder.setblocking(False)
        with pytest.raises(BlockingIOError):
            holder.recv(1)  # still held: nothing answered it yet
        holder.setblocking(True)
        holder.sendall(b" " * 30000)
        assert read_answer(holder).startswith(b"HTTP/1.1 413 ")
    finally:
        holder.close()
    samples = scrape(url)
    assert value(samples, "citylogin_http_requests_total", method="GET", route=AUTHORIZATION_SERVER,
                 status="200") >= 2  # counted as the route would count it


def test_unusual_requests_go_the_usual_way(one_thread):
    url, address, _ = one_thread
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request("GET", DISCOVERY, "Connection: close"))
        answer = read_answer(sock)
        assert b"\r\nConnection: close\r\n" in answer and answer.startswith(b"HTTP/1.1 200 OK")
        assert _readers[sock].read() == b""  # closed as it said
    answer = exchange(address, request("GET", JWKS, version="1.0"))
    assert answer.startswith(b"HTTP/1.0 200 OK") and b"\r\nConnection: close\r\n" in answer
    # A GET with a body, or two pipelined requests: each is answered, in order, on one connection.
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request("GET", DISCOVERY, "Content-Length: 2")[:-2] + b"\r\n{}"
                     + request("HEAD", JWKS) + request("GET", SSF_CONFIGURATION))
        assert read_answer(sock).startswith(b"HTTP/1.1 200 OK")
        head = read_answer(sock, head_only=True)
        assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n")
        assert b'"spec_version"' in read_answer(sock)
    refused = exchange(address, request("GET", DISCOVERY, "Host: other"))  # a repeated Host: gunicorn's 400
    assert refused.startswith(b"HTTP/1.1 400 ") and b'"code":"bad_request"' in refused.replace(b" ", b"")


def test_a_client_that_reads_slowly_gets_every_answer_in_order(one_thread):
    """Six hundred requests sent at once to a client that reads through a small window: the server's
    writes fill up, and every answer still comes whole, in order, whichever way each was answered (an
    answer from the loop that the socket cannot take at once: test_gunicorn_worker_plain_requests.py)."""
    _, address, _ = one_thread
    whole = exchange(address, request("GET", JWKS)).partition(b"\r\n\r\n")[2]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: it sets the window
    sock.settimeout(60)
    try:
        sock.connect(address)
        for _ in range(600):  # 36 KB of requests: the server's receive buffer holds them all
            sock.sendall(request("GET", JWKS))
        for _ in range(600):
            answer = read_answer(sock)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\n" + whole)
    finally:
        sock.close()


def test_an_oversize_head_for_a_static_answer_is_still_refused(one_thread):
    _, address, _ = one_thread
    answer = exchange(address, request("GET", DISCOVERY, "X-Padding: " + "x" * 70000))
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_the_loops_jwks_follows_a_rotation(one_thread):  # last: it changes the key ring the others read
    _, address, env = one_thread

    def kids(answer: bytes) -> set[str]:
        return {key["kid"] for key in json.loads(answer.partition(b"\r\n\r\n")[2])["keys"]}

    before = exchange(address, request("GET", JWKS))
    rotated = CliRunner().invoke(main, ["keys", "rotate"], env=env)
    assert rotated.exit_code == 0, rotated.output
    new_kid = rotated.output.split("new jwt key ")[1].split()[0]
    wait_until(lambda: new_kid in kids(exchange(address, request("GET", JWKS))), timeout=60,
               what="the rotated key in the JWKS the worker's loop answers")
    after = exchange(address, request("GET", JWKS, f"If-None-Match: {etag_of(address, JWKS)}"))
    assert after.startswith(b"HTTP/1.1 304 ")
    assert without_date(exchange(address, request("GET", JWKS))) == without_date(
        exchange(address, request("GET", JWKS + "?")))
    assert kids(before) < kids(exchange(address, request("GET", JWKS)))
