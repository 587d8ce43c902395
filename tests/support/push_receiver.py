"""An app's RFC 8935 push receiver in its own process, for tests: `python -m tests.support.push_receiver
PORT [FAIL_FIRST]`. POST /push takes a SET (`application/secevent+jwt`): the first FAIL_FIRST answers
are 500, then it keeps the SET and answers 202. POST /backchannel takes an OpenID Connect Back-Channel
Logout request (a form with `logout_token`) the same way, answering 200. GET /received lists the SETs
and logout tokens kept, in arrival order (duplicates included), with when each arrived (`at`, epoch
seconds); GET /healthz answers 200."""
from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

received: list[str] = []
arrived: list[float] = []
attempts = {"count": 0}
lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    fail_first = 0

    def log_message(self, *args) -> None:  # quiet
        pass

    def _answer(self, status: int, body: bytes = b"", kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/healthz":
            self._answer(200, b"{}")
        elif self.path == "/received":
            with lock:
                self._answer(200, json.dumps({"sets": received, "at": arrived,
                                              "attempts": attempts["count"]}).encode())
        else:
            self._answer(404)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        kind = self.headers.get("Content-Type")
        if self.path == "/push" and kind == "application/secevent+jwt":
            kept, delivered = body.decode(), 202
        elif self.path == "/backchannel" and kind == "application/x-www-form-urlencoded":
            kept, delivered = parse_qs(body.decode()).get("logout_token", [""])[0], 200
        else:
            self._answer(400, b'{"err": "invalid_request"}')
            return
        with lock:
            attempts["count"] += 1
            failing = attempts["count"] <= self.fail_first
            if not failing:
                received.append(kept)
                arrived.append(time.time())
        self._answer(500 if failing else delivered)


def main() -> None:
    Receiver.fail_first = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()


if __name__ == "__main__":
    main()
