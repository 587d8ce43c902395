"""The request heads citylogin's worker answers from its event loop (a prepared static answer) are a
subset of what gunicorn's own parser takes, and read the same: for any head, built from what clients send
and what an attacker would try (repeated or conflicting fields, "_" in a name, folding, bare LF, NUL,
bodies, obs-text), if the worker's reading takes it, gunicorn's parser takes it too without a refusal,
with the same method, path, version, no body, the connection kept, and the same X-Request-ID and
If-None-Match values. Under a real gunicorn: tests/citylogin/server/test_gunicorn_static_answers.py."""
from __future__ import annotations

import logging
import os
import selectors
import socket
from concurrent.futures import ThreadPoolExecutor

from gunicorn import http as gunicorn_http
from gunicorn.config import Config
from gunicorn.http import errors as gunicorn_errors
from gunicorn.http.body import LengthReader
from hypothesis import given, settings, strategies as st

from gunicorn.workers.gthread import TConn

from citylogin.app import create_app
from citylogin.server.gunicorn_worker import HEAD_READ_HERE_LIMITS, ThreadWorker
from citylogin.server.plain_request import plain_request
from oidc.discovery.static_answers import EXTENSION_KEY, JWKS, PATHS
from tests.support.waiting import readable_within


def _config() -> Config:
    config = Config()
    for name, value in HEAD_READ_HERE_LIMITS.items():
        config.set(name, value)
    return config


CONFIG = _config()
SCHEME_FIELDS = frozenset(name.lower().encode() for name in CONFIG.secure_scheme_headers)

# Mostly what a plain read carries, so that many heads are plain, with what would make one not plain or
# refused by gunicorn mixed in (a name or value may come twice).
PLAIN_NAMES = [b"Host", b"host", b"X-Request-ID", b"If-None-Match", b"if-none-match", b"Connection", b"Accept",
               b"Content-Length", b"X-Forwarded-Proto", b"X-Forwarded-SSL", b"Content-Type", b"User-Agent",
               b"Transfer-Encoding", b"Expect"]
OTHER_NAMES = [b"Upgrade", b"HTTP2-Settings", b"X_Forwarded_For",
               b"X-Forwarded-Protocol", b"Bad Name", b"", b"X-Request-ID ", b"Content-Length\x00"]
PLAIN_VALUES = [b"", b"x", b"0", b"keep-alive", b"Keep-Alive", b"https", b'"a"', b'W/"a,b", "c"', b"*",
                b"abc-123", b"a b", b"a\tb", b"text/html, */*;q=0.8", b"chunked", b"100-continue"]
OTHER_VALUES = [b"1", b"00", b" 0 ", b"close", b"keep-alive, close", b"on",
                b"x\x00y", b"\xe9", b"h2c", b"-1", b"x\ry", b"x\x7fy"]
NAMES = st.sampled_from(PLAIN_NAMES * 4 + OTHER_NAMES)
VALUES = st.sampled_from(PLAIN_VALUES * 4 + OTHER_VALUES)
FIELD = st.one_of(st.tuples(NAMES, st.sampled_from([b": ", b":", b":\t", b" : "]), VALUES).map(b"".join),
                  st.sampled_from([b" folded", b"\tfolded", b"no-colon", b":empty-name", b"X: a\nY: b"]))
PLAIN_LINE = st.builds(lambda method, path, version: b"%s %s %s" % (method, path.encode(), version),
                       st.sampled_from([b"GET", b"HEAD"]), st.sampled_from(PATHS),
                       st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]))
OTHER_LINE = st.builds(lambda method, target, version: method + b" " + target + b" " + version,
                       st.sampled_from([b"GET", b"HEAD", b"POST", b"get", b"OPTIONS", b"GET "]),
                       st.sampled_from([b"/.well-known/jwks.json?x", b"http://h/.well-known/jwks.json",
                                        b"/.well-known/jwks.json#f", b"//.well-known/jwks.json", b"*", b"/%2e"]),
                       st.sampled_from([b"HTTP/1.1", b"HTTP/2.0", b"HTTP/1.10", b"http/1.1"]))
REQUEST_LINE = st.one_of(PLAIN_LINE, PLAIN_LINE, OTHER_LINE)


@settings(max_examples=1500)
@given(REQUEST_LINE, st.lists(FIELD, max_size=5))
def test_what_the_loop_answers_gunicorn_reads_the_same(request_line, fields):
    head = b"\r\n".join([request_line, *fields]) + b"\r\n\r\n"
    plain = plain_request(head, SCHEME_FIELDS)
    if plain is None:
        return  # gunicorn's parser and a thread take it, as before
    try:
        request = next(gunicorn_http.get_parser(CONFIG, iter([head]), ("127.0.0.1", 1)))
    except (gunicorn_errors.ParseException, ValueError) as refused:
        raise AssertionError(f"the loop would answer what gunicorn refuses ({refused!r}): {head!r}") from None
    assert (request.method, request.path, request.query) == (plain.method, plain.path, "")
    assert request.version == (1, int(plain.minor)) and not request.should_close()
    assert isinstance(request.body.reader, LengthReader) and request.body.reader.length == 0  # no body
    values = {name: [value for key, value in request.headers if key == name] for name in ("X-REQUEST-ID",
                                                                                         "IF-NONE-MATCH")}
    assert values["X-REQUEST-ID"] == ([plain.request_id] if plain.request_id is not None else [])
    assert values["IF-NONE-MATCH"] == plain.if_none_match


