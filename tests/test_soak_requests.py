"""The soak's account of a request that got no answer (tests/support/soak_requests.py, issue 82 item 10):
it names the step that sent it, the method, path and process, and quotes the server's own line for its
X-Request-ID, and, once it has waited long enough, py-spy's dump of that server's threads in request code.
The servers here hold a request until the client has given up (or until the dump is taken), so nothing
depends on how fast the machine is."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port
from tests.support.soak_requests import HEADER, PY_SPY, RequestLedger, serving_threads
from tests.support.waiting import stop, until_listening, wait_until


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


HOLDING_SERVER = """
import sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        while not Path(sys.argv[2]).exists():  # held until the test says so, then left without an answer
            time.sleep(0.05)
        self.close_connection = True

HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@pytest.mark.skipif(not PY_SPY.exists(), reason="py-spy is not in this venv")
def test_a_request_held_past_the_dump_time_has_its_servers_threads_dumped(tmp_path, monkeypatch):
    port, release = free_port(), tmp_path / "release"
    server = subprocess.Popen([sys.executable, "-c", HOLDING_SERVER, str(port), str(release)],
                              env={**os.environ, "CITYLOGIN_PORT": str(port)})
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server0.log"
    log_path.write_text("")
    ledger = RequestLedger({url: log_path}, dump_after=0.2)
    try:
        until_listening(server, port, timeout=30, name="the holding server", output=lambda: "")
        ledger.install(monkeypatch)

        def release_once_dumped() -> None:
            wait_until(lambda: any(entry.dump for entry in list(ledger._in_flight.values())), timeout=120,
                       what="the dump of the held request's server")
            release.write_text("")
        threading.Thread(target=release_once_dumped, daemon=True).start()
        with ledger.doing("me step of device 1234abcd"), pytest.raises(requests.ConnectionError):
            requests.get(url + "/session/me", timeout=120)
    finally:
        ledger.stop()
        stop(server)
    [report] = ledger.report()
    assert f"Process {server.pid}" in report and "the server's lines for it:\n    (none" in report


def test_of_a_dump_only_the_threads_in_request_code_are_kept():
    dump = ("Process 10: python -m citylogin serve\nPython v3.12.3\n\n"
            "Thread 11 (idle): \"ThreadPoolExecutor-0_0\"\n    _worker (concurrent/futures/thread.py:89)\n"
            "Thread 12 (active): \"ThreadPoolExecutor-0_1\"\n    update_item (common/database/dynamo_client.py:373)\n"
            "    erase_user_records (sessions/endings.py:52)\n    finish_deletion (flows/deletion.py:93)\n")
    kept = serving_threads(dump)
    assert "Process 10" in kept and "Thread 12" in kept and "finish_deletion" in kept
    assert "Thread 11" not in kept
