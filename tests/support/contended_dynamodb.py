"""A DynamoDB whose writes meet concurrent transactions, as Amazon DynamoDB's do under contention:
an HTTP proxy in front of the real DynamoDB Local, which locks whole tables and so never reports
a conflict. The first time the proxy sees a write (a TransactWriteItems, PutItem, UpdateItem or
DeleteItem; its retries carry the same body) it refuses it as DynamoDB refuses a write to an item
that an ongoing transaction holds: a transaction is cancelled with TransactionConflict for each
item, a single-item write gets TransactionConflictException. Every later attempt passes through,
so a client that retries conflicts sees DynamoDB Local's real answer. Everything else passes.

It runs as its own process (`contended_dynamodb(upstream)`), so that racing clients in the test
process do not slow its forwarding down; `GET /conflicts` says how many writes it refused."""
from __future__ import annotations

import hashlib
import http.client
import json
import socket
import threading
import subprocess
import sys
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import urlsplit

import requests

TRANSACTION = "DynamoDB_20120810.TransactWriteItems"
SINGLE_WRITES = {f"DynamoDB_20120810.{op}" for op in ("PutItem", "UpdateItem", "DeleteItem")}
ERROR_TYPE = "com.amazonaws.dynamodb.v20120810#"


class ContendedDynamoDB:
    def __init__(self, upstream_url: str) -> None:
        self.upstream = urlsplit(upstream_url)
        self.lock = threading.Lock()
        self.seen: set[bytes] = set()
        self.conflicts = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                answer = str(proxy.conflicts).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "")
                status, headers, answer = proxy._refusal(target, body) or proxy._forward(self, body)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def _refusal(self, target: str, body: bytes) -> tuple[int, list, bytes] | None:
        """A conflict for the first attempt of a write, else None."""
        if target != TRANSACTION and target not in SINGLE_WRITES:
            return None
        digest = hashlib.sha256(target.encode() + body).digest()
        with self.lock:
            if digest in self.seen:
                return None
            self.seen.add(digest)
            self.conflicts += 1
        return _conflict(target, body)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, list, bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            conn.request("POST", handler.path, body=body,
                         headers={k: v for k, v in handler.headers.items() if k.lower() != "host"})
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "ContendedDynamoDB":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # twenty racers connect at once


def _conflict(target: str, body: bytes) -> tuple[int, list, bytes]:
    if target == TRANSACTION:
        count = len(json.loads(body).get("TransactItems", []))
        reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}] * count
        error = {"__type": ERROR_TYPE + "TransactionCanceledException", "CancellationReasons": reasons,
                 "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
                            f"[{', '.join(['TransactionConflict'] * count)}]"}
    else:
        error = {"__type": ERROR_TYPE + "TransactionConflictException",
                 "message": "Transaction is ongoing for the item"}
    return 400, [("Content-Type", "application/x-amz-json-1.0")], json.dumps(error).encode()


class ContendedProcess:
    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def conflicts(self) -> int:
        return int(requests.get(self.url + "/conflicts", timeout=10).text)


@contextmanager
def contended_dynamodb(upstream_url: str) -> Iterator[ContendedProcess]:
    """A ContendedDynamoDB in front of `upstream_url`, in a process of its own."""
    process = subprocess.Popen([sys.executable, "-m", "tests.support.contended_dynamodb", upstream_url],
                               stdout=subprocess.PIPE, text=True)
    try:
        yield ContendedProcess(process.stdout.readline().strip())  # type: ignore[union-attr]
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    server = ContendedDynamoDB(sys.argv[1])
    print(server.url, flush=True)
    threading.Event().wait()
