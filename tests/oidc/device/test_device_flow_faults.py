"""DynamoDB failing under the device authorization grant (RFC 8628, SPEC §14 "Bad input and faults"): an
approval or the redeeming poll that DynamoDB refuses (server errors, throttling, a load balancer's HTML 503)
answers a 503 at once (problem+json for the person, RFC 6749 `temporarily_unavailable` for the screen) and
leaves nothing half-written: no seat without the request marked approved and its user code used up, nor the
reverse (the code is still pending and can be approved again); a failed redemption leaves the approval to the
next poll, and no grant is ever recorded without the request spent. An answer lost on its way after the
transaction committed is retried as the same transaction: one outcome. DynamoDB down while a screen asks or a
person looks a code up is a 503, never a 500. The app reaches DynamoDB Local through
tests/support/dynamo_faults.py, or through a client whose n-th write fails
(tests/oidc/app_grants/test_grant_faults.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jwt
import pytest
import requests

from common.database import dynamo
from common.database.one_time_tokens import OneTimeTokenStore
from oidc.app_grants import ending as grants
from oidc.device.flow import device_code_digest
from oidc.device.store import APPROVED, PENDING, REDEEMED
from sessions import service as sessions
from tests.oidc.app_grants.test_grant_faults import FailingAt
from tests.support.device_flow import ask, poll, screen_app
from tests.support.dynamo_faults import DynamoFaults, Shape
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device

# fault injection at each DynamoDB call; tests/oidc/device/test_device_flow.py keeps the rules in the fast tier
pytestmark = pytest.mark.slow

WRITE = {"TransactWriteItems"}
# What DynamoDB answers a transaction that did not commit (after the client's own retries).
REFUSALS = (Shape.INTERNAL_SERVER_ERROR, Shape.THROTTLED_TRANSACTION, Shape.HTML_503)
# DynamoDB, or what is in front of it, refusing every call.
DOWN = (Shape.INTERNAL_SERVER_ERROR, Shape.THROTTLING, Shape.HTML_503, Shape.EMPTY_503)


@pytest.fixture
def faults(dynamodb_endpoint):
    with DynamoFaults(dynamodb_endpoint) as proxy:
        yield proxy


@dataclass(frozen=True)
class Provider:
    url: str
    ctx: object
    credentials: object
    phone: object


@pytest.fixture
def provider(make_server, faults):
    make_server()  # on DynamoDB Local itself: it makes the tables and the key ring
    url, ctx = make_server(host_name="127.0.0.1", dynamodb_endpoint_url=faults.url, create_tables=False,
                           device_poll_interval=1, max_concurrent_devices=0,  # every approval takes a seat
                           # the proxy answers its faults at once; on a busy machine its forwarding may take
                           # longer than production's 2 s read timeout, a 503 these tests do not ask for
                           dynamodb_read_timeout=30)
    phone = register_device(url)
    phone.login(PASSWORD)
    return Provider(url=url, ctx=ctx, credentials=screen_app(ctx), phone=phone)


def _approve(provider: Provider, user_code: str) -> requests.Response:
    return provider.phone.request("POST", "/oidc/device/approve",
                                  json={"user_code": user_code, "device_name": "Living-room TV", "force": True})


def _failing(faults: DynamoFaults, shape: Shape, send: Callable[[], requests.Response], *,
             operations: set[str] | None = WRITE) -> requests.Response:
    """`send()` while DynamoDB answers `operations` (every call for None) with `shape`."""
    faults.fail(shape, operations=operations)
    try:
        return send()
    finally:
        faults.clear()


@dataclass(frozen=True)
class State:
    """What is stored of one screen's request: its status and the session it names, the screen sessions of
    the phone's account, and the app's grants on them."""

    status: str
    session_id: str | None
    screens: frozenset[str]
    granted: frozenset[str]


def _state(provider: Provider, device_code: str) -> State:
    ctx = provider.ctx
    item = ctx.dynamodb.get_item(TableName=ctx.tables.one_time_tokens, ConsistentRead=True,
                                 Key=OneTimeTokenStore.key(device_code_digest(device_code)))["Item"]
    request = dynamo.from_item(item)
    phone = provider.phone.require_key_file()
    screens = frozenset(r.session_id for r in sessions.list_user_sessions(ctx, user_uuid=phone.user_uuid)
                        if r.device_id != phone.device_id)
    client_id = provider.credentials.app.client_id
    granted = frozenset(s for s in screens if grants.store(ctx).record(session_id=s, client_id=client_id))
    return State(status=str(request["status"]), session_id=request.get("session_id"), screens=screens,
                 granted=granted)


def _pending_state(provider: Provider, device_code: str, user_code: str) -> None:
    """Nothing of an approval: the request pending, no seat, no grant, and the code still the person's."""
    assert _state(provider, device_code) == State(status=PENDING, session_id=None, screens=frozenset(),
                                                  granted=frozenset())
    looked = requests.post(provider.url + "/oidc/device/lookup", json={"user_code": user_code}, timeout=30)
    assert looked.status_code == 200, looked.text
    # still pending for the screen (slow_down: polled again within its interval, as the loops below do)
    assert _error(poll(provider.url, provider.credentials, device_code)) in {"authorization_pending", "slow_down"}


