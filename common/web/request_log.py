"""One access line per request and its request id (X-Request-ID), as WSGI middleware so that it
times the whole response, streams included, under any server (werkzeug, gunicorn).

The line holds the method, the URL rule (never the path: a path or query may carry a token),
the status, the latency and the request id; never a header value, query string or body."""
from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any, Callable, Iterable

from flask import Flask, request
from werkzeug.wsgi import ClosingIterator

from common.web import metrics

log = logging.getLogger("citylogin.access")

HEADER = "X-Request-ID"
_HEADER_LOWER = HEADER.lower()
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
ROUTE_KEY = "citylogin.route"
UNMATCHED = "<unmatched>"  # no URL rule matched (404, 405): the raw path is not logged either
# An app's long poll of its security events comes back every few seconds, for as long as the app runs:
# answered 200 it is steady state, logged at DEBUG; any other answer (401, 404, 503) is a change, at INFO.
STEADY_ROUTES = frozenset({"/ssf/poll", "/ssf/poll/<stream_id>"})


class RequestInfo:
    """The request a thread serves: its id, and its client IP, parsed only when asked (by the audit stream)."""
    __slots__ = ("request_id", "_environ", "_ip", "_parsed")

    def __init__(self, request_id: str, environ: dict[str, Any]) -> None:
        self.request_id, self._environ = request_id, environ
        self._ip: str | None = None
        self._parsed = False

    @property
    def ip(self) -> str | None:
        if not self._parsed:
            self._ip, self._parsed = _client_ip(self._environ), True
        return self._ip


_current: ContextVar[RequestInfo | None] = ContextVar("citylogin_request", default=None)


def current_request() -> RequestInfo | None:
    """The request this thread is serving, if any (for the audit stream)."""
    return _current.get()


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID if it is sane (≤ 128 of [A-Za-z0-9._-]), else a new one."""
    if header and SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def _client_ip(environ: dict[str, Any]) -> str | None:
    address = environ.get("REMOTE_ADDR") or ""  # after ProxyFix when CITYLOGIN_TRUSTED_PROXIES is set
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


class RequestLog:
    """WSGI middleware: sets the request id, adds it to the response, logs and counts the request
    when the response is closed."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        info = RequestInfo(request_id_from(environ.get("HTTP_X_REQUEST_ID")), environ)
        _current.set(info)
        status: list[int] = [500]

        def start_with_id(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            headers = [(k, v) for k, v in headers if k.lower() != _HEADER_LOWER] + [(HEADER, info.request_id)]
            return start_response(status_line, headers, exc_info)

        def finish() -> None:
            _finish(environ, method=environ.get("REQUEST_METHOD", ""), status=status[0],
                    seconds=time.perf_counter() - started, request_id=info.request_id)
            _current.set(None)

        try:
            body = self.wsgi_app(environ, start_with_id)
        except BaseException:
            finish()
            raise
        return ClosingIterator(body, [finish])


def _finish(environ: dict[str, Any], *, method: str, status: int, seconds: float, request_id: str) -> None:
    route = environ.get(ROUTE_KEY) or UNMATCHED
    latency_ms = round(seconds * 1000, 1)
    metrics.observe_request(method=method, route=route, status=status, seconds=seconds)
    level = logging.DEBUG if route in STEADY_ROUTES and status == 200 else logging.INFO
    if log.isEnabledFor(level):  # below the level (WARNING, as the bench runs), not even the fields are made
        log.log(level, "%s %s %d %.1fms request_id=%s", method, route, status, latency_ms, request_id,
                extra={"method": method, "route": route, "status": status, "latency_ms": latency_ms,
                       "request_id": request_id})


def remember_route() -> None:
    """Keep the request's URL rule for its access line (before the request: the app's one hook calls it)."""
    rule = request.url_rule
    if rule is not None:
        request.environ[ROUTE_KEY] = rule.rule


def install_request_log(app: Flask) -> None:
    """Wrap `app` in the access log; call before any proxy middleware is applied, so that the
    client IP it records is the one the proxy settings trust. The app calls `remember_route` before
    each request."""
    # Flask's documented middleware pattern; its types declare wsgi_app a method.
    app.wsgi_app = RequestLog(app.wsgi_app)  # type: ignore[method-assign]


def record(*, method: str, route: str, status: int, seconds: float, request_id: str) -> None:
    """Log and count one request answered outside the WSGI app (citylogin's worker's prepared answers)."""
    _finish({ROUTE_KEY: route}, method=method, status=status, seconds=seconds, request_id=request_id)
