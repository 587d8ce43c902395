"""`citylogin serve` as a newcomer runs it (no host, no endpoint): the commands beside it use its DynamoDB
Local, never a second, and stop theirs when none runs. Its start, its stops and its data kept for the next
start: tests/citylogin/server/test_serve_gunicorn.py."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import unique_name
from tests.support.ports import free_port


def start_serve(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    env.update(CITYLOGIN_DATA_DIR=str(data_dir), CITYLOGIN_PORT=str(port), CITYLOGIN_ARGON2_MEMORY_COST="8192")
    process = subprocess.Popen([sys.executable, "-m", "citylogin", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # DynamoDB Local alone may take 30 s to start on a loaded machine
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read()
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return process
            except (requests.ConnectionError, requests.Timeout):  # refused, or held while the workers start
                time.sleep(0.2)
        raise AssertionError("citylogin serve did not become ready")
    except BaseException:
        if process.poll() is None:  # SIGTERM, not SIGKILL: it stops its workers and DynamoDB Local too
            process.terminate()
            process.communicate(timeout=60)
        raise


def stop_with_ctrl_c(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    return err


def dynamodb_port(stderr: str) -> int:
    line = next(text for text in stderr.splitlines() if text.startswith("DynamoDB Local: http://127.0.0.1:"))
    return int(line.split(":")[3].split()[0])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`citylogin ARGS` as an operator runs it beside the server: the same data directory, no endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    env.update(CITYLOGIN_DATA_DIR=str(data_dir))
    return subprocess.run([sys.executable, "-m", "citylogin", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_commands_beside_a_running_serve_use_its_dynamodb_local_never_a_second(tmp_path):
    port, name = free_port(), unique_name()
    process = start_serve(tmp_path, port)
    try:
        user = {"username": name, "email": f"{name}@example.com", "password": "a long passphrase"}
        assert requests.post(f"http://127.0.0.1:{port}/registration/", json=user, timeout=30).status_code == 201
        endpoint = (tmp_path / "dynamodb" / "citylogin-endpoint").read_text().strip()

        for args, shown in ((["keys", "list"], "signing"), (["admin", "show", name], name)):
            done = cli(tmp_path, *args)
            assert done.returncode == 0, done.stderr
            assert done.stderr.splitlines()[0] == (f"DynamoDB Local of a running citylogin: {endpoint} "
                                                   f"(data in {(tmp_path / 'dynamodb').resolve()}); citylogin serve "
                                                   f"at http://localhost:{port}, pid {process.pid}"), done.stderr
            assert shown in done.stdout, done.stdout

        second = cli(tmp_path, "serve", "--port", str(free_port()))  # would open the same files
        assert second.returncode != 0 and "Traceback" not in second.stderr
        refusal = [line for line in second.stderr.splitlines() if line.startswith("Error:")]
        assert len(refusal) == 1 and f"running at {endpoint}" in refusal[0], second.stderr
    finally:
        err = stop_with_ctrl_c(process)
    assert endpoint == f"http://127.0.0.1:{dynamodb_port(err)}"
    assert not (tmp_path / "dynamodb" / "citylogin-endpoint").exists()
    alone = cli(tmp_path, "admin", "show", name)  # nothing runs: the command starts its own, and stops it
    assert alone.returncode == 0 and alone.stderr.startswith("DynamoDB Local: "), alone.stderr
    assert not port_open(dynamodb_port(alone.stderr))
