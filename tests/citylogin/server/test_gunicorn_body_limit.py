"""A body over the 64 KiB limit under gunicorn's threaded worker (SPEC §3): the 413 must leave the
keep-alive connection usable, or say `Connection: close`, so the client's next request on the same
session gets an answer instead of a ConnectionError."""
from __future__ import annotations

import pytest
import requests

from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env
from tests.support.services import running_gunicorn


@pytest.fixture(scope="module")
def gunicorn_url(dynamodb_endpoint, data_dir, table_prefix):
    config = {"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir, "table_prefix": table_prefix,
              "log_level": "WARNING", **FAST_ARGON2, **RAISED_LIMITS}
    with running_gunicorn(config_env(config), "--worker-class", "citylogin.server.gunicorn_worker.ThreadWorker",
                          "-w", "1", "--threads", "4") as url:
        yield url


def _assert_too_large(response: requests.Response) -> None:
    assert response.status_code == 413, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "payload_too_large"


@pytest.mark.parametrize("route", ["/login/", "/login/challenge", "/session/refresh", "/nope"])
def test_too_large_body_then_next_request_on_the_same_session(gunicorn_url, route):
    big = b'{"a": "' + b"x" * (1024 * 1024) + b'"}'
    with requests.Session() as http:
        http.trust_env = False
        for _ in range(3):
            _assert_too_large(http.post(gunicorn_url + route, data=big, timeout=20,
                                        headers={"Content-Type": "application/json"}))
            after = http.post(gunicorn_url + "/session/refresh", json={}, timeout=20)
            assert after.status_code == 400 and after.json()["code"] == "missing_fields", after.text[:300]
            assert http.get(gunicorn_url + "/healthz", timeout=20).status_code == 200


def test_too_large_chunked_body_is_refused_too(gunicorn_url):
    # A valid JSON object padded past the limit: werkzeug alone would cut it at 64 KiB and accept it.
    def chunks():
        yield b'{"refresh_token": "x"}'
        for _ in range(64):
            yield b" " * 16384

    with requests.Session() as http:
        http.trust_env = False
        for _ in range(3):
            _assert_too_large(http.post(gunicorn_url + "/session/refresh", data=chunks(), timeout=20,
                                        headers={"Content-Type": "application/json"}))
            assert http.get(gunicorn_url + "/healthz", timeout=20).status_code == 200


def test_small_chunked_body_is_read(gunicorn_url):
    with requests.Session() as http:
        http.trust_env = False
        response = http.post(gunicorn_url + "/session/refresh", data=iter([b'{"refresh_token"', b': "x"}']),
                             timeout=20, headers={"Content-Type": "application/json"})
        assert response.status_code == 401 and response.json()["code"] == "invalid_refresh_token", response.text
