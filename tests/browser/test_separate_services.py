"""One home per URL prefix, end to end: the four services and the web UI run as separate processes
(sharing only DynamoDB and the configuration), Debian's nginx routes them by path prefix with the
shipped deploy/nginx/citylogin-services.conf.template, and the web UI in Chromium and the CLI as
a subprocess both work through it: register, pair a second device, list devices, the account, the
live session stream, log out. A route served on the wrong service would be answered 404 there.

Skipped only when nginx is missing and CI is unset; under CI a missing nginx fails."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from contextlib import ExitStack

import pytest
import requests

from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.live import PASSWORD
from tests.support.nginx import require_nginx, running_prefix_nginx
from tests.support.ports import free_port
from tests.support.services import running_service

SERVICES = {"REGISTRATION": "registration.app_registration", "LOGIN": "login_app.app_login",
            "SESSION": "session_manager.app_session_manager", "DEVICE": "device_manager.app_device_manager",
            "WEB": "citylogin.webui.app"}
KEY_ENCRYPTION_KEY = base64.b64encode(os.urandom(32)).decode()  # one per module, as its tables


@pytest.fixture(scope="module", autouse=True)
def nginx_present() -> None:
    require_nginx()


@pytest.fixture
def proxy(dynamodb_endpoint, table_prefix, tmp_path):
    """nginx's base URL in front of the five processes."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": table_prefix, **FAST_ARGON2,
                      **RAISED_LIMITS, "max_concurrent_devices": 0, "trusted_proxies": 1, "public_url": url})
    env["CITYLOGIN_KEY_ENCRYPTION_KEY"] = KEY_ENCRYPTION_KEY
    with ExitStack() as stack:
        upstreams = {name: stack.enter_context(running_service(
            module, {**env, "CITYLOGIN_DATA_DIR": str(tmp_path / module)})) for name, module in SERVICES.items()}
        yield stack.enter_context(running_prefix_nginx(tmp_path / "nginx", port=port, upstreams=upstreams))


def cli(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "citylogin", "client", *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL,
                          env={**os.environ, "CITYLOGIN_CLIENT_PASSWORD": PASSWORD, "NO_PROXY": "127.0.0.1"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_the_cli_works_through_the_prefix_proxy(proxy, tmp_path):
    name, first, second = unique_name(), tmp_path / "first.json", tmp_path / "second.json"
    cli("register", "--url", proxy, "--username", name, "--email", f"{name}@example.com", "--key-file", str(first))
    cli("login", "--key-file", str(first))                                   # /login
    account = json.loads(cli("account", "show", "--key-file", str(first), "--json").stdout)  # /account
    assert account["username"] == name
    payload = json.loads(cli("pair-request", "--key-file", str(first), "--json").stdout)["qr_code"]  # /registration
    cli("pair", payload, "--url", proxy, "--username", name, "--device-name", "phone", "--key-file", str(second))
    cli("login", "--key-file", str(second))
    devices = json.loads(cli("devices", "list", "--key-file", str(second), "--json").stdout)["devices"]  # /device
    assert sorted(d["device_name"] for d in devices) == ["First device", "phone"]
    sessions = json.loads(cli("sessions", "list", "--key-file", str(second), "--json").stdout)["sessions"]  # /session
    assert len(sessions) == 2
    cli("logout", "--key-file", str(first))
    assert requests.get(proxy + "/.well-known/jwks.json", timeout=10).json()["keys"]


def test_the_web_ui_works_through_the_prefix_proxy(proxy, new_device):
    a = new_device(proxy).open()                                           # / and /web/ from the web UI process
    user = unique_name()
    a.register(user, device_name="Alice laptop")                           # /registration, /login, /session/events
    payload = a.show_pairing_code()                                        # /registration/request_pairing_token
    b = new_device(proxy)
    b.pair(payload, user, device_name="Bob phone")                         # /device/register
    b.expect_devices_screen()                                              # /device/list
    for name in ("Alice laptop", "Bob phone"):
        b.device(name).wait_for()
    b.open_account()                                                       # /account
    b.log_out()                                                            # /session/logout
    b.expect_login_screen()


def test_a_tvs_sign_in_works_through_the_prefix_proxy(proxy, dynamodb_endpoint, table_prefix, tmp_path):
    """The OpenID Provider's routes (/oidc/…) are the session manager's, the approval page (/device exactly)
    the web UI's, and the device API (/device/…) the device manager's: a screen's whole sign-in through nginx."""
    from citylogin.client.api import Client
    from tests.support.notes import add_app

    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": table_prefix,
                      "data_dir": str(tmp_path / "cli"), "log_level": "WARNING"})
    app = add_app({**env, "CITYLOGIN_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY}, "Living-room",
                  options=("--device-flow", "--public"))
    metadata = requests.get(proxy + "/.well-known/openid-configuration", timeout=30).json()
    assert metadata["device_authorization_endpoint"] == proxy + "/oidc/device_authorization"
    asked = requests.post(metadata["device_authorization_endpoint"],
                          data={"client_id": app["client_id"], "scope": "openid profile"}, timeout=30)
    assert asked.status_code == 200, asked.text
    answer = asked.json()
    page = requests.get(answer["verification_uri_complete"], timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    looked = requests.post(proxy + "/oidc/device/lookup", json={"user_code": answer["user_code"]}, timeout=30)
    assert looked.status_code == 200 and looked.json()["client_name"] == "Living-room", looked.text
    phone = Client(proxy)
    name = unique_name()
    phone.register(username=name, email=f"{name}@example.com", password=PASSWORD)
    phone.login(PASSWORD)
    approved = phone.request("POST", "/oidc/device/approve",
                             json={"user_code": answer["user_code"], "device_name": "Living-room TV"})
    assert approved.status_code == 200, approved.text
    issued = requests.post(metadata["token_endpoint"], timeout=30, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": answer["device_code"],
        "client_id": app["client_id"]})
    assert issued.status_code == 200, issued.text
    userinfo = requests.get(metadata["userinfo_endpoint"], timeout=30,
                            headers={"Authorization": f"Bearer {issued.json()['access_token']}"})
    assert userinfo.status_code == 200 and userinfo.json()["preferred_username"] == name
