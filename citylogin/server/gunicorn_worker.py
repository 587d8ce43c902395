"""citylogin's gunicorn worker: gunicorn's threaded worker, except that no thread waits for a client.

gunicorn's `gthread` worker hands a connection to a pool thread as soon as its first bytes arrive,
and the thread then blocks until the rest of the request head (and body) has come: a few hundred
clients that trickle their headers hold every thread, and the host stops answering (issue 16).
Here the worker's event loop reads each request head, and a body of up to 64 KiB, without
blocking; a pool thread gets the connection only with the whole request in hand. A request that has
not arrived within CITYLOGIN_REQUEST_READ_TIMEOUT seconds of its first byte (of the connection,
for a new one) is cut: 408 problem+json if any of it came, else a silent close. Whatever a thread
still reads from the client (the rest of a body over the limit, which the app refuses with 413)
shares that deadline, so a slow client is cut there too.

An event stream (GET /session/events) holds no thread either: once its head and first bytes are
out, the request's thread parks it with the worker's stream pump (citylogin.server.stream_pump), one
thread that serves every open stream of the process, so a host holds as many as it has open files
(common.web.serving). The worker raises its open-files limit to the hard limit for them.

The public documents (discovery, the JWKS, the SSF configuration) are prepared answers
(oidc.discovery.static_answers): a plain GET or HEAD of one, on a connection that stays open, is answered by the
event loop itself, with no thread, gunicorn parser or WSGI app (about a sixth of the CPU of going
through them, bench/README.md), and logged and counted as its route would be. Anything else about such a request
(a query, a body, an expectation, "Connection: close", a field gunicorn would refuse) sends it the usual
way; tests/citylogin/server/test_gunicorn_worker_plain_requests.py holds the first to a subset of the second.

Use it with `--worker-class citylogin.server.gunicorn_worker.ThreadWorker` (deploy/gunicorn.conf.py).
TLS, HTTP/2 prior knowledge, the PROXY protocol and uWSGI connections are served as gunicorn
serves them (citylogin runs behind a proxy that terminates TLS)."""
from __future__ import annotations

import errno
import itertools
import json
import re
import resource
import select
import selectors
import socket
import ssl
import threading
import time
from concurrent.futures import Future
from functools import partial
from http import HTTPStatus
from typing import Any, Callable

from gunicorn import SERVER, http as gunicorn_http, util
from gunicorn.http import errors as gunicorn_errors
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.http2 import negotiation
from gunicorn.workers import gthread

from citylogin.server.plain_request import plain_request
from citylogin.server.stream_pump import StreamPump
from common import i18n
from common.config import ConfigError, Settings, load_settings
from common.errors import ErrorCode
from oidc.discovery import static_answers
from common.web.request_log import record, request_id_from
from common.web.serving import PARK, DrivenStream, mark_stopping, set_server_kind

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024  # common.web.app_factory's limit (tests/citylogin/test_gunicorn_worker.py holds them equal)
# A chunked body is read here until it ends or this much of it came; a thread reads any rest.
MAX_CHUNKED_BYTES = 2 * MAX_BODY_BYTES
_HEAD_END = b"\r\n\r\n"
_SERVER = SERVER.encode("ascii")
_CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,8})[ \t]*(?:;[^\r\n]*)?\r\n")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_EXPECT = re.compile(rb"\r\nexpect:[ \t]*100-continue[ \t]*(?=\r\n)", re.IGNORECASE)
# What gunicorn's own handle_error counts as the client's fault (a 4xx), by its names in gunicorn.http.errors.
_CLIENT_ERRORS = (
    gunicorn_errors.InvalidRequestLine, gunicorn_errors.InvalidRequestMethod, gunicorn_errors.InvalidHTTPVersion,
    gunicorn_errors.InvalidHeader, gunicorn_errors.InvalidHeaderName, gunicorn_errors.InvalidProxyLine,
    gunicorn_errors.InvalidSchemeHeaders, gunicorn_errors.ObsoleteFolding, gunicorn_errors.InvalidH2CPreface,
    gunicorn_errors.InvalidChunkSize, gunicorn_errors.ChunkMissingTerminator, gunicorn_errors.InvalidChunkExtension)
