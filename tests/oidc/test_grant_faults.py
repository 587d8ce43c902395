"""DynamoDB failing mid-rotation or mid-revocation of an app's refresh token (SPEC §14, "Bad input and
faults"): nothing is half-written. A rotation moves the grant's generation and records its pair in
one conditional write, or not at all; a revocation marks the grant and puts the app's logout event in
one transaction, or neither: never a grant revoked without its event, nor an event of a grant still
held. An answer lost on its way after the write committed is retried without a second event. The
app under test reaches DynamoDB Local through tests/support/dynamo_faults.py."""
from __future__ import annotations

from typing import Any, Callable

import pytest
import requests
from botocore.exceptions import ClientError

from apps import service as apps
from apps.models import OidcClient
from oidc import grants
from sessions import service as sessions
from tests.support.dynamo_faults import DynamoFaults, Shape
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device
from tests.support.oidc import code_for, signed_in_tokens

# fault injection at each DynamoDB call; tests/oidc/test_refresh_tokens.py keeps the rules in the fast tier
pytestmark = pytest.mark.slow

REDIRECT = "https://app.example/callback"
GRACE = 10
WRITE = {"TransactWriteItems"}
# What DynamoDB answers a transaction that did not commit (after the client's own retries).
REFUSALS = (Shape.INTERNAL_SERVER_ERROR, Shape.THROTTLED_TRANSACTION, Shape.HTML_503)
WRITES = frozenset({"transact_write_items", "put_item", "update_item", "delete_item", "batch_write_item"})


@pytest.fixture
def faults(dynamodb_endpoint):
    with DynamoFaults(dynamodb_endpoint) as proxy:
        yield proxy


@pytest.fixture
def provider(make_server, faults):
    make_server()  # on DynamoDB Local itself: it makes the tables and the key ring
    url, ctx = make_server(host_name="127.0.0.1", dynamodb_endpoint_url=faults.url, create_tables=False,
                           refresh_reuse_grace=GRACE)
    clock = FakeClock()
    ctx.clock = clock
    credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    device = register_device(url)
    on_clock(clock, device)
    device.login(PASSWORD)
    return url, ctx, clock, credentials, device


def _refresh(url: str, credentials, refresh_token: str) -> requests.Response:
    return requests.post(url + "/oidc/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                         auth=(credentials.app.client_id, credentials.client_secret), timeout=30)


def _failing(faults: DynamoFaults, shape: Shape, send) -> requests.Response:
    """`send()` while every transaction is answered with `shape`."""
    faults.fail(shape, operations=WRITE)
    try:
        return send()
    finally:
        faults.clear()


def _state(ctx, device, credentials) -> tuple[int, str | None, int]:
    """(the grant's generation, why it was revoked, how many logout events of it the outbox holds)."""
    grant = grants.store(ctx).record(session_id=device.session_id, client_id=credentials.app.client_id)
    assert grant is not None
    told = [e for e in sessions.events_after(ctx, "0") if e.client_id == credentials.app.client_id]
    return grant.refresh_gen, grant.revoked, len(told)


@pytest.mark.parametrize("shape", REFUSALS)
def test_a_rotation_that_did_not_commit_leaves_the_token_as_it_was(provider, faults, shape):
    url, ctx, _, credentials, device = provider
    tokens = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")
    failed = _failing(faults, shape, lambda: _refresh(url, credentials, tokens["refresh_token"]))
    assert failed.status_code == 503, failed.text
    assert failed.json()["error"] == "temporarily_unavailable"  # RFC 6749 §5.2's JSON, not problem+json
    assert _state(ctx, device, credentials) == (1, None, 0)
    assert _refresh(url, credentials, tokens["refresh_token"]).status_code == 200  # not spent by the failure
    assert _state(ctx, device, credentials) == (2, None, 0)


def test_a_rotation_whose_answer_was_lost_is_answered_once_with_the_same_pair(provider, faults):
    url, ctx, _, credentials, device = provider
    tokens = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")
    faults.fail(Shape.CRC32_MISMATCH, operations=WRITE, times=1)  # committed, its answer cut short
    first = _refresh(url, credentials, tokens["refresh_token"])
    assert first.status_code == 200, first.text
    again = _refresh(url, credentials, tokens["refresh_token"])  # the app retrying: within the grace
    assert (again.json()["access_token"], again.json()["refresh_token"]) == \
        (first.json()["access_token"], first.json()["refresh_token"])
    assert _state(ctx, device, credentials) == (2, None, 0)


@pytest.mark.parametrize("shape", REFUSALS)
def test_a_revocation_that_did_not_commit_writes_neither_the_mark_nor_the_event(provider, faults, shape):
    url, ctx, clock, credentials, device = provider
    tokens = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")
    successor = _refresh(url, credentials, tokens["refresh_token"]).json()
    clock.advance(GRACE + 1)
    failed = _failing(faults, shape, lambda: _refresh(url, credentials, tokens["refresh_token"]))
    assert failed.status_code == 503, failed.text
    assert failed.json()["error"] == "temporarily_unavailable"  # RFC 6749 §5.2's JSON, not problem+json
    assert _state(ctx, device, credentials) == (2, None, 0)   # held, and nobody told
    userinfo = requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {successor['access_token']}"},
                            timeout=10)
    assert userinfo.status_code == 200

    reused = _refresh(url, credentials, tokens["refresh_token"])   # the reuse again, DynamoDB back
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert _state(ctx, device, credentials) == (2, grants.REFRESH_REUSE, 1)


