"""DynamoDB throttling and server errors through the app: once botocore's standard retries
(CITYLOGIN_DYNAMODB_MAX_ATTEMPTS, default 2) are spent, a request answers 503 service_unavailable
with Retry-After within its budget, never a 500; the log gets one line per burst naming the cause;
a login whose transaction is throttled writes nothing; an answer damaged on its way is retried (a
committed transaction's retry is answered as the same transaction); the app serves again once
DynamoDB does.

The apps under test reach DynamoDB Local through tests/support/dynamo_faults.py, which answers as
Amazon DynamoDB does when it throttles or fails; an app on DynamoDB Local itself makes the tables
and the key ring first, and the apps share them (so its tokens pass the JWT check behind the proxy)."""
from __future__ import annotations

import logging
import time

import pytest
import requests

from citylogin.client.api import Client
from citylogin.client.keys import sign_challenge
from common.errors import StorageUnavailable
from sessions.service import session_store
from tests.support.dynamo_faults import DynamoFaults, Shape
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device
from common.runtime.context import AppContext

MAX_ATTEMPTS = 2  # the default
# 2 attempts, each answered at once, and botocore's backoff between them (at most 1 s for throttling):
# a second or so; generous for a loaded machine, far below a hung request.
REQUEST_BUDGET = 10.0
CAUSES = {Shape.PROVISIONED_THROUGHPUT_EXCEEDED: "throttling", Shape.THROTTLING: "throttling",
          Shape.REQUEST_LIMIT_EXCEEDED: "throttling", Shape.INTERNAL_SERVER_ERROR: "server error",
          Shape.HTML_503: "server error", Shape.CRC32_MISMATCH: "connection"}


@pytest.fixture
def faults(dynamodb_endpoint):
    with DynamoFaults(dynamodb_endpoint) as proxy:
        yield proxy


@pytest.fixture
def home(make_server) -> tuple[str, AppContext]:
    """An app on DynamoDB Local itself: it makes the tables and the key ring."""
    return make_server()


def app_behind(make_server, faults: DynamoFaults) -> str:
    url, _ = make_server(dynamodb_endpoint_url=faults.url, create_tables=False)
    return url


def new_challenge(url: str) -> str:
    response = requests.post(url + "/login/challenge", json={}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["challenge"]


def timed(send) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = send()
    return response, time.monotonic() - started


def login(url: str, device: Client, challenge: str) -> requests.Response:
    """The device's login at `url`, as Client.login sends it, over a challenge issued before."""
    key = device.require_key_file()
    body = {"username": key.username, "password": PASSWORD, "client_cert": key.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key.private_key(), challenge)}
    return requests.post(url + "/login/", json=body, headers={"DPoP": device.proof("POST", url + "/login/")},
                         timeout=30)


def me(url: str, device: Client) -> requests.Response:
    return requests.get(url + "/session/me", headers=device.auth_headers("GET", url + "/session/me"), timeout=30)


def refresh(url: str, device: Client) -> requests.Response:
    return requests.post(url + "/session/refresh", json={"refresh_token": device.refresh_token},
                         headers={"DPoP": device.proof("POST", url + "/session/refresh")}, timeout=30)


def assert_unavailable(response: requests.Response) -> None:
    assert problem(response)[:2] == (503, "service_unavailable")
    assert int(response.headers["Retry-After"]) > 0


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "DynamoDB unavailable" in r.getMessage()]


@pytest.mark.parametrize("shape", list(CAUSES), ids=[s.name for s in CAUSES])
def test_a_persistent_fault_answers_503_within_the_budget_logs_once_and_serves_when_it_clears(
        make_server, home, faults, shape, caplog):
    device = register_device(home[0])
    device.login(PASSWORD)
    url = app_behind(make_server, faults)
    challenge = new_challenge(url)
    caplog.set_level(logging.INFO)
    caplog.clear()

    faults.fail(shape)
    answers = [timed(lambda: me(url, device)), timed(lambda: refresh(url, device)),
               timed(lambda: login(url, device, challenge))]
    faults.clear()

    for response, took in answers:
        assert_unavailable(response)
        assert took < REQUEST_BUDGET
    assert sum(faults.answered.values()) >= len(answers) * MAX_ATTEMPTS
    lines = outage_lines(caplog)
    assert len(lines) == 1 and f"DynamoDB unavailable ({CAUSES[shape]}: " in lines[0], lines
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert me(url, device).status_code == 200


