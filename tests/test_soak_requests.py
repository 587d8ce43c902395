"""The soak's account of a request that got no answer (tests/support/soak_requests.py, issue 82 item 10):
it names the step that sent it, the method, path and process, and quotes the server's own line for its
X-Request-ID. A server in this process holds the request until the client has given up, then writes its
access line as citylogin's does."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.support.soak_requests import HEADER, RequestLedger
from tests.support.waiting import wait_until


class _Held(BaseHTTPRequestHandler):
    release: threading.Event
    log_path: Path

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/held":
            self.release.wait(30)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"INFO citylogin.access: GET {self.path} 200 request_id={self.headers[HEADER]}\n")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def held_server(tmp_path):
    log_path = tmp_path / "server0.log"
    log_path.write_text("")
    handler = type("Held", (_Held,), {"release": threading.Event(), "log_path": log_path})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log_path, handler.release
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


def test_a_request_without_an_answer_is_named_with_the_servers_own_line(held_server, monkeypatch):
    url, log_path, release = held_server
    ledger = RequestLedger({url: log_path})
    ledger.install(monkeypatch)
    try:
        with ledger.doing("delete step of device 1234abcd"), ledger.doing("DELETE /account by the holder"):
            assert requests.get(url + "/quick", timeout=30).status_code == 200
            with pytest.raises(requests.ReadTimeout):
                requests.get(url + "/held", timeout=0.5)  # the server holds it until released
        release.set()
        wait_until(lambda: "/held" in log_path.read_text(), what="the server's line for the held request")
    finally:
        ledger.stop()
    [report] = ledger.report()
    request_id = ledger.unanswered[0].request_id
    assert report.startswith(f"delete step of device 1234abcd > DELETE /account by the holder: GET /held to "
                             f"process 0 ({url}), request_id={request_id}, no answer after ")
    assert f"GET /held 200 request_id={request_id}" in report
    assert "ReadTimeout" in report
    assert ledger.latencies().startswith("1 ")  # the one answered request, counted under its step
    assert "delete: 1 " in ledger.latencies()


def test_requests_to_other_hosts_are_not_the_ledgers(held_server, monkeypatch):
    url, log_path, release = held_server
    ledger = RequestLedger({"http://127.0.0.1:1": log_path})
    ledger.install(monkeypatch)
    try:
        assert requests.get(url + "/quick", timeout=30).status_code == 200
        assert requests.get(url + "/quick", timeout=30).request.headers.get(HEADER) is None
    finally:
        ledger.stop()
    assert ledger.latencies() == "no requests" and ledger.report() == []