OTHER_PATH_LINE = st.builds(lambda method, path: method + b" " + path + b" HTTP/1.1",
                            st.sampled_from([b"GET", b"HEAD"]),
                            st.sampled_from([b"/oidc/userinfo", b"/.well-known/jwks.json/", b"/.well-known/jwks",
                                             b"/.WELL-KNOWN/jwks.json", b"/healthz"]))
STATIC_PATHS = frozenset(path.encode() for path in PATHS[:2])  # some of the prepared paths, not all


@settings(max_examples=800)
@given(st.one_of(REQUEST_LINE, OTHER_PATH_LINE), st.lists(FIELD, max_size=5))
def test_the_paths_the_worker_answers_are_chosen_from_the_request_line_alone(request_line, fields):
    """With the worker's paths, a head is read as without them if its path is one of them, else not at all."""
    head = b"\r\n".join([request_line, *fields]) + b"\r\n\r\n"
    whole = plain_request(head, SCHEME_FIELDS)
    expected = whole if whole is not None and whole.path.encode() in STATIC_PATHS else None
    chosen = plain_request(head, SCHEME_FIELDS, STATIC_PATHS)
    assert (chosen and vars_of(chosen)) == (expected and vars_of(expected))


def vars_of(request) -> tuple:
    return request.method, request.path, request.minor, request.request_id, request.if_none_match


def test_plain_reads_are_taken_and_the_rest_left_to_gunicorn():
    def plain(*lines: bytes):
        return plain_request(b"\r\n".join(lines) + b"\r\n\r\n", SCHEME_FIELDS)

    assert plain(b"GET /.well-known/jwks.json HTTP/1.1", b"Host: a", b"Content-Length: 0") is not None
    assert plain(b"HEAD /.well-known/jwks.json HTTP/1.0", b"Connection: keep-alive") is not None
    assert plain(b"GET /.well-known/jwks.json HTTP/1.0") is None  # closes after the answer
    assert plain(b"GET /.well-known/jwks.json HTTP/1.1", b"Connection: close") is None
    assert plain(b"GET /.well-known/jwks.json HTTP/1.1", b"Content-Length: 1") is None
    assert plain(b"GET /.well-known/jwks.json HTTP/1.1", b"Transfer-Encoding: chunked") is None
    assert plain(b"GET /.well-known/jwks.json HTTP/1.1", b"Host: a", b"Host: b") is None
    assert plain(b"GET /.well-known/jwks.json HTTP/1.1", b"X-Forwarded-Proto: https",
                 b"X-Forwarded-SSL: off") is None
    assert plain(b"GET /.well-known/jwks.json HTTP/1.1", b"X_Request_ID: a") is None
    assert plain(b"GET /.well-known/jwks.json HTTP/1.1", b"A: b", b" folded") is None


def test_an_answer_the_client_is_slow_to_take_is_finished_by_a_thread_and_the_connection_kept(base_config):
    """The loop sends what the socket takes; the rest goes to a pool thread, and the connection then waits
    in the loop for its next request, as after any answer."""
    app = create_app(base_config)
    worker = ThreadWorker(0, os.getpid(), [], None, 30, _config(), logging.getLogger(__name__))
    worker.tpool, worker.poller = ThreadPoolExecutor(max_workers=1), selectors.DefaultSelector()
    worker.method_queue.init()
    # what init_process and load_wsgi set before the loop runs
    worker.incoming, worker.read_timeout, worker._date = {}, 10.0, (0, b"")
    worker.static, worker.scheme_fields = app.extensions[EXTENSION_KEY], SCHEME_FIELDS
    server, client = socket.socketpair()
    with server, client:
        server.setblocking(False)
        client.settimeout(60)
        filled = 0
        while True:  # the client reads nothing yet: the server's side is full
            try:
                filled += server.send(b"x" * 65536)
            except BlockingIOError:
                break
        client.sendall(b"GET " + JWKS.encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        conn = TConn(worker.cfg, server, ("127.0.0.1", 1), ("127.0.0.1", 2))
        worker.nr_conns = 1
        worker.enqueue_req(conn)  # the loop reads the request and answers it
        assert worker.nr == 1 and id(conn) not in worker.incoming and conn not in worker.keepalived_conns
        reader = client.makefile("rb")
        assert reader.read(filled) == b"x" * filled
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += reader.readline()
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: keep-alive\r\n" in head
        length = int(head.split(b"\r\nContent-Length: ")[1].split(b"\r\n")[0])
        assert reader.read(length) == app.test_client().get(JWKS).data
        assert readable_within(worker.method_queue.fileno(), 60), "the thread never handed it back"
        worker.method_queue.run_callbacks(None)
        assert list(worker.keepalived_conns) == [conn] and worker.nr_conns == 1
    worker.tpool.shutdown()
