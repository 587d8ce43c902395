"""The peer bench's latency under load (bench/peer_latency.py) counts from each request's due time: a server
that stalls once makes the requests due during the stall late too (no coordinated omission), an answer that
is not what the row counts is an error and not a sample, and a request no thread could send before the
deadline is counted as not sent. Against a small HTTP server in this process; nothing here asserts a time
it does not own (the stall is the server's own, and only lower bounds follow from it)."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import peer_latency
from bench.peer_client import http_session

STALL_S = 0.3


class _Stub(BaseHTTPRequestHandler):
    """200 with a body the call checks; the request numbered `stall_at` is answered STALL_S late, the one
    numbered `fail_at` with a 500."""
    protocol_version = "HTTP/1.1"
    seen = 0
    stall_at = fail_at = -1
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        with _Stub.lock:
            _Stub.seen += 1
            number = _Stub.seen
        if number == _Stub.stall_at:
            time.sleep(STALL_S)  # the stall this test owns
        status, body = (500, b"{}") if number == _Stub.fail_at else (200, b'{"sub": "x"}')
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    _Stub.seen, _Stub.stall_at, _Stub.fail_at = 0, -1, -1
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/userinfo"
    server.shutdown()
    server.server_close()


def _call(url: str, tooks: list[float] | None = None):
    """A row's call as bench/peer_client.py makes them: its own keep-alive session, the exchange timed
    alone, the answer checked (None if not what the row counts)."""
    http = http_session()

    def call() -> float | None:
        started = time.perf_counter()
        answer = http.get(url, timeout=30)
        took = time.perf_counter() - started
        if tooks is not None:
            tooks.append(took)
        return took if answer.status_code == 200 and answer.json().get("sub") else None
    return call


def test_the_schedule_is_a_constant_rate_and_the_summary_orders_its_percentiles():
    assert peer_latency.schedule(4, 1.0) == [0.0, 0.25, 0.5, 0.75]
    loop = peer_latency.OpenLoop(due=103, latencies=[i / 1000 for i in range(1, 101)], errors=2, unsent=1,
                                 seconds=2.0)
    figures = peer_latency.summary(loop)
    assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"] == pytest.approx(100)
    assert (figures["samples"], figures["errors"], figures["unsent"], figures["achieved_rps"]) == (100, 3, 1, 50)
    assert peer_latency.summary(peer_latency.OpenLoop(due=1, unsent=1))["p99_ms"] is None


def test_a_stall_makes_the_requests_due_during_it_late_too(stub):
    _Stub.stall_at = 3
    tooks: list[float] = []
    loop = peer_latency.open_loop([_call(stub, tooks)], rate=40, seconds=0.5)   # 20 due, one thread
    assert (len(loop.latencies), loop.errors, loop.unsent, loop.due) == (20, 0, 0, 20)
    assert max(loop.latencies) >= STALL_S
    # every request due in the stall's first 0.2 s (8 at 40/s) waited for it: at least 0.1 s late
    assert sum(latency >= 0.1 for latency in loop.latencies) >= 5
    # each exchange's own timing (a closed loop's) is its send to its answer: the due time is earlier still
    assert all(latency >= took for latency, took in zip(loop.latencies, tooks, strict=True))
    figures = peer_latency.summary(loop)
    assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert figures["max_ms"] >= 1000 * STALL_S


def test_an_answer_that_is_not_what_the_row_counts_is_an_error_not_a_sample(stub):
    _Stub.fail_at = 3
    loop = peer_latency.open_loop([_call(stub), _call(stub)], rate=50, seconds=0.4)   # 20 due, two threads
    assert (len(loop.latencies), loop.errors, loop.due) == (19, 1, 20)
    assert peer_latency.summary(loop)["errors"] == 1


def test_a_request_no_thread_could_send_before_the_deadline_is_counted_as_not_sent(stub):
    _Stub.stall_at = 1
    loop = peer_latency.open_loop([_call(stub)], rate=50, seconds=0.2, grace_s=0.0)   # 10 due, the first stalls
    assert len(loop.latencies) + loop.unsent == loop.due == 10
    assert loop.unsent >= 1 and loop.latencies[0] >= STALL_S
    assert peer_latency.summary(loop)["errors"] == loop.unsent


def test_the_table_shows_each_row_and_side_and_a_side_that_measured_nothing_as_a_dash():
    latency = {"method": peer_latency.settings({}),
               "rows": {"refresh": {"citylogin": {"max_rps": 300.0, "target_rps": 240.0, "achieved_rps": 239.0,
                                                  "p50_ms": 4.0, "p95_ms": 9.0, "p99_ms": 15.0, "errors": 0,
                                                  "samples": 1440},
                                    "node-dynamodb": {"max_rps": 0.0, "target_rps": 0.0, "p50_ms": None,
                                                      "errors": 0, "samples": 0}}}}
    table = peer_latency.render_latency(latency)
    assert "refresh" in table and "citylogin" in table and "15.00" in table
    node = next(line for line in table.splitlines() if "node-dynamodb" in line)
    assert node.split()[1:3] == ["0", "0"] and "-" in node.split()
    assert "80% of the max rate" in table
