"""DynamoDB failing under dynamic registration (RFC 7591; SPEC §14 "Bad input and faults"): a registration
interrupted at any of its DynamoDB calls — the initial access token's read, the transaction that writes the
app with the token's use and the address's count — answers 503 `temporarily_unavailable` (RFC 6749 §5.2's
JSON) and leaves no app without its token's use and no use spent without its app; the token registers the
app when tried again. A transaction whose answer was lost after it committed is retried as the same
transaction (its ClientRequestToken): one app, one use. (The race for a token's last use is in
tests/oidc/registration/test_dynamic_registration.py.)"""
from __future__ import annotations

from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from relying_parties import registration_tokens
from relying_parties import service as apps
from tests.support.dynamo_faults import DynamoFaults, Shape

# fault injection at each DynamoDB call; tests/oidc/registration/test_dynamic_registration.py keeps the rules in the
# fast tier
pytestmark = pytest.mark.slow

METADATA = {"redirect_uris": ["https://rp.example/callback"], "client_name": "Rebus"}
REFUSALS = (Shape.INTERNAL_SERVER_ERROR, Shape.THROTTLED_TRANSACTION, Shape.HTML_503)
DOWN = (Shape.INTERNAL_SERVER_ERROR, Shape.THROTTLING, Shape.HTML_503, Shape.EMPTY_503)


@pytest.fixture
def faults(dynamodb_endpoint):
    with DynamoFaults(dynamodb_endpoint) as proxy:
        yield proxy


@pytest.fixture
def behind(make_server, faults):
    """A server on DynamoDB Local (it makes the tables and the key ring), and one on the same tables behind the
    fault proxy: (its url, the first's context)."""
    _, ctx = make_server()
    url, _ = make_server(dynamodb_endpoint_url=faults.url, create_tables=False,
                         # the proxy answers its faults at once; on a busy machine its forwarding may take
                         # longer than production's 2 s read timeout, a 503 these tests do not ask for
                         dynamodb_read_timeout=30)
    return url, ctx


def _register(url: str, token: str) -> requests.Response:
    return requests.post(url + "/oidc/register", json=METADATA, headers={"Authorization": f"Bearer {token}"},
                         timeout=60)


def _whole(ctx, made) -> int:
    """How many apps the token registered, once it is checked that each took one use and each use made one."""
    registered = [app for app in apps.list_apps(ctx) if app.registered_with == made.record.token_id]
    spent = made.record.uses - registration_tokens.store(ctx).get(made.record.token_id).uses_left
    assert len(registered) == spent, (len(registered), spent)
    return spent


def _unavailable(answer: requests.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "temporarily_unavailable" and answer.headers.get("Retry-After")


@pytest.mark.parametrize("shape", REFUSALS)
def test_a_registration_whose_transaction_did_not_commit_spends_nothing(behind, faults, shape):
    url, ctx = behind
    made = registration_tokens.make_token(ctx, uses=2)
    faults.fail(shape, operations={"TransactWriteItems"})
    try:
        _unavailable(_register(url, made.token))
    finally:
        faults.clear()
    assert _whole(ctx, made) == 0
    assert _register(url, made.token).status_code == 201
    assert _whole(ctx, made) == 1


@pytest.mark.parametrize("shape", DOWN)
def test_a_registration_while_dynamodb_is_down_is_a_503_that_writes_nothing(behind, faults, shape):
    url, ctx = behind
    made = registration_tokens.make_token(ctx)
    faults.fail(shape)
    try:
        _unavailable(_register(url, made.token))
    finally:
        faults.clear()
    assert _whole(ctx, made) == 0


def test_a_registration_whose_answer_was_lost_is_one_app_and_one_use(behind, faults):
    url, ctx = behind
    made = registration_tokens.make_token(ctx, uses=3)
    faults.fail(Shape.CRC32_MISMATCH, operations={"TransactWriteItems"}, times=1)  # committed, its answer cut short
    registered = _register(url, made.token)
    assert registered.status_code == 201, registered.text
    assert faults.answered[("TransactWriteItems", Shape.CRC32_MISMATCH)] == 1
    assert _whole(ctx, made) == 1
    assert apps.find_app(ctx, client_id=registered.json()["client_id"]) is not None


class FailingCall:
    """The app's DynamoDB client, its `at`-th call on the apps table failing as a DynamoDB server error does
    (after the client's own retries): each call of a registration in turn (the token's read, the transaction)."""

    def __init__(self, client: Any, at: int, table: str) -> None:
        self.client, self.at, self.table, self.calls = client, at, table, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if not callable(method) or name.startswith("_") or name in ("meta", "exceptions"):
            return method

        def call(**kwargs: Any) -> Any:
            if self.table in repr(kwargs):
                self.calls += 1
                if self.calls == self.at:
                    raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, name)
            return method(**kwargs)
        return call


def test_a_registration_failing_at_each_call_is_whole_or_not_at_all(make_server):
    url, ctx = make_server()
    made = registration_tokens.make_token(ctx, uses=5)
    client, at = ctx.dynamodb, 1
    while True:
        failing = ctx.dynamodb = FailingCall(client, at, ctx.tables.apps)
        try:
            answer = _register(url, made.token)
        finally:
            ctx.dynamodb = client
        if failing.calls < at:  # no call failed: the registration went through
            assert answer.status_code == 201, answer.text
            break
        _unavailable(answer)
        assert _whole(ctx, made) == 0, at
        at += 1
    assert at >= 3  # the token's read and the transaction each failed once
    assert _whole(ctx, made) == 1
