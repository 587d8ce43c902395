"""The benchmark's floor (bench/floor_app.py) makes citylogin's own DynamoDB requests: for a
challenge, a login (a repeated one, as the benchmark makes), a refresh and GET /session/me, the
same (operation, tables) sequence, as bench/dynamo_proxy.py sees it between each app and DynamoDB
Local. When citylogin's requests change, this fails until the floor makes the new ones."""
from __future__ import annotations

import secrets
import time

import pytest
import requests

from bench.dynamo_proxy import DelayProxy
from bench.floor_app import create_app as create_floor
from citylogin.client.api import Client
from citylogin.client.keys import sign_challenge
from tests.conftest import FAST_ARGON2
from tests.support.live import PASSWORD, register_device, serving

QUIET = 0.4  # no request for this long: what the operation set off (a history row after the answer) is done


@pytest.fixture
def proxy(dynamodb_endpoint):
    with DelayProxy(upstream_port=int(dynamodb_endpoint.rsplit(":", 1)[1])) as running:
        yield running


def _settled(proxy: DelayProxy, mark: int) -> list[tuple[str, tuple[str, ...]]]:
    deadline, seen = time.monotonic() + 5, -1
    while time.monotonic() < deadline:
        count = proxy.mark()
        if count == seen:
            break
        seen = count
        time.sleep(QUIET)
    return [(r.operation, r.tables) for r in proxy.since(mark)]


def _sequences(proxy: DelayProxy, base_url: str, device: Client, prefix: str) -> dict[str, list]:
    """Challenge, POST /login/, refresh and /session/me once each, after one untimed login (so
    that the login ends the device's previous session, as every login of the benchmark does)."""
    http = requests.Session()
    key_file, out = device.key_file, {}

    def record(name: str, make):
        mark = proxy.mark()
        result = make()
        out[name] = [(op, tuple(t.removeprefix(prefix) for t in tables)) for op, tables in _settled(proxy, mark)]
        return result

    def login(challenge: str) -> dict:
        body = {"username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
                "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge)}
        response = http.post(base_url + "/login/", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def challenge() -> str:
        response = http.post(base_url + "/login/challenge", timeout=30)
        assert response.status_code == 201, response.text
        return response.json()["challenge"]

    login(challenge())
    _settled(proxy, proxy.mark())
    value = record("challenge", challenge)
    tokens = record("login", lambda: login(value))
    tokens = record("refresh", lambda: http.post(base_url + "/session/refresh",
                                                 json={"refresh_token": tokens["refresh_token"]}, timeout=30).json())
    response = record("me", lambda: http.get(base_url + "/session/me", timeout=30,
                                             headers={"Authorization": f"Bearer {tokens['access_token']}"}))
    assert response.status_code == 200, response.text
    return out


def test_the_floor_makes_citylogins_dynamodb_requests(proxy, make_server, table_prefix, data_dir):
    url, _ = make_server(dynamodb_endpoint_url=proxy.endpoint_url, concurrency_policy="force")
    citylogin_device, floor_device = register_device(url), register_device(url)
    floor_app = create_floor({"endpoint_url": proxy.endpoint_url, "table_prefix": table_prefix,
                              "secret": secrets.token_hex(32),
                              "argon2": {k.removeprefix("argon2_"): v for k, v in FAST_ARGON2.items()}})
    with serving(floor_app) as floor_url:
        key_file = floor_device.key_file
        created = requests.post(floor_url + "/floor/users", timeout=30, json={
            "username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64()})
        assert created.status_code == 201, created.text
        floor = _sequences(proxy, floor_url, floor_device, table_prefix)
    citylogin = _sequences(proxy, url, citylogin_device, table_prefix)
    assert citylogin["me"] == [("GetItem", ("sessions",))]  # the recording sees what it should
    for operation in ("challenge", "login", "refresh", "me"):
        assert floor[operation] == citylogin[operation], operation