def _approved_state(provider: Provider, device_code: str, session_id: str) -> None:
    """An approval whole: the request approved naming its seat, the one screen session, no grant yet."""
    assert _state(provider, device_code) == State(status=APPROVED, session_id=session_id,
                                                  screens=frozenset({session_id}), granted=frozenset())


def _error(response: requests.Response) -> str:
    assert response.status_code in (400, 401, 503), response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    return response.json()["error"]


def _asked(provider: Provider) -> dict:
    answer = ask(provider.url, provider.credentials)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _tokens_of(provider: Provider, device_code: str, session_id: str) -> dict:
    """The screen's one token answer, of the session the approval opened."""
    issued = poll(provider.url, provider.credentials, device_code)
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    assert jwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"] == session_id
    assert _state(provider, device_code) == State(status=REDEEMED, session_id=session_id,
                                                  screens=frozenset({session_id}), granted=frozenset({session_id}))
    assert _error(poll(provider.url, provider.credentials, device_code)) == "invalid_grant"
    return tokens


# --- the person's approval ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", REFUSALS)
def test_an_approval_that_did_not_commit_leaves_the_code_pending_and_no_seat(provider, faults, shape):
    asked = _asked(provider)
    failed = _failing(faults, shape, lambda: _approve(provider, asked["user_code"]))
    assert problem(failed)[:2] == (503, "service_unavailable"), failed.text
    _pending_state(provider, asked["device_code"], asked["user_code"])
    approved = _approve(provider, asked["user_code"])  # DynamoDB back: the same code approves
    assert approved.status_code == 200, approved.text
    _approved_state(provider, asked["device_code"], approved.json()["session_id"])
    _tokens_of(provider, asked["device_code"], approved.json()["session_id"])


def test_an_approval_failing_at_each_write_is_whole_or_nothing(provider):
    asked = _asked(provider)
    ctx, client, at = provider.ctx, provider.ctx.dynamodb, 1
    while True:
        failing = ctx.dynamodb = FailingAt(client, at)
        try:
            answer = _approve(provider, asked["user_code"])
        finally:
            ctx.dynamodb = client
        if failing.writes < at:  # no write failed: the approval went through
            assert answer.status_code == 200, answer.text
            break
        assert problem(answer)[:2] == (503, "service_unavailable"), (at, answer.text)
        _pending_state(provider, asked["device_code"], asked["user_code"])
        at += 1
    assert at > 2, at  # the approval's own transaction was among the writes that failed
    _approved_state(provider, asked["device_code"], answer.json()["session_id"])
    _tokens_of(provider, asked["device_code"], answer.json()["session_id"])


def test_an_approval_whose_answer_was_lost_after_it_committed_has_one_outcome(provider, faults):
    asked = _asked(provider)
    faults.fail(Shape.CRC32_MISMATCH, operations=WRITE, times=1)  # committed, its answer cut short
    approved = _approve(provider, asked["user_code"])
    faults.clear()
    assert faults.answered[("TransactWriteItems", Shape.CRC32_MISMATCH)] == 1
    assert approved.status_code == 200, approved.text  # the retry is the same transaction: its answer
    _approved_state(provider, asked["device_code"], approved.json()["session_id"])
    _tokens_of(provider, asked["device_code"], approved.json()["session_id"])