def test_a_revocation_whose_answer_was_lost_is_told_once(provider, faults):
    url, ctx, clock, credentials, device = provider
    tokens = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")
    _refresh(url, credentials, tokens["refresh_token"])
    clock.advance(GRACE + 1)
    faults.fail(Shape.CRC32_MISMATCH, operations=WRITE, times=1)
    reused = _refresh(url, credentials, tokens["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert _state(ctx, device, credentials) == (2, grants.REFRESH_REUSE, 1)
    assert _refresh(url, credentials, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert _state(ctx, device, credentials) == (2, grants.REFRESH_REUSE, 1)


class FailingAt:
    """The app's DynamoDB client, its `at`-th write call of a request failing as a DynamoDB server
    error does (after the client's own retries): fault injection at each call, whatever the flow's
    writes are."""

    def __init__(self, client: Any, at: int) -> None:
        self.client, self.at, self.writes = client, at, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)
        if name not in WRITES:
            return method

        def write(**kwargs: Any) -> Any:
            self.writes += 1
            if self.writes == self.at:
                raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, name)
            return method(**kwargs)
        return write


def _at_each_write(ctx, send: Callable[[], requests.Response], held: Callable[[], tuple[str | None, int]]) -> int:
    """`send()` with its 1st, 2nd, ... write failing until one attempt meets no fault; after each, the
    grant is revoked with exactly one event of it, or held with none. Returns how many writes it took."""
    client, at = ctx.dynamodb, 1
    while True:
        failing = ctx.dynamodb = FailingAt(client, at)
        try:
            answer = send()
        finally:
            ctx.dynamodb = client
        revoked, told = held()
        assert (revoked, told) in ((None, 0), (grants.CODE_REPLAY, 1), (grants.REFRESH_REUSE, 1)), (at, revoked, told)
        if failing.writes < at:
            assert answer.status_code == 400, answer.text
            return at - 1
        assert answer.status_code in (400, 503), (at, answer.status_code, answer.text)
        at += 1


def test_a_refresh_reuse_failing_at_each_write_is_revoked_with_its_event_or_not_at_all(provider):
    url, ctx, clock, credentials, device = provider
    tokens = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")
    _refresh(url, credentials, tokens["refresh_token"])
    clock.advance(GRACE + 1)
    writes = _at_each_write(ctx, lambda: _refresh(url, credentials, tokens["refresh_token"]),
                            lambda: _state(ctx, device, credentials)[1:])
    assert writes >= 1 and _state(ctx, device, credentials) == (2, grants.REFRESH_REUSE, 1)


def test_a_code_replay_failing_at_each_write_is_revoked_with_its_event_or_not_at_all(provider):
    url, ctx, _, credentials, device = provider
    code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT,
                              scope="openid offline_access")

    def redeem() -> requests.Response:
        return requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                        "redirect_uri": REDIRECT, "code_verifier": verifier},
                             auth=(credentials.app.client_id, credentials.client_secret), timeout=30)
    assert redeem().status_code == 200
    writes = _at_each_write(ctx, redeem, lambda: _state(ctx, device, credentials)[1:])
    assert writes >= 1 and _state(ctx, device, credentials)[1:] == (grants.CODE_REPLAY, 1)
