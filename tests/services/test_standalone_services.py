"""Each service runs alone as its own process with its own empty data directory; they share only
DynamoDB Local and the configuration (SPEC §10), so a token issued by the login service works on
the session manager. A service that has no DynamoDB to use says so in one line, and its log
output to a file carries no terminal colour codes."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from contextlib import ExitStack

import pytest
import requests

from citylogin.client.api import Client
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.live import PASSWORD
from tests.support.ports import free_port
from tests.support.services import running_service
from tests.support.tcp_faults import refused_endpoint

MODULES = ["registration.app_registration", "login_app.app_login", "session_manager.app_session_manager",
           "device_manager.app_device_manager"]


def test_token_from_the_login_service_works_on_the_session_manager(dynamodb_endpoint, tmp_path, table_prefix):
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": table_prefix,
                      **FAST_ARGON2, **RAISED_LIMITS})
    env["CITYLOGIN_KEY_ENCRYPTION_KEY"] = base64.b64encode(os.urandom(32)).decode()
    with ExitStack() as stack:
        registration, login, sessions, device = (
            stack.enter_context(running_service(m, {**env, "CITYLOGIN_DATA_DIR": str(tmp_path / m)})) for m in MODULES)
        name = unique_name()
        device_client = Client(registration)
        key_file = device_client.register(username=name, email=f"{name}@example.com", password=PASSWORD)
        on_login = Client(login, key_file=key_file)
        on_login.login(PASSWORD)
        me = requests.get(sessions + "/session/me", timeout=10,
                          headers=on_login.auth_headers("GET", sessions + "/session/me"))
        assert me.status_code == 200
        assert me.json()["device_id"] == key_file.device_id
        refreshed = requests.post(sessions + "/session/refresh", json={"refresh_token": on_login.refresh_token},
                                  headers={"DPoP": on_login.proof("POST", sessions + "/session/refresh")}, timeout=10)
        assert refreshed.status_code == 200
        for url in (registration, login, sessions, device):
            assert requests.get(url + "/readyz", timeout=10).status_code == 200
            assert requests.get(url + "/openapi.json", timeout=10).json()["openapi"] == "3.1.0"
        assert requests.get(login + "/.well-known/jwks.json", timeout=10).json()["keys"]


# --- a start that cannot work, and the log output -----------------------------------------------

def _environment(tmp_path, **settings: str) -> dict[str, str]:
    """The parent's environment without CITYLOGIN_* or AWS settings, AWS credential files and the
    instance metadata out of reach: as on a fresh machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CITYLOGIN_", "AWS_"))}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true",
               CITYLOGIN_DATA_DIR=str(tmp_path / "data"), **settings)
    return env


@pytest.mark.parametrize("module", MODULES)
def test_a_service_without_dynamodb_says_what_to_set_in_one_line(module, tmp_path):
    done = subprocess.run([sys.executable, "-m", module], env=_environment(tmp_path), capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and done.stdout == "", done.stderr
    name = "citylogin-" + module.rpartition(".")[2].removeprefix("app_").replace("_", "-")
    assert done.stderr.splitlines() == [f"{name}: no DynamoDB to use: set CITYLOGIN_DYNAMODB_ENDPOINT_URL (e.g. "
                                        "http://127.0.0.1:8000 with `citylogin dynamodb-local`) or AWS credentials "
                                        "and region for Amazon DynamoDB"]


def test_with_a_key_encryption_key_but_no_credentials_the_line_is_the_same(tmp_path):
    env = _environment(tmp_path, CITYLOGIN_KEY_ENCRYPTION_KEY=base64.b64encode(os.urandom(32)).decode())
    done = subprocess.run([sys.executable, "-m", MODULES[0]], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "no DynamoDB to use" in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_endpoint_is_named_in_one_line(tmp_path):
    with refused_endpoint() as endpoint:
        env = _environment(tmp_path, CITYLOGIN_DYNAMODB_ENDPOINT_URL=endpoint, CITYLOGIN_LOG_LEVEL="ERROR")
        done = subprocess.run([sys.executable, "-m", MODULES[0]], env=env, capture_output=True, text=True,
                              timeout=180, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines() == [f"citylogin-registration: cannot reach DynamoDB at {endpoint}/: start it "
                                        "(`citylogin dynamodb-local`) or correct CITYLOGIN_DYNAMODB_ENDPOINT_URL"]


def test_log_output_to_a_file_has_no_colour_codes(dynamodb_endpoint, tmp_path):
    port = free_port()
    env = _environment(tmp_path, CITYLOGIN_DYNAMODB_ENDPOINT_URL=dynamodb_endpoint,
                       CITYLOGIN_TABLE_PREFIX=unique_name("t") + "_",
                       CITYLOGIN_HOST="127.0.0.1", CITYLOGIN_PORT=str(port), CITYLOGIN_LOG_LEVEL="INFO")
    log_path = tmp_path / "service.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", MODULES[2]], env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            try:
                requests.get(url + "/healthz", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert requests.get(url + "/no-such-path", timeout=10).status_code == 404  # werkzeug: yellow
        assert requests.get(url + "/session/me", timeout=10).status_code == 401    # werkzeug: bold red
    finally:
        process.terminate()
        process.wait(timeout=15)
    output = log_path.read_text()
    assert "GET /no-such-path" in output and "GET /session/me" in output, output
    assert "\x1b[" not in output
