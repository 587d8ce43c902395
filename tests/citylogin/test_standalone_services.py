"""Each service runs alone as its own process with its own empty data directory; they share only
DynamoDB Local and the configuration (SPEC §10), so a token issued by the login service works on
the session manager."""
from __future__ import annotations

import base64
import os
from contextlib import ExitStack

import requests

from citylogin.client import Client
from tests.conftest import FAST_ARGON2, config_env, unique_name
from tests.support.live import PASSWORD
from tests.support.services import running_service

MODULES = ["registration.app_registration", "login_app.app_login", "session_manager.app_session_manager",
           "device_manager.app_device_manager"]


def test_token_from_the_login_service_works_on_the_session_manager(dynamodb_endpoint, tmp_path, table_prefix):
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": table_prefix, **FAST_ARGON2})
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
                          headers={"Authorization": f"Bearer {on_login.access_token}"})
        assert me.status_code == 200
        assert me.json()["device_id"] == key_file.device_id
        refreshed = requests.post(sessions + "/session/refresh", json={"refresh_token": on_login.refresh_token},
                                  timeout=10)
        assert refreshed.status_code == 200
        for url in (registration, login, sessions, device):
            assert requests.get(url + "/readyz", timeout=10).status_code == 200
            assert requests.get(url + "/openapi.json", timeout=10).json()["openapi"] == "3.1.0"
        assert requests.get(login + "/.well-known/jwks.json", timeout=10).json()["keys"]
