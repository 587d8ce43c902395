"""An app's jwks_uri for the tests: an HTTP server on 127.0.0.1 that answers the JWK Set it is given now, or
misbehaves as it is told (an error status, a redirect, a body too large, bytes trickling in, no answer at
all), and counts the GETs it was asked."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JwksServer:
    """`url` serves `keys` (a JWK Set document) while `mode` is "ok"; `mode` "error" answers 500, "bad_request"
    400, "redirect" a 302 to the same set elsewhere, "large" 100 KiB of JSON, "trickle" a byte every 0.2 s until
    the client leaves, "hang" nothing until the client leaves."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {"keys": []}
        self.mode = "ok"
        self.gets = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def serve(self, *keys: Any) -> None:
        """Answer these keys (joserfc keys) from now on, as their public JWKs."""
        self.keys = {"keys": [key.as_dict(private=False) for key in keys]}
        self.mode = "ok"

    def count(self) -> None:
        with self._lock:
            self.gets += 1

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "JwksServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _handler(jwks: JwksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            jwks.count()
            mode = jwks.mode
            if mode == "error":
                self._send(500, b"{}")
            elif mode == "bad_request":
                self._send(400, b'{"error": "what port 8080 of the internal network said"}')
            elif mode == "redirect":
                self.send_response(302)
                self.send_header("Location", jwks.url + "?moved")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif mode == "large":
                self._send(200, json.dumps({"keys": [], "padding": "x" * 100_000}).encode())
            elif mode in ("trickle", "hang"):
                self._slow(trickle=mode == "trickle")
            else:
                self._send(200, json.dumps(jwks.keys).encode())

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _slow(self, *, trickle: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                while not jwks._closing.is_set():
                    if trickle:
                        self.wfile.write(b" ")
                        self.wfile.flush()
                    time.sleep(0.2)
            except OSError:  # the client gave up and closed the connection
                return

    return Handler