# --- the screen's redeeming poll --------------------------------------------------------------------------

def _approved(provider: Provider) -> tuple[str, str]:
    """(device_code, session_id) of a screen the phone approved."""
    asked = _asked(provider)
    approved = _approve(provider, asked["user_code"])
    assert approved.status_code == 200, approved.text
    return asked["device_code"], approved.json()["session_id"]


@pytest.mark.parametrize("shape, operations", [*((shape, WRITE) for shape in REFUSALS),
                                               *((shape, None) for shape in DOWN)],
                         ids=lambda v: getattr(v, "name", None) or ("writes" if v else "every-call"))
def test_a_redemption_that_did_not_commit_leaves_the_approval_to_the_next_poll(provider, faults, shape, operations):
    device_code, session_id = _approved(provider)
    failed = _failing(faults, shape, lambda: poll(provider.url, provider.credentials, device_code),
                      operations=operations)
    assert failed.status_code == 503 and _error(failed) == "temporarily_unavailable", failed.text
    _approved_state(provider, device_code, session_id)  # not spent, no grant
    _tokens_of(provider, device_code, session_id)


def test_a_redemption_failing_at_each_write_grants_only_with_the_request_spent(provider):
    device_code, session_id = _approved(provider)
    ctx, client, at = provider.ctx, provider.ctx.dynamodb, 1
    while True:
        failing = ctx.dynamodb = FailingAt(client, at)
        try:
            answer = poll(provider.url, provider.credentials, device_code)
        finally:
            ctx.dynamodb = client
        if failing.writes < at:
            assert answer.status_code == 200, answer.text
            break
        assert answer.status_code == 503 and _error(answer) == "temporarily_unavailable", (at, answer.text)
        _approved_state(provider, device_code, session_id)
        at += 1
    assert at > 2, at  # the poll's record and the redemption's transaction both failed once
    assert jwt.decode(answer.json()["id_token"], options={"verify_signature": False})["sid"] == session_id
    assert _state(provider, device_code) == State(status=REDEEMED, session_id=session_id,
                                                  screens=frozenset({session_id}), granted=frozenset({session_id}))
    assert _error(poll(provider.url, provider.credentials, device_code)) == "invalid_grant"


def test_a_redemption_whose_answer_was_lost_after_it_committed_is_one_token_answer(provider, faults):
    device_code, session_id = _approved(provider)
    faults.fail(Shape.CRC32_MISMATCH, operations=WRITE, times=1)
    issued = poll(provider.url, provider.credentials, device_code)
    faults.clear()
    assert faults.answered[("TransactWriteItems", Shape.CRC32_MISMATCH)] == 1
    assert issued.status_code == 200, issued.text
    assert jwt.decode(issued.json()["id_token"], options={"verify_signature": False})["sid"] == session_id
    assert _state(provider, device_code) == State(status=REDEEMED, session_id=session_id,
                                                  screens=frozenset({session_id}), granted=frozenset({session_id}))
    assert _error(poll(provider.url, provider.credentials, device_code)) == "invalid_grant"


# --- asking and looking up ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", DOWN)
def test_dynamodb_down_while_a_screen_asks_or_a_person_looks_up_is_a_503(provider, faults, shape):
    asked = _asked(provider)
    refused = _failing(faults, shape, lambda: ask(provider.url, provider.credentials), operations=None)
    assert refused.status_code == 503 and _error(refused) == "temporarily_unavailable", refused.text
    looked = _failing(faults, shape, lambda: requests.post(provider.url + "/oidc/device/lookup", timeout=30,
                                                           json={"user_code": asked["user_code"]}), operations=None)
    assert problem(looked)[:2] == (503, "service_unavailable"), looked.text
    denied = _failing(faults, shape, lambda: requests.post(provider.url + "/oidc/device/deny", timeout=30,
                                                           json={"user_code": asked["user_code"]}), operations=None)
    assert problem(denied)[:2] == (503, "service_unavailable"), denied.text
    _pending_state(provider, asked["device_code"], asked["user_code"])  # the refused denial decided nothing
