"""A DynamoDB that does not answer, or answers too slowly, costs a request a few seconds and a
503 with Retry-After, not minutes (issue 8, defect 3). The apps under test reach the real DynamoDB
Local through a proxy that is then slowed down; they share its key ring, so the access tokens of
an app on the real DynamoDB Local pass the JWT check and reach DynamoDB."""
from __future__ import annotations

import time

import pytest
import requests

from citylogin.client.api import Client
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device
from tests.support.tcp_faults import FaultyProxy

# Defaults: 2 attempts x 2 s read timeout per call; /readyz: one attempt of 1 s.
REQUEST_BUDGET = 6.0
READINESS_BUDGET = 2.5


@pytest.fixture
def device(make_server) -> Client:
    """A device logged in (a bound session) on an app of its own."""
    url, _ = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    return client


def timed_get(url: str, client: Client | None = None) -> tuple[requests.Response, float]:
    headers = client.auth_headers("GET", url) if client else {}  # a fresh proof, made before the clock starts
    started = time.monotonic()
    response = requests.get(url, headers=headers, timeout=30)
    return response, time.monotonic() - started


def assert_unavailable(response: requests.Response) -> None:
    assert problem(response)[:2] == (503, "service_unavailable")
    assert int(response.headers["Retry-After"]) > 0


def test_black_holed_dynamodb_answers_503_within_seconds(make_server, device, dynamodb_endpoint):
    # The app starts (and reads its key ring) while DynamoDB answers; then DynamoDB goes silent.
    with FaultyProxy(dynamodb_endpoint) as proxy:
        url, _ = make_server(dynamodb_endpoint_url=proxy.url, create_tables=False)
        proxy.delay = 3600.0  # no answer at all
        response, took = timed_get(url + "/session/me", device)
        assert_unavailable(response)
        assert took < REQUEST_BUDGET
        response, took = timed_get(url + "/readyz")
        assert_unavailable(response)
        assert took < READINESS_BUDGET


def test_slow_dynamodb_answers_503_within_seconds_then_serves_when_fast_again(make_server, device,
                                                                              dynamodb_endpoint):
    with FaultyProxy(dynamodb_endpoint) as proxy:
        url, _ = make_server(dynamodb_endpoint_url=proxy.url, create_tables=False)
        proxy.delay = 5.0
        response, took = timed_get(url + "/session/me", device)
        assert_unavailable(response)
        assert took < REQUEST_BUDGET
        response, took = timed_get(url + "/readyz")
        assert_unavailable(response)
        assert took < READINESS_BUDGET

        proxy.delay = 0.2  # slow but within the timeouts: served, no restart needed
        assert timed_get(url + "/session/me", device)[0].status_code == 200
        assert timed_get(url + "/readyz")[0].status_code == 200
