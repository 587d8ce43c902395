"""The benchmark's DynamoDB proxy (bench/dynamo_proxy.py) lets calls on separate connections overlap,
as they do on DynamoDB: with a delay set, the second call reaches the upstream while the first is still
on its way. The stand-in upstream answers neither of two requests until it holds both, so a proxy that
carried one call at a time would leave both unanswered."""
from __future__ import annotations

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.dynamo_proxy import DelayProxy

GUARD_S = 10  # a proxy that serialised the calls leaves the upstream waiting this long, then it answers 500


class WaitingUpstream:
    """Reads one HTTP request per connection; answers 200 only once `expected` requests have arrived."""

    def __init__(self, expected: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.all_arrived = threading.Barrier(expected)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            received = b""
            while b"\r\n\r\n" not in received or not received.endswith(b"}"):
                received += conn.recv(65536)
            try:
                self.all_arrived.wait(timeout=GUARD_S)
                status = b"200 OK"
            except threading.BrokenBarrierError:
                status = b"500 Internal Server Error"
            conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def upstream():
    running = WaitingUpstream(expected=2)
    yield running
    running.close()


def _call(port: int, table: str) -> bytes:
    body = json.dumps({"TableName": table, "Key": {"k": {"S": "v"}}}).encode()
    request = (b"POST / HTTP/1.1\r\nHost: dynamodb\r\nX-Amz-Target: DynamoDB_20120810.GetItem\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD_S + 5) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


def test_two_calls_through_the_delaying_proxy_overlap_rather_than_queue(upstream):
    with DelayProxy(upstream_port=upstream.port, delay=0.2) as proxy:
        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(lambda table: _call(proxy.port, table), ("one", "two")))
        seen = sorted((r.operation, r.tables) for r in proxy.since(0))
    assert statuses == [b"HTTP/1.1 200 OK"] * 2
    assert seen == [("GetItem", ("one",)), ("GetItem", ("two",))]
