"""CITYLOGIN_PUBLIC_URL, where QR codes and mail links lead: `citylogin serve` derives it from what
it binds; gunicorn and Amazon DynamoDB require it (tests/citylogin/test_gunicorn_start.py runs
gunicorn without it); development processes on a local engine link to serve's default address."""
from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
import time

import pytest
import requests

from citylogin.cli import bound_url
from common.app_factory import with_public_url
from common.config import ConfigError, load_settings
from common.dynamodb_local import free_port
from tests.conftest import FAST_ARGON2, config_env, unique_name


def test_serve_links_to_the_address_it_binds(dynamodb_endpoint, tmp_path):
    port, name = free_port(), unique_name()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    env.update(config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": tmp_path,
                           "table_prefix": unique_name("pub") + "_", "log_level": "INFO", **FAST_ARGON2,
                           "key_encryption_key": base64.b64encode(os.urandom(32)).decode()}))
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "citylogin.cli", "serve", "--host", "127.0.0.1",
                                    "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        user = {"username": name, "email": f"{name}@example.com", "password": "a long passphrase"}
        assert requests.post(base + "/registration/", json=user, timeout=30).status_code == 201
        deadline = time.monotonic() + 20
        while "#verify=" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)  # the mail may go out after the answer
    finally:
        process.terminate()
        process.wait(timeout=30)
    links = re.findall(r"(https?://\S+)/#verify=", log_path.read_text())
    assert links == [f"http://localhost:{port}"], log_path.read_text()[-2000:]   # the loopback by name


def test_serve_names_the_machine_for_a_wildcard_bind():
    assert bound_url("127.0.0.1", 8080) == "http://localhost:8080"    # a passkey's RP id cannot be an IP
    assert bound_url("192.0.2.7", 8080) == "http://192.0.2.7:8080"
    assert bound_url("0.0.0.0", 5000) == f"http://{socket.gethostname()}:5000"
    assert bound_url("::1", 5000) == "http://localhost:5000"
    assert bound_url("2001:db8::7", 5000) == "http://[2001:db8::7]:5000"


def test_where_nothing_can_derive_it_it_is_required(monkeypatch):
    given = load_settings({"public_url": "https://login.example.org"}, environ={})
    assert with_public_url(given).public_url == "https://login.example.org"
    local = load_settings({"dynamodb_endpoint_url": "http://127.0.0.1:8000"}, environ={})
    assert with_public_url(local).public_url == "http://localhost:5000"   # where serve puts the web UI
    with pytest.raises(ConfigError, match="CITYLOGIN_PUBLIC_URL is required"):
        with_public_url(load_settings({}, environ={}))                    # Amazon DynamoDB
    monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/23.0.0")
    with pytest.raises(ConfigError, match="CITYLOGIN_PUBLIC_URL is required"):
        with_public_url(local)                                            # gunicorn, any engine
