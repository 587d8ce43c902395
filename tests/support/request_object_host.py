"""Where an app publishes its request objects (RFC 9101 by reference), for tests: a threaded HTTP
server on 127.0.0.1 whose paths each answer one way: the object with a request object's media type, or
one of the faults a server at the other end could put in the fetch's way (a wrong type, a 404, a
redirect, an endless or dripping body, no answer at all, a compressed body)."""
from __future__ import annotations

import gzip
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from tests.support.ports import free_port

JAR = "application/oauth-authz-req+jwt"
HOLD_SECONDS = 60  # the longest a hanging or dripping answer holds its connection (the test ends it sooner)


@dataclass
class Published:
    """What each path answers: (mode, body); and every request the server had, by path."""

    answers: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    published: Published

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        pass

    def do_GET(self) -> None:  # noqa: N802 (BaseHTTPRequestHandler's name)
        self.published.fetched.append(self.path)
        mode, body = self.published.answers.get(self.path, ("404", b""))
        if mode == "hang":
            self.published.released.wait(HOLD_SECONDS)
            return
        if mode in ("drip", "huge"):
            return self._stream(drip=mode == "drip")
        status, headers = {"ok": (200, {"Content-Type": JAR}), "jwt": (200, {"Content-Type": "application/jwt"}),
                           "html": (200, {"Content-Type": "text/html"}), "404": (404, {"Content-Type": JAR}),
                           "redirect": (302, {"Location": body.decode(), "Content-Type": JAR}),
                           "gzip": (200, {"Content-Type": JAR, "Content-Encoding": "gzip"})}[mode]
        sent = gzip.compress(body) if mode == "gzip" else body
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(sent))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(sent)

    def _stream(self, *, drip: bool) -> None:
        """A body without a length: a byte every tenth of a second (drip), or 64 KiB at a time (huge),
        until the client goes or the test ends."""
        self.send_response(200)
        self.send_header("Content-Type", JAR)
        self.end_headers()
        deadline = time.monotonic() + HOLD_SECONDS
        try:
            while time.monotonic() < deadline and not self.published.released.is_set():
                self.wfile.write(b"e" if drip else b"e" * 65536)
                self.wfile.flush()
                if drip:
                    self.published.released.wait(0.1)
        except OSError:
            return  # the client went away


@contextmanager
def request_object_host() -> Iterator[tuple[str, Published]]:
    """(its base URL, what it publishes): set `published.answers[path] = (mode, body)`."""
    published = Published()
    handler = type("Handler", (_Handler,), {"published": published})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", published
    finally:
        published.released.set()
        server.shutdown()
        server.server_close()
