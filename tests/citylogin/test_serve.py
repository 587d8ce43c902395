"""`citylogin serve` as a newcomer runs it: DynamoDB Local started and persisted, clean stop."""
from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from common.dynamodb_local import free_port
from tests.conftest import unique_name


def start_serve(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    env.update(CITYLOGIN_DATA_DIR=str(data_dir), CITYLOGIN_PORT=str(port), CITYLOGIN_ARGON2_MEMORY_COST="8192")
    process = subprocess.Popen([sys.executable, "-m", "citylogin.cli", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("citylogin serve did not become ready")


def stop_with_ctrl_c(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    return err


def dynamodb_port(stderr: str) -> int:
    line = next(l for l in stderr.splitlines() if l.startswith("DynamoDB Local: http://127.0.0.1:"))
    return int(line.split(":")[3].split()[0])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_registers_persists_and_stops_cleanly(tmp_path):
    port, name = free_port(), unique_name()
    user = {"username": name, "email": f"{name}@example.com", "password": "a long passphrase"}
    process = start_serve(tmp_path, port)
    try:
        response = requests.post(f"http://127.0.0.1:{port}/registration/", json=user, timeout=30)
        assert response.status_code == 201
        ca_pem = requests.get(f"http://127.0.0.1:{port}/device/ca.pem", timeout=5).content
        ca = x509.load_pem_x509_certificate(ca_pem)
        cert = x509.load_pem_x509_certificate(base64.b64decode(response.json()["client_cert"]))
        cert.verify_directly_issued_by(ca)
        assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    finally:
        err = stop_with_ctrl_c(process)
    assert process.returncode in (0, -signal.SIGINT)
    assert not port_open(dynamodb_port(err)), "DynamoDB Local outlived citylogin serve"

    process = start_serve(tmp_path, port)
    try:
        again = requests.post(f"http://127.0.0.1:{port}/registration/", json=user, timeout=30)
        assert (again.status_code, again.json()["code"]) == (409, "username_taken")
        assert requests.get(f"http://127.0.0.1:{port}/device/ca.pem", timeout=5).content == ca_pem  # the same CA
    finally:
        stop_with_ctrl_c(process)
    # The key ring lives in DynamoDB; the data directory keeps only its generated key-encryption key.
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["key-encryption.key"]
    assert oct((tmp_path / "keys" / "key-encryption.key").stat().st_mode & 0o777) == "0o600"
