"""`citylogin serve` runs what production runs (issue 53): gunicorn with citylogin's worker, two workers
that both answer and that /metrics counts together, citylogin's cut of a slow client, a certificate its CA
issued, a clean stop on SIGTERM and on Ctrl-C that takes DynamoDB Local along, and the data (the accounts,
the CA, the generated key-encryption key alone in the data directory) kept for the next start. `--dev` runs werkzeug's
reloading server instead, and a worker that cannot start stops serve rather than being forked again."""
from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gunicorn
import requests
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from common.version import running_version
from tests.citylogin.test_metrics import TOKEN, scrape, value
from tests.citylogin.server.test_serve import dynamodb_port, port_open
from tests.conftest import unique_name
from tests.support.ports import free_port
from tests.support.worker_metrics import answered_by
from tests.support.waiting import wait_until

STARTUP = 120  # DynamoDB Local alone may take 30 s to start on a loaded machine


class Serve:
    """`citylogin serve ARGS` on 127.0.0.1:<free port> with a data directory of its own; its log in a file."""

    def __init__(self, data_dir: Path, *args: str, **settings: str) -> None:
        self.data_dir, self.port = data_dir, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
        env.update(CITYLOGIN_DATA_DIR=str(data_dir), CITYLOGIN_HOST="127.0.0.1", CITYLOGIN_PORT=str(self.port),
                   CITYLOGIN_ARGON2_MEMORY_COST="8192", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1",
                   **{f"CITYLOGIN_{name.upper()}": text for name, text in settings.items()})
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log_path = data_dir / f"serve-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "citylogin", "serve", *args], env=env,
                                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> "Serve":
        """Until /readyz answers; a serve that does not is stopped (SIGTERM: its DynamoDB Local too)."""
        try:
            deadline = time.monotonic() + STARTUP
            while time.monotonic() < deadline:
                assert self.process.poll() is None, self.log()
                try:
                    if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                        return self
                except (requests.ConnectionError, requests.Timeout):  # refused, or held while the workers start
                    time.sleep(0.2)
            raise AssertionError("citylogin serve did not become ready:\n" + self.log()[-3000:])
        except BaseException:
            if self.process.poll() is None:
                self.stop()
            raise

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> str:
        self.process.send_signal(sig)
        self.process.wait(timeout=60)
        return self.log()