_PARKED = object()  # what a thread's handle() gives for a connection the stream pump took
_STATIC_PATHS = frozenset(path.encode("ascii") for path in static_answers.PATHS)
_STATUS = {False: b" 200 OK\r\n", True: b" 304 NOT MODIFIED\r\n"}  # werkzeug's reason phrases
def _problem(status: HTTPStatus, code: ErrorCode) -> bytes:
    body = json.dumps({"type": "about:blank", "title": status.phrase, "status": status.value,
                       "detail": i18n.text(f"error.{code.value}", i18n.DEFAULT), "code": code.value}).encode()
    return (f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: application/problem+json\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n").encode() + body


TIMED_OUT = _problem(HTTPStatus.REQUEST_TIMEOUT, ErrorCode.REQUEST_TIMEOUT)
HEAD_TOO_LARGE = _problem(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, ErrorCode.REQUEST_HEADER_TOO_LARGE)
# gunicorn's parser has limits of its own (a request line of 4094 bytes, header lines of 8190, 100 of
# them), refused with an HTML page. Where this worker reads the head, the one limit is MAX_HEAD_BYTES
# for the whole head: gunicorn's are raised to what fits in it.
HEAD_READ_HERE_LIMITS = {"limit_request_line": 0, "limit_request_fields": MAX_HEAD_BYTES // 4,
                         "limit_request_field_size": MAX_HEAD_BYTES}


def _refusal(exc: BaseException) -> tuple[HTTPStatus, ErrorCode]:
    """The status and code of a request gunicorn's parser refused (500 if it is not the client's fault)."""
    if isinstance(exc, (gunicorn_errors.LimitRequestHeaders, gunicorn_errors.LimitRequestLine)):
        return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, ErrorCode.REQUEST_HEADER_TOO_LARGE
    if isinstance(exc, gunicorn_errors.ForbiddenProxyRequest) or isinstance(exc, ssl.SSLError):
        return HTTPStatus.FORBIDDEN, ErrorCode.FORBIDDEN
    if isinstance(exc, gunicorn_errors.UnsupportedTransferCoding):
        return HTTPStatus.NOT_IMPLEMENTED, ErrorCode.BAD_REQUEST
    if isinstance(exc, gunicorn_errors.ExpectationFailed):
        return HTTPStatus.EXPECTATION_FAILED, ErrorCode.BAD_REQUEST
    if isinstance(exc, _CLIENT_ERRORS):
        return HTTPStatus.BAD_REQUEST, ErrorCode.BAD_REQUEST
    return HTTPStatus.INTERNAL_SERVER_ERROR, ErrorCode.INTERNAL_ERROR


class _DeadlineSocket:
    """What a pool thread's parser reads the client through: every read shares the request's
    deadline, after which the client counts as gone (ECONNRESET: gunicorn closes quietly)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.deadline = sock, 0.0

    def recv(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining > 0:
            poller = select.poll()  # not select(): descriptors beyond 1024 are common here
            poller.register(self.sock, select.POLLIN)
            if poller.poll(remaining * 1000):
                return self.sock.recv(size)
        raise ConnectionResetError(errno.ECONNRESET, "the request did not arrive in time")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class _Incoming:
    """One request being read by the event loop."""

    def __init__(self, conn: gthread.TConn, deadline: float) -> None:
        self.conn, self.deadline = conn, deadline
        self.data = bytearray()
        self.head_end = -1
        self.expects_continue = self.continued = self.registered = False

    def framing(self) -> tuple[str, int]:
        """('length', n), ('chunked', 0), ('none', 0) or ('server', 0): let gunicorn's parser judge."""
        head = bytes(self.data[:self.head_end]).decode("latin-1")
        lengths, encodings, expect = [], [], False
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                lengths.append(value)
            elif name == "transfer-encoding":
                encodings.append(value.lower())
            elif name == "expect" and value.lower() == "100-continue":
                expect = True
        self.expects_continue = expect
        if encodings:
            return ("chunked", 0) if encodings == ["chunked"] and not lengths else ("server", 0)
        if not lengths:
            return "none", 0
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            return "server", 0
        return "length", int(lengths[0])

    def complete(self) -> bool:
        """Whether a thread may take it: the head and as much of the body as is read here."""
        if self.head_end < 0:
            end = self.data.find(_HEAD_END)
            if end < 0:
                return False
            self.head_end = end + len(_HEAD_END)
        kind, length = self.framing()
        body = len(self.data) - self.head_end
        if kind == "length":
            return length > MAX_BODY_BYTES or body >= length
        if kind == "chunked":
            return body >= MAX_CHUNKED_BYTES or _chunked_end(self.data, self.head_end)
        return True

    def waits_for_continue(self) -> bool:
        return self.head_end >= 0 and self.expects_continue and not self.continued


def _chunked_end(data: bytearray, at: int) -> bool:
    """Whether a whole chunked body (and its trailers) starts at `at`."""
    while True:
        size = _CHUNK_SIZE.match(data, at)
        if size is None:
            return False
        at = size.end()
        length = int(size.group(1), 16)
        if length == 0:
            return data.find(b"\r\n", at) == at or data.find(_HEAD_END, at) >= 0
        at += length + 2
        if at > len(data):
            return False


def _readable_now(sock: socket.socket) -> bool:
    """Whether bytes (or the client's end) are waiting on `sock`, without waiting. poll(), not
    select(): the worker's descriptors go past select's 1,024."""
    poller = select.poll()
    try:
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):  # closed meanwhile: nothing to serve
        return False


