"""HTTP/1.1 with keep-alive to one endpoint, for the lean DynamoDB client: a POST with a
Content-Length body out, a status, headers and a body (framed by Content-Length, chunked, or by
the connection's end) back.

Why not urllib3: after the botocore layers were gone, urllib3 + http.client were 80 % of the
lean client's CPU (cProfile, thread CPU: each header checked on the way out, the answer's headers
parsed by the email package, the pool's and the response object's bookkeeping). Measured with
bench/dynamo_client.py, back to back on the shared 2-core machine (load 3.4-7.8), the client on
urllib3 (`urlopen(..., retries=False, preload_content=True, decode_content=False)`) cost 0.55-1.36 ms
per call at p50, TransactWriteItems above the 1 ms goal in two runs of four, against 0.17-0.52 ms
with this pool. What DynamoDB's JSON API needs of HTTP is this small. Failures are raised as botocore's exceptions,
named as botocore's URLLib3Session names urllib3's, so callers cannot tell the difference."""
from __future__ import annotations

import select
import socket
import ssl
import threading
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
    SSLError,
)

MAX_HEAD = 64 * 1024  # a status line and headers longer than this are not DynamoDB's
_RECV = 65536


class ConnectionPool:
    """Idle connections to the endpoint, newest first, at most `maxsize` kept (more may be open
    at once, as urllib3's pool with block=False allows); thread-safe."""

    def __init__(self, url: str, *, connect_timeout: float, read_timeout: float, maxsize: int,
                 ca_certs: str | None = None) -> None:
        parts = urlsplit(url)
        self.url = url
        self._address = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        self._connect_timeout, self._read_timeout, self._maxsize = connect_timeout, read_timeout, maxsize
        self._tls = ssl.create_default_context(cafile=ca_certs) if parts.scheme == "https" else None
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()

    def post(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One exchange on a pooled connection: (status, headers with lower-case names, body)."""
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if head.count("\n") != len(headers) or head.count("\r") != len(headers):
            # a value with a line break (a session token served wrong) would end the header early and
            # smuggle what follows in as headers of its own: refused as http.client refuses it
            raise HTTPClientError(error=ValueError("a header value holds a line break"))
        sock = self._take()
        try:
            sock.sendall(f"POST / HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body)
            status, answer_headers, answer, reusable = _read_answer(sock)
        except BaseException as exc:
            sock.close()
            raise self._translated(exc) from exc
        if reusable:
            self._give_back(sock)
        else:
            sock.close()
        return status, answer_headers, answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()

    def _take(self) -> socket.socket:
        while True:
            with self._lock:
                sock = self._idle.pop() if self._idle else None
            if sock is None:
                return self._connect()
            if not _dropped(sock):
                return sock
            sock.close()  # the server closed it while idle (or sent what we did not ask for)

    def _give_back(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < self._maxsize:
                self._idle.append(sock)
                return
        sock.close()

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection(self._address, timeout=self._connect_timeout)
        except TimeoutError as exc:
            raise ConnectTimeoutError(endpoint_url=self.url, error=exc) from exc
        except OSError as exc:  # refused, unreachable, no such host
            raise EndpointConnectionError(endpoint_url=self.url, error=exc) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._address[0])
        except BaseException as exc:
            sock.close()
            if isinstance(exc, TimeoutError):
                raise ConnectTimeoutError(endpoint_url=self.url, error=exc) from exc
            raise self._translated(exc) from exc
        sock.settimeout(self._read_timeout)
        return sock

    def _translated(self, exc: BaseException) -> BaseException:
        """A failure during the exchange, as botocore names it."""
        if isinstance(exc, (BotoCoreError, KeyboardInterrupt, SystemExit)):
            return exc
        if isinstance(exc, ssl.SSLError):
            return SSLError(endpoint_url=self.url, error=exc)
        if isinstance(exc, TimeoutError):
            return ReadTimeoutError(endpoint_url=self.url, error=exc)
        if isinstance(exc, (OSError, _Closed)):
            return ConnectionClosedError(endpoint_url=self.url, error=exc)
        return HTTPClientError(error=exc)


class _Closed(Exception):
    """The connection ended before a whole answer arrived."""


def _dropped(sock: socket.socket) -> bool:
    """An idle keep-alive connection is readable only if the server closed it (or misbehaved)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, headers, body, whether the connection may carry another request)."""
    buffer = bytearray()
    while True:  # informational 1xx answers come before the real one
        end = _fill_until(sock, buffer, b"\r\n\r\n")
        lines = buffer[:end].decode("latin-1").split("\r\n")
        del buffer[:end + 4]
        version, status_text = (lines[0].split(" ", 2) + [""])[:2]
        status = int(status_text)
        if status >= 200:
            break
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    connection = headers.get("connection", "").lower()
    reusable = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
    if status in (204, 304):
        return status, headers, b"", reusable
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return status, headers, _read_chunked(sock, buffer), reusable
    if "content-length" in headers:
        length = int(headers["content-length"])
        _fill_to(sock, buffer, length)
        return status, headers, bytes(buffer[:length]), reusable and len(buffer) == length
    while chunk := sock.recv(_RECV):  # framed by the connection's end
        buffer += chunk
    return status, headers, bytes(buffer), False


def _read_chunked(sock: socket.socket, buffer: bytearray) -> bytes:
    body = bytearray()
    while True:
        end = _fill_until(sock, buffer, b"\r\n")
        size = int(bytes(buffer[:end]).split(b";")[0], 16)
        del buffer[:end + 2]
        if size == 0:
            while (end := _fill_until(sock, buffer, b"\r\n")) != 0:  # trailers, then an empty line
                del buffer[:end + 2]
            del buffer[:2]
            return bytes(body)
        _fill_to(sock, buffer, size + 2)
        body += buffer[:size]
        del buffer[:size + 2]


def _fill_until(sock: socket.socket, buffer: bytearray, mark: bytes) -> int:
    while (end := buffer.find(mark)) < 0:
        if len(buffer) > MAX_HEAD:
            raise _Closed("an answer's head or chunk line is too long")
        _receive(sock, buffer)
    return end


def _fill_to(sock: socket.socket, buffer: bytearray, size: int) -> None:
    while len(buffer) < size:
        _receive(sock, buffer)


def _receive(sock: socket.socket, buffer: bytearray) -> None:
    chunk = sock.recv(_RECV)
    if not chunk:
        raise _Closed("the connection closed before the whole answer")
    buffer += chunk
