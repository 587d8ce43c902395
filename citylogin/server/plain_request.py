"""What citylogin's gunicorn worker (citylogin.server.gunicorn_worker) reads of a request head it may answer from
its event loop: a plain read of a resource on a connection that stays open, else None. What it takes is a
subset of what gunicorn's own parser takes, read the same
(tests/citylogin/server/test_gunicorn_worker_plain_requests.py)."""
from __future__ import annotations

import re

# A request the event loop answers itself (a prepared static answer) is a subset of what gunicorn's parser
# takes: GET or HEAD of the exact path in origin form, HTTP/1.0 or 1.1, each header `token: value` of
# visible ASCII (no "_" in a name, no folding, no obs-text). Anything else goes to a thread as before.
_PLAIN_REQUEST_LINE = re.compile(rb"(GET|HEAD) (/[\x21\x24-\x3e\x40-\x7e]*) HTTP/1\.([01])")  # no query
_PLAIN_FIELD = re.compile(rb"([!#$%&'*+.^`|~0-9A-Za-z-]+):[ \t]*((?:[!-~](?:[ \t!-~]*[!-~])?)?)[ \t]*")
# Fields that make a request more than a plain read, or that gunicorn refuses when repeated.
_NOT_PLAIN = frozenset({b"transfer-encoding", b"expect", b"upgrade", b"http2-settings"})
_SINGLE = frozenset({b"host", b"content-type", b"content-length", b"connection", b"x-request-id"})


class PlainRequest:
    __slots__ = ("method", "path", "minor", "request_id", "if_none_match")

    def __init__(self, method: str, path: str, minor: bytes, request_id: str | None, if_none_match: list[str]):
        self.method, self.path, self.minor = method, path, minor
        self.request_id, self.if_none_match = request_id, if_none_match


def plain_request(head: bytes, scheme_fields: frozenset[bytes],
                  paths: frozenset[bytes] | None = None) -> PlainRequest | None:
    """A head (up to its blank line) that asks to read a resource and stay connected, else None: any
    body, expectation, upgrade, repeated singleton field, conflicting scheme fields or "Connection:
    close" (and HTTP/1.0 without keep-alive) leaves it to gunicorn's parser and a thread. With `paths`,
    also None for a path not in them, found from the request line alone: the fields of a request the worker
    does not answer itself (userinfo's, with its access token) are not read here at all."""
    request_line = _PLAIN_REQUEST_LINE.fullmatch(head, 0, max(head.find(b"\r\n"), 0))
    if request_line is None or (paths is not None and request_line.group(2) not in paths):
        return None
    lines = head.split(b"\r\n")
    if lines[-2:] != [b"", b""]:
        return None
    seen: set[bytes] = set()
    schemes, request_id, if_none_match = 0, None, []
    keep_alive = request_line.group(3) == b"1"
    for line in lines[1:-2]:
        field = _PLAIN_FIELD.fullmatch(line)
        if field is None:
            return None
        name, value = field.group(1).lower(), field.group(2)
        if name in _SINGLE:
            if name in seen:
                return None
            seen.add(name)
            if name == b"content-length" and value != b"0":
                return None
            if name == b"connection":
                value = value.lower()
                if value not in (b"keep-alive", b"close"):
                    return None
                keep_alive = value == b"keep-alive"
            elif name == b"x-request-id":
                request_id = value.decode("ascii")
        elif name in _NOT_PLAIN:
            return None
        elif name == b"if-none-match":
            if_none_match.append(value.decode("ascii"))
        elif name in scheme_fields:
            schemes += 1
            if schemes > 1:  # gunicorn compares them (InvalidSchemeHeaders)
                return None
    if not keep_alive:
        return None
    return PlainRequest(request_line.group(1).decode("ascii"), request_line.group(2).decode("ascii"),
                         request_line.group(3), request_id, if_none_match)