def _raise_open_files_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass  # the limit stays; the streams' cap follows it


def _read_timeout() -> float:
    try:
        return load_settings().request_read_timeout
    except ConfigError:  # the app's own start names the bad setting
        return Settings.model_fields["request_read_timeout"].default


class ThreadWorker(gthread.ThreadWorker):

    def init_process(self) -> None:
        _raise_open_files_limit()
        set_server_kind(threads=self.cfg.threads, parks_streams=True)
        self.pump = StreamPump()
        self.parking = threading.local()  # whether this thread's request parked its connection
        self.read_timeout = _read_timeout()
        # by id(conn), in the order of their deadlines: each is its start plus the same timeout
        self.incoming: dict[int, _Incoming] = {}
        self.static: static_answers.StaticAnswers | None = None  # the app's, once loaded
        self._date = (0, b"")
        if not self.cfg.is_ssl and self.cfg.proxy_protocol == "off":
            # Otherwise gunicorn reads heads itself and its own limits bound what it buffers.
            for name, value in HEAD_READ_HERE_LIMITS.items():
                self.cfg.set(name, value)
        super().init_process()

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: gunicorn's graceful stop, which waits for the requests in hand; the long polls among them
        answer at once (common.web.serving.stopping) instead of holding the stop up to their 30 s."""
        mark_stopping()
        super().handle_exit(sig, frame)

    def load_wsgi(self) -> None:
        """The app, with PARK offered to every plain HTTP/1 GET."""
        super().load_wsgi()
        app = self.wsgi  # type: ignore[has-type]  # set by gunicorn just now
        self.static = getattr(app, "extensions", {}).get(static_answers.EXTENSION_KEY)
        self.scheme_fields = frozenset(name.lower().encode() for name in self.cfg.secure_scheme_headers)

        def offering_park(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            response = getattr(start_response, "__self__", None)
            plain = isinstance(response, gunicorn_wsgi.Response) and not self.cfg.is_ssl
            if plain and environ["REQUEST_METHOD"] == "GET":  # a HEAD's answer has no body to go on with
                environ[PARK] = partial(self._park, response)
            return app(environ, start_response)

        self.wsgi = offering_park

    def _park(self, response: gunicorn_wsgi.Response, stream: DrivenStream) -> None:
        """On the request's thread, its head and first chunk sent: the pump takes the connection,
        and gunicorn finishes the response without its last chunk and lets the connection go."""
        chunked, response.chunked = response.chunked, False
        response.force_close()
        self.parking.parked = True
        self.pump.park(stream, response.sock, chunked=chunked)

    def handle(self, conn: gthread.TConn) -> Any:
        self.parking.parked = False
        result = super().handle(conn)
        return _PARKED if self.parking.parked else result

    def finish_request(self, conn: gthread.TConn, fs: Future[Any]) -> None:
        if not fs.cancelled() and fs.exception() is None and fs.result() is _PARKED:
            self.nr_conns -= 1  # the pump's now, counted against the streams' own cap
            return
        super().finish_request(conn, fs)

    def _read_here(self, conn: gthread.TConn) -> bool:
        if self.cfg.is_ssl or getattr(self.cfg, "protocol", "http") != "http":
            return False
        if self.cfg.proxy_protocol != "off" or negotiation.prior_knowledge_allowed(self.cfg, conn.client):
            return False
        return conn.parser is None or isinstance(conn.parser.unreader.sock, _DeadlineSocket)

    def enqueue_req(self, conn: gthread.TConn) -> None:
        """Instead of a thread: read the request here first, then hand it to one."""
        if not self._read_here(conn):
            super().enqueue_req(conn)
            return
        incoming = _Incoming(conn, time.monotonic() + self.read_timeout)
        if conn.parser is not None:
            incoming.data += conn.parser.unreader.take_buffered()  # read ahead with the last request
        conn.sock.setblocking(False)
        self.incoming[id(conn)] = incoming
        if not self._advance(incoming):
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, incoming))
            incoming.registered = True

    def _on_readable(self, incoming: _Incoming, _sock: socket.socket) -> None:
        self._advance(incoming)

    def _leave_loop(self, incoming: _Incoming) -> None:
        self.incoming.pop(id(incoming.conn), None)
        if incoming.registered:
            incoming.registered = False
            try:
                self.poller.unregister(incoming.conn.sock)
            except (KeyError, ValueError, OSError):
                pass

    def _advance(self, incoming: _Incoming) -> bool:
        """Read what has arrived; True once the connection left the event loop's reading."""
        conn = incoming.conn
        while not incoming.complete():
            if incoming.head_end < 0 and len(incoming.data) > MAX_HEAD_BYTES:
                self._drop(incoming, HEAD_TOO_LARGE)
                return True
            if incoming.waits_for_continue():
                incoming.continued = True
                self._send(conn, _CONTINUE)  # gunicorn says it again later: a client reads both
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                self._drop(incoming, None)
                return True
            if not data:
                self._drop(incoming, None)
                return True
            incoming.data += data
        if incoming.head_end > MAX_HEAD_BYTES:  # all of it came in one read
            self._drop(incoming, HEAD_TOO_LARGE)
            return True
        if not self._answer_here(incoming):
            self._dispatch(incoming)
        return True

    def _answer_here(self, incoming: _Incoming) -> bool:
        """A plain GET or HEAD of a prepared static answer (oidc.discovery.static_answers) on a connection that stays
        open, answered from here: no thread, parser or WSGI app. What the answer's route would log and
        count is logged and counted (common.web.request_log.record). False (nothing done) for any other request."""
        if (self.static is None or len(incoming.data) != incoming.head_end or incoming.continued
                or not self.alive or not self.cfg.keepalive or len(self.keepalived_conns) >= self.max_keepalived
                or self.nr + 1 >= self.max_requests):
            return False
        started = time.perf_counter()
        request = plain_request(bytes(incoming.data), self.scheme_fields, _STATIC_PATHS)
        if request is None:
            return False
        try:
            answer = self.static.get(request.path)
        except ConfigError:  # no public URL: the route's own answer says so
            return False
        if answer is None or answer.varies:
            return False
        not_modified = answer.not_modified(request.if_none_match)
        request_id = request_id_from(request.request_id)
        wire = b"".join((b"HTTP/1.", request.minor, _STATUS[not_modified], b"Server: ", _SERVER, b"\r\nDate: ",
                         self._http_date(), b"\r\nConnection: keep-alive\r\n",
                         answer.not_modified_lines if not_modified else answer.lines,
                         b"X-Request-ID: ", request_id.encode("ascii"), b"\r\n\r\n",
                         answer.body if request.method == "GET" and not not_modified else b""))
        conn = incoming.conn
        self._leave_loop(incoming)
        self.nr += 1
        try:
            sent = conn.sock.send(wire)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = -1
        record(method=request.method, route=request.path, status=304 if not_modified else 200,
               seconds=time.perf_counter() - started, request_id=request_id)
        if sent < 0:
            self.nr_conns -= 1
            util.close(conn.sock)
        elif sent < len(wire):  # the client is not reading: a thread waits to send the rest, as for any answer
            future = self.tpool.submit(self._send_rest, conn, wire[sent:])
            future.add_done_callback(lambda done: self.method_queue.defer(self._after_rest, conn, done))
        else:
            self._keep_alive(conn)
        return True

    def _http_date(self) -> bytes:
        now = int(time.time())
        if now != self._date[0]:
            self._date = (now, util.http_date(now).encode("ascii"))
        return self._date[1]

    @staticmethod
    def _send_rest(conn: gthread.TConn, rest: bytes) -> None:
        conn.sock.setblocking(True)
        conn.sock.sendall(rest)

    def _after_rest(self, conn: gthread.TConn, done: Future[None]) -> None:
        if done.cancelled() or done.exception() is not None:
            self.nr_conns -= 1
            util.close(conn.sock)
        else:
            self._keep_alive(conn)

    def _keep_alive(self, conn: gthread.TConn) -> None:
        """As gunicorn keeps a connection after an answer that said keep-alive: in the loop, no thread."""
        conn.sock.setblocking(False)
        conn.set_timeout()
        self.keepalived_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))

    def _dispatch(self, incoming: _Incoming) -> None:
        conn = incoming.conn
        self._leave_loop(incoming)
        data = bytes(incoming.data)
        if incoming.continued:  # answered here already: gunicorn must not say it again
            data = _EXPECT.sub(b"", data[:incoming.head_end], count=1) + data[incoming.head_end:]
        if conn.parser is None:
            conn.parser = gunicorn_http.get_parser(self.cfg, _DeadlineSocket(conn.sock), conn.client)
            conn.initialized = True  # TConn.init() would make a parser reading the socket itself
        conn.parser.unreader.sock.deadline = incoming.deadline
        conn.parser.unreader.unread(data)
        conn.data_ready = True
        super().enqueue_req(conn)

    @staticmethod
    def _send(conn: gthread.TConn, answer: bytes) -> None:
        try:
            conn.sock.send(answer)  # small, into an empty send buffer: never blocks the loop
        except OSError:
            pass

    def _drop(self, incoming: _Incoming, answer: bytes | None) -> None:
        conn = incoming.conn
        self._leave_loop(incoming)
        if answer:
            self._send(conn, answer)
        self.nr_conns -= 1
        util.close(conn.sock)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """What gunicorn's parser refuses, answered as problem+json rather than gunicorn's HTML page,
        with one log line that names the refusal but not what the client sent (a request line may
        hold a token)."""
        status, code = _refusal(exc)
        if status == HTTPStatus.INTERNAL_SERVER_ERROR:
            self.log.exception("error handling a request")
        else:
            self.log.warning("invalid request from ip=%s: %s", (addr or ("",))[0], type(exc).__name__)
        try:
            client.sendall(_problem(status, code))
        except OSError:
            pass

    def murder_keepalived(self, force: bool = False) -> None:
        """gunicorn's, except that a kept-alive connection whose next request has come since the loop
        last looked is served, not closed: closing a socket with unread bytes in it resets the
        connection (RST), and the client loses a request it sent before the keep-alive timeout ended
        for the server (the keep-alive race; a client cannot tell it from a crash, so it must not
        retry a POST). A connection found readable goes the way of any readable one."""
        if not force:
            now = time.monotonic()
            for conn in list(itertools.takewhile(lambda kept: kept.timeout <= now, self.keepalived_conns)):
                if _readable_now(conn.sock):
                    self.on_client_socket_readable(conn, conn.sock)
        super().murder_keepalived(force)

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.incoming:
            incoming = next(iter(self.incoming.values()))
            if incoming.deadline > now:
                break
            self._drop(incoming, TIMED_OUT if incoming.data else None)
