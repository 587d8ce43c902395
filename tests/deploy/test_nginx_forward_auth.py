"""deploy/nginx/citylogin-forward-auth.conf.template (SPEC §11, forward authentication): Debian's
nginx guards an app's API with auth_request against `citylogin serve`'s GET /session/check. The
app (tests/support/echo_app.py, its own process) answers with the X-Citylogin-* headers it got."""
from __future__ import annotations

import base64
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from citylogin.cli.main import main
from citylogin.client.api import Client
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device
from tests.support.nginx import require_nginx, running_forward_auth_nginx
from tests.support.ports import free_port
from tests.support.services import running_process, running_service

REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Deployment:
    url: str        # nginx, in front of the app
    citylogin: str  # where devices register and log in
    env: dict       # citylogin's settings, for its CLI


@pytest.fixture(scope="module", autouse=True)
def nginx_present() -> None:
    require_nginx()


@pytest.fixture(scope="module")
def deployment(nginx_present, dynamodb_endpoint, tmp_path_factory) -> Deployment:
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("fwd") + "_",
                         "trusted_proxies": 1, "max_concurrent_devices": 1, "log_level": "WARNING",
                         "data_dir": tmp_path_factory.mktemp("citylogin"), **FAST_ARGON2, **RAISED_LIMITS}),
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    app_port = free_port()
    with ExitStack() as stack:
        citylogin = stack.enter_context(running_service("citylogin", env, args=("serve",)))
        app = stack.enter_context(running_process([sys.executable, "-m", "tests.support.echo_app", str(app_port)],
                                                  port=app_port, env={}, cwd=REPOSITORY))
        url = stack.enter_context(running_forward_auth_nginx(tmp_path_factory.mktemp("nginx"),
                                                             citylogin_urls=[citylogin], app_urls=[app]))
        yield Deployment(url, citylogin, env)


@pytest.fixture
def device(deployment) -> Client:
    client = register_device(deployment.citylogin)
    client.login(PASSWORD)
    return client


def api(deployment: Deployment, token: str | None, *, by: Client | None = None, method: str = "GET",
        path: str = "/api/notes", **kwargs) -> requests.Response:
    """A request to the guarded app: a token bound to `by`'s key goes as DPoP with a fresh proof over
    this request (which nginx names to the check); without `by`, as Bearer (the forged ones here)."""
    headers = dict(kwargs.pop("headers", None) or {})
    if token and by:
        headers["Authorization"] = f"DPoP {token}"
        headers["DPoP"] = by.proof(method, deployment.url + path, access_token=token)
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, deployment.url + path, headers=headers, timeout=10, **kwargs)


def seen_by_app(response: requests.Response) -> list[list[str]]:
    """The X-Citylogin-* headers the app received, as [name, value] pairs in their order."""
    assert response.status_code == 200, (response.status_code, response.text[:300])
    return response.json()["citylogin"]


def refusal(response: requests.Response) -> tuple[int, str, str | None]:
    """The problem of a refused request, which carries exactly one Bearer challenge."""
    challenges = response.raw.headers.getlist("WWW-Authenticate")
    assert len(challenges) == 1 and challenges[0].startswith("Bearer"), challenges
    return problem(response)


def identity(client: Client) -> list[list[str]]:
    key_file = client.key_file
    assert key_file is not None and client.session_id
    return [["X-Citylogin-User", key_file.user_uuid], ["X-Citylogin-Session", client.session_id],
            ["X-Citylogin-Device", key_file.device_id]]


def test_a_live_session_reaches_the_app_with_who_it_is(deployment, device):
    assert seen_by_app(api(deployment, device.access_token, by=device)) == identity(device)
    # the method and the body go to the app; the check got neither (it answers GET only)
    posted = api(deployment, device.access_token, by=device, method="POST", data=b"x" * 70_000)
    assert posted.json()["method"] == "POST" and len(posted.json()["body"]) == 70_000
    assert seen_by_app(posted) == identity(device)


def test_without_a_valid_token_the_app_is_not_reached(deployment, device):
    assert refusal(api(deployment, None))[:2] == (401, "invalid_token")
    assert refusal(api(deployment, device.access_token[:-4] + "AAAA"))[:2] == (401, "invalid_token")
    assert refusal(api(deployment, "not-a-jwt", method="POST", json={"a": 1}))[:2] == (401, "invalid_token")


def test_a_client_cannot_say_who_it_is(deployment, device):
    spoofed = {"X-Citylogin-User": "someone-else", "x-citylogin-session": "s", "X-CITYLOGIN-DEVICE": "d"}
    assert seen_by_app(api(deployment, device.access_token, by=device, headers=spoofed)) == identity(device)
    assert seen_by_app(api(deployment, None, path="/public", headers=spoofed)) == []  # unguarded path: dropped
    assert refusal(api(deployment, None, headers=spoofed))[:2] == (401, "invalid_token")


def test_a_logged_out_session_is_refused_on_its_very_next_request(deployment, device):
    token = device.access_token
    assert seen_by_app(api(deployment, token, by=device)) == identity(device)
    device.logout()
    assert refusal(api(deployment, token, by=device))[:2] == (401, "session_revoked")


def test_a_device_displaced_by_another_login_is_refused_on_its_very_next_request(deployment, device):
    token = device.access_token
    assert seen_by_app(api(deployment, token, by=device)) == identity(device)
    other = Client(deployment.citylogin)
    other.pair(device.request_pairing()["qr_code"], username=device.key_file.username, password=PASSWORD)
    other.login(PASSWORD, force=True)  # one device at a time: the first one's session ends

    status, code, reason = refusal(api(deployment, token, by=device))
    assert (status, code) == (401, "session_revoked") and reason
    assert seen_by_app(api(deployment, other.access_token, by=other)) == identity(other)


def test_a_locked_account_is_refused_as_citylogin_refuses_it(deployment, device):
    token = device.access_token
    assert seen_by_app(api(deployment, token, by=device)) == identity(device)
    result = CliRunner().invoke(main, ["admin", "lock", device.key_file.username, "--reason", "test"],
                                env=deployment.env)
    assert result.exit_code == 0, result.output

    direct = requests.get(deployment.citylogin + "/session/check", timeout=10,
                          headers=device.auth_headers("GET", deployment.citylogin + "/session/check"))
    through_nginx = api(deployment, token, by=device)
    assert problem(through_nginx) == problem(direct) and through_nginx.status_code in (401, 403)
    assert through_nginx.headers.get("WWW-Authenticate") == direct.headers.get("WWW-Authenticate")