def serve_children(pid: int) -> set[int]:
    """The live processes running `python -m citylogin` whose parent is `pid` (from /proc): gunicorn's workers,
    or werkzeug's reloaded child; not DynamoDB Local."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            command = (stat.parent / "cmdline").read_text(errors="replace")
        except OSError:
            continue  # ended while we looked
        if int(fields[1]) == pid and fields[0] != "Z" and command.split("\0")[1:3] == ["-m", "citylogin"]:
            found.add(int(stat.parent.name))
    return found


def gone(pids: set[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def cut_slow_client(url_port: int) -> bytes:
    """What serve answers a client that sends half a request head and then nothing, until it closes."""
    with socket.create_connection(("127.0.0.1", url_port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        return received


def test_serve_runs_gunicorn_whose_two_workers_answer_and_stop_on_sigterm_keeping_the_data(tmp_path):
    name = unique_name()
    user = {"username": name, "email": f"{name}@example.com", "password": "a long passphrase"}
    serve = Serve(tmp_path, metrics_token=TOKEN, request_read_timeout="1", log_level="WARNING").wait_ready()
    try:
        assert serve.log().splitlines()[0] == f"citylogin {running_version()} starting"     # first: which one
        assert (f"serving with gunicorn {gunicorn.__version__}, citylogin's worker, 2 workers x 64 threads"
                in serve.log().splitlines())
        workers = serve_children(serve.process.pid)
        assert len(workers) == 2, serve.log()
        metrics_dir = next((tmp_path / "metrics").glob("serve-*"))
        sent = 0
        while sent < 400 and not all(answered_by(metrics_dir, "/healthz", workers).values()):
            for _ in range(20):  # a new connection each: the workers take turns as the kernel hands them out
                assert requests.get(serve.url + "/healthz", timeout=10).status_code == 200
            sent += 20

        def counted_all() -> dict[int, float]:  # a request is counted as its response closes
            answered = answered_by(metrics_dir, "/healthz", workers)
            return answered if sum(answered.values()) == sent else {}

        answered = wait_until(counted_all, what="every /healthz counted")
        assert all(answered.values()), answered  # both workers answered
        assert value(scrape(serve.url), "citylogin_http_requests_total", method="GET", route="/healthz",
                     status="200") == sent  # and any worker's scrape counts them all
        assert requests.get(serve.url + "/healthz", timeout=10).json()["version"] == running_version()
        assert cut_slow_client(serve.port).startswith(b"HTTP/1.1 408 ")  # citylogin's worker, not gthread's wait
        registered = requests.post(serve.url + "/registration/", json=user, timeout=30)
        assert registered.status_code == 201
        ca_pem = requests.get(serve.url + "/device/ca.pem", timeout=5).content
        cert = x509.load_pem_x509_certificate(base64.b64decode(registered.json()["client_cert"]))
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
        assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    finally:
        log = serve.stop(signal.SIGTERM)
    assert serve.process.returncode == 0, log
    assert log.splitlines()[-1] == "citylogin stopped", log[-2000:]
    assert not port_open(dynamodb_port(log)), "DynamoDB Local outlived citylogin serve"
    assert gone(workers)
    assert not list((tmp_path / "metrics").iterdir())  # this run's samples went with it

    again = Serve(tmp_path).wait_ready()  # as a newcomer runs it again: the same data, the same CA
    try:
        response = requests.post(again.url + "/registration/", json=user, timeout=30)
        assert (response.status_code, response.json()["code"]) == (409, "username_taken")
        assert requests.get(again.url + "/device/ca.pem", timeout=5).content == ca_pem
    finally:
        log = again.stop(signal.SIGINT)  # Ctrl-C
    assert again.process.returncode == 0, log
    assert not port_open(dynamodb_port(log)), "DynamoDB Local outlived citylogin serve"
    # The key ring lives in DynamoDB; the data directory keeps only its generated key-encryption key.
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["key-encryption.key"]
    assert oct((tmp_path / "keys" / "key-encryption.key").stat().st_mode & 0o777) == "0o600"


def test_serve_dev_runs_werkzeugs_reloading_server_and_stops_with_its_child(tmp_path):
    serve = Serve(tmp_path, "--dev").wait_ready()
    try:
        lines = serve.log().splitlines()
        assert lines[0] == f"citylogin {running_version()} starting"
        assert ("serving with werkzeug's development server (--dev), reloading when the code changes: "
                "not for production") in lines
        assert not any("gunicorn" in line for line in lines)
        reloaded = serve_children(serve.process.pid)
        assert len(reloaded) == 1  # werkzeug's reloader serves from a child it starts again on a change
    finally:
        log = serve.stop(signal.SIGTERM)
    assert serve.process.returncode == 0, log
    assert log.splitlines()[-1] == "citylogin stopped", log[-2000:]
    assert not port_open(dynamodb_port(log)), "DynamoDB Local outlived citylogin serve --dev"
    assert gone(reloaded)


def test_a_worker_that_cannot_start_stops_serve_and_its_dynamodb_local(tmp_path):
    audit_log = tmp_path / "audit"
    audit_log.mkdir()  # a directory: the master's check passes, each worker's log set-up fails
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    env.update(CITYLOGIN_DATA_DIR=str(tmp_path), CITYLOGIN_HOST="127.0.0.1", CITYLOGIN_PORT=str(port),
               CITYLOGIN_AUDIT_LOG=str(audit_log))
    done = subprocess.run([sys.executable, "-m", "citylogin", "serve"], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=STARTUP)  # it ends by itself
    assert done.returncode == 1, done.stderr[-3000:]
    assert done.stderr.splitlines()[-1] == "Error: a gunicorn worker could not start: the lines above say why"
    assert "IsADirectoryError" in done.stderr
    assert done.stderr.count("Booting worker with pid") <= 2  # none forked again
    assert not port_open(dynamodb_port(done.stderr)) and not port_open(port)
