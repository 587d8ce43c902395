"""A poll of the device authorization grant costs at most one DynamoDB call (issue 63: a screen polls every
5 s for up to 10 minutes, so its polls outnumber every other request of a sign-in). Counted with a botocore
event hook on the app's own client, as tests/oidc/test_oidc_dynamodb_calls.py counts the code flow, on a
clock of the test's own (each poll after the interval: never `slow_down` by the test's own pace). The
answers are what RFC 8628 §3.5 says: authorization_pending until the person answers, then the tokens once.
bench/device_poll.py measures the same poll's server CPU against userinfo's."""
from __future__ import annotations

from collections import Counter

import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.citylogin.test_dynamodb_calls import CallCounter
from tests.support.device_screen import approve
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device, settle_background

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
INTERVAL = 5            # the default: the test's clock moves past it between polls
ONE_CALL = 1


@pytest.fixture
def counted(make_server):
    url, ctx = make_server(host_name="127.0.0.1", max_concurrent_devices=2)
    clock = FakeClock()
    ctx.clock = clock
    added = apps.add_app(ctx, name="TV app", push_url=None, oidc=OidcClient(public=True, device_flow=True))
    return url, ctx, clock, added.app.client_id, CallCounter(ctx.dynamodb)


def _poll(url: str, client_id: str, device_code: str) -> requests.Response:
    return requests.post(url + "/oidc/token", timeout=10, data={
        "grant_type": DEVICE_CODE_GRANT, "device_code": device_code, "client_id": client_id})


def _counted(ctx, counter: CallCounter, call) -> tuple[requests.Response, Counter]:
    settle_background(ctx)
    counter.take()
    answer = call()
    settle_background(ctx)      # what a poll leaves for after its answer counts too
    return answer, counter.take()


def test_a_pending_poll_costs_one_dynamodb_call(counted):
    url, ctx, clock, client_id, counter = counted
    started = requests.post(url + "/oidc/device_authorization", timeout=10,
                            data={"client_id": client_id, "scope": "openid"}).json()
    _poll(url, client_id, started["device_code"])   # the app's record in the registry's copy from here on
    for _ in range(3):
        clock.advance(INTERVAL + 1)
        answer, calls = _counted(ctx, counter, lambda: _poll(url, client_id, started["device_code"]))
        assert answer.status_code == 400 and answer.json()["error"] == "authorization_pending", answer.text
        assert sum(calls.values()) == ONE_CALL and set(calls) <= {"UpdateItem", "GetItem"}, calls


def test_an_unknown_device_code_costs_one_call_too(counted):
    """A made-up code is refused after the one read that finds nothing: no more for an attacker's guesses."""
    url, ctx, _, client_id, counter = counted
    _poll(url, client_id, "not-a-device-code-" + "x" * 30)
    answer, calls = _counted(ctx, counter, lambda: _poll(url, client_id, "not-a-device-code-" + "y" * 30))
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant", answer.text
    assert sum(calls.values()) == ONE_CALL and set(calls) <= {"UpdateItem", "GetItem"}, calls


def test_polls_answer_pending_then_the_tokens_once(counted):
    """The counted poll is the real one: after the approval the same poll answers the tokens, once."""
    url, ctx, clock, client_id, counter = counted
    phone = register_device(url)
    on_clock(clock, phone)
    phone.login(PASSWORD)
    started = requests.post(url + "/oidc/device_authorization", timeout=10,
                            data={"client_id": client_id, "scope": "openid profile"}).json()
    clock.advance(INTERVAL + 1)
    assert _poll(url, client_id, started["device_code"]).json()["error"] == "authorization_pending"
    assert approve(phone, started["user_code"]).status_code == 200
    clock.advance(INTERVAL + 1)
    tokens = _poll(url, client_id, started["device_code"])
    assert tokens.status_code == 200 and tokens.json()["token_type"].lower() == "bearer", tokens.text
    clock.advance(INTERVAL + 1)
    again = _poll(url, client_id, started["device_code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text