@pytest.mark.parametrize("shape, max_attempts", [(Shape.THROTTLING, MAX_ATTEMPTS), (Shape.INTERNAL_SERVER_ERROR, 3)])
def test_the_failed_call_is_tried_max_attempts_times_before_the_503(make_server, home, faults, shape, max_attempts):
    device = register_device(home[0])
    device.login(PASSWORD)
    url, _ = make_server(dynamodb_endpoint_url=faults.url, create_tables=False, dynamodb_max_attempts=max_attempts)
    faults.forget_counts()
    faults.fail(shape, operations={"GetItem"})  # /session/me reads its session
    assert_unavailable(me(url, device))
    assert faults.answered == {("GetItem", shape): max_attempts}


def test_with_a_share_of_all_calls_throttled_or_failing_every_answer_is_served_or_a_503(make_server, home, faults,
                                                                                         caplog):
    device = register_device(home[0])
    device.login(PASSWORD)
    url = app_behind(make_server, faults)
    faults.fail(Shape.THROTTLING, fraction=0.3)
    faults.fail(Shape.HTML_503, fraction=0.2)
    faults.fail(Shape.CRC32_MISMATCH, operations={"GetItem", "Query", "BatchGetItem"}, fraction=0.2)

    answers = [me(url, device) for _ in range(20)]

    outcomes = {(a.status_code, a.headers.get("Retry-After")) for a in answers}
    assert outcomes <= {(200, None), (503, str(StorageUnavailable.RETRY_AFTER))}, [a.text for a in answers]
    assert (200, None) in outcomes and sum(faults.answered.values()) > 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_refresh_whose_committed_answer_was_damaged_is_retried_and_served(make_server, home, faults):
    # The retry carries the same ClientRequestToken: DynamoDB answers it as the transaction that
    # committed, not as a second rotation of the refresh token (which would look like its reuse).
    device = register_device(home[0])
    device.login(PASSWORD)
    url = app_behind(make_server, faults)
    faults.fail(Shape.CRC32_MISMATCH, operations={"TransactWriteItems"}, times=1)

    rotated = refresh(url, device)

    assert rotated.status_code == 200, rotated.text
    assert faults.answered == {("TransactWriteItems", Shape.CRC32_MISMATCH): 1}
    device.use_tokens({**rotated.json(), "token_type": "DPoP"})
    assert me(url, device).status_code == 200
    assert refresh(url, device).status_code == 200


def test_a_login_whose_session_transaction_is_throttled_answers_503_and_writes_nothing(make_server, home, faults):
    home_url, home_ctx = home
    device = register_device(home_url)  # registered, never logged in
    user_uuid = device.require_key_file().user_uuid
    url = app_behind(make_server, faults)
    challenge = new_challenge(url)

    faults.fail(Shape.THROTTLED_TRANSACTION)
    refused = login(url, device, challenge)

    assert problem(refused)[:2] == (503, "service_unavailable")
    assert faults.answered[("TransactWriteItems", Shape.THROTTLED_TRANSACTION)] >= 1
    store = session_store(home_ctx)
    assert store.list_for_user(user_uuid) == []
    assert store.get_presence(user_uuid).entries == {}

    faults.clear()
    assert login(url, device, new_challenge(url)).status_code == 200
    assert len(store.list_for_user(user_uuid)) == 1


def test_a_throttled_login_transaction_is_an_outage_not_a_race(make_server, home, faults, caplog):
    device = register_device(home[0])
    url = app_behind(make_server, faults)
    challenge = new_challenge(url)
    caplog.set_level(logging.INFO)

    faults.fail(Shape.THROTTLED_TRANSACTION)
    refused = login(url, device, challenge)

    assert_unavailable(refused)
    assert faults.answered[("TransactWriteItems", Shape.THROTTLED_TRANSACTION)] <= MAX_ATTEMPTS
    lines = outage_lines(caplog)
    assert len(lines) == 1 and "DynamoDB unavailable (throttling: TransactionCanceledException" in lines[0], lines
