"""An app's RFC 8935 push receiver in its own process, for tests: `python -m tests.support.push_receiver
PORT [FAIL_FIRST]`. POST /push takes a SET (`application/secevent+jwt`): the first FAIL_FIRST answers
are 500, then it keeps the SET and answers 202. GET /received lists the SETs kept, in arrival order
(duplicates included); GET /healthz answers 200."""
from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received: list[str] = []
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
                self._answer(200, json.dumps({"sets": received, "attempts": attempts["count"]}).encode())
        else:
            self._answer(404)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/push" or self.headers.get("Content-Type") != "application/secevent+jwt":
            self._answer(400, b'{"err": "invalid_request"}')
            return
        with lock:
            attempts["count"] += 1
            failing = attempts["count"] <= self.fail_first
            if not failing:
                received.append(body.decode())
        self._answer(500 if failing else 202)


def main() -> None:
    Receiver.fail_first = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()


if __name__ == "__main__":
    main()
