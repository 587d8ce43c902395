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

from relying_parties import service as apps
from relying_parties.models import OidcClient
from oidc.app_grants import ending as grants
from sessions import service as sessions
from tests.support.dynamo_faults import DynamoFaults, Shape
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device
from tests.support.oidc import code_for, finish_as_device, query_of, signed_in_tokens, waiting_request

# fault injection at each DynamoDB call; tests/oidc/token/test_refresh_tokens.py keeps the rules in the fast tier
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
                           refresh_reuse_grace=GRACE,
                           # the proxy answers its faults at once; on a busy machine its forwarding may take
                           # longer than production's 2 s read timeout, a 503 these tests do not ask for
                           dynamodb_read_timeout=30)
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


class FailingTransactions(FailingAt):
    """The app's DynamoDB client, every transaction failing as a DynamoDB server error does."""

    def __init__(self, client: Any) -> None:
        super().__init__(client, at=0)

    def __getattr__(self, name: str) -> Any:
        if name != "transact_write_items":
            return getattr(self.client, name)

        def refused(**kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, name)
        return refused


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


def _sign_out(device, credentials) -> requests.Response:
    return device.request("DELETE", f"/session/{device.session_id}/apps/{credentials.app.client_id}")


def _redeem(url: str, credentials, code: str, verifier: str) -> requests.Response:
    return requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                    "redirect_uri": REDIRECT, "code_verifier": verifier},
                         auth=(credentials.app.client_id, credentials.client_secret), timeout=30)


@pytest.mark.parametrize("shape", REFUSALS)
def test_a_sign_out_is_whole_or_not_at_all_and_a_code_given_before_it_never_makes_a_grant(provider, faults, shape):
    """SPEC §14: the person signing the app out of the session, and a code given before that redeemed after,
    each with DynamoDB refusing the write: the sign-out is the grant's end with its marker and its event, or
    nothing; the code makes no grant whichever call fails, and tells nobody anything."""
    url, ctx, clock, credentials, device = provider
    signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")
    code = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope="openid offline_access")
    clock.advance(0.001)
    failed = _failing(faults, shape, lambda: _sign_out(device, credentials))
    assert failed.status_code == 503, failed.text
    assert _state(ctx, device, credentials)[1:] == (None, 0)  # still signed in, nobody told
    assert _sign_out(device, credentials).status_code == 204
    assert _state(ctx, device, credentials)[1:] == (grants.SIGNED_OUT_BY_PERSON, 1)

    failed = _failing(faults, shape, lambda: _redeem(url, credentials, *code))
    assert failed.status_code in (400, 503), failed.text
    refused = _redeem(url, credentials, *code)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert _state(ctx, device, credentials)[1:] == (grants.SIGNED_OUT_BY_PERSON, 1)


def test_a_redemption_after_the_persons_sign_out_failing_at_each_write_makes_no_grant(provider):
    url, ctx, clock, credentials, device = provider
    signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")
    code = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope="openid offline_access")
    clock.advance(0.001)
    assert _sign_out(device, credentials).status_code == 204
    client = ctx.dynamodb
    for at in range(1, 10):
        failing = ctx.dynamodb = FailingAt(client, at)
        try:
            answer = _redeem(url, credentials, *code)
        finally:
            ctx.dynamodb = client
        assert _state(ctx, device, credentials)[1:] == (grants.SIGNED_OUT_BY_PERSON, 1), at
        if failing.writes < at:
            assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
            break
        assert answer.status_code in (400, 503), (at, answer.text)
    else:
        raise AssertionError("a refused redemption made more than 9 writes")


def test_a_consent_withdrawal_cut_short_is_finished_by_the_retry_and_codes_before_it_give_nothing(make_server,
                                                                                                 faults):
    """The consent goes first (after it no code gives a grant), then the app's grants; a withdrawal whose
    grant ending failed is finished by the person's retry instead of answering consent_not_found."""
    make_server()
    url, ctx = make_server(host_name="127.0.0.1", dynamodb_endpoint_url=faults.url, create_tables=False)
    credentials = apps.add_app(ctx, name="Diary", push_url=None,
                               oidc=OidcClient(redirect_uris=(REDIRECT,), consent=True))
    device = register_device(url)
    device.login(PASSWORD)

    def consented_code() -> tuple[str, str]:
        request_id, verifier = waiting_request(url, credentials.app.client_id, redirect_uri=REDIRECT,
                                               browser=device, scope="openid offline_access")
        return query_of(finish_as_device(device, request_id, consent=True))["code"], verifier
    assert _redeem(url, credentials, *consented_code()).status_code == 200
    code = consented_code()
    client = ctx.dynamodb
    ctx.dynamodb = FailingTransactions(client)     # the consent's deletion commits, the grant's end fails
    try:
        cut_short = device.request("DELETE", f"/account/consents/{credentials.app.client_id}")
    finally:
        ctx.dynamodb = client
    assert cut_short.status_code == 503, cut_short.text
    assert _state(ctx, device, credentials)[1:] == (None, 0) and device.get_json("/account/consents") == \
        {"consents": []}
    refused = _redeem(url, credentials, *code)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert device.request("DELETE", f"/account/consents/{credentials.app.client_id}").status_code == 204
    assert _state(ctx, device, credentials)[1:] == (grants.CONSENT_WITHDRAWN, 1)
    assert device.request("DELETE", f"/account/consents/{credentials.app.client_id}").status_code == 404


def test_a_new_sign_in_failing_at_each_write_replaces_the_grant_with_its_event_or_not_at_all(provider):
    """SPEC §14: the app signing the person in again replaces its grant and tells the old one's end (to its
    guards) in one transaction: after each fault, the old grant holds with no event, or the new one with
    exactly one event of the old one's end."""
    url, ctx, _, credentials, device = provider
    signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")
    old = grants.store(ctx).get(session_id=device.session_id, client_id=credentials.app.client_id)
    assert old is not None
    code = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope="openid offline_access")

    def replaced() -> tuple[bool, int]:
        held = grants.store(ctx).get(session_id=device.session_id, client_id=credentials.app.client_id)
        assert held is not None
        told = [e for e in sessions.events_after(ctx, "0") if e.grant_id == old.grant_id]
        assert all(e.reason == grants.REPLACED for e in told)
        return held.grant_id != old.grant_id, len(told)

    client = ctx.dynamodb
    for at in range(1, 10):
        failing = ctx.dynamodb = FailingAt(client, at)
        try:
            answer = _redeem(url, credentials, *code)
        finally:
            ctx.dynamodb = client
        assert replaced() in ((False, 0), (True, 1)), at
        if failing.writes < at:
            assert answer.status_code == 200, answer.text
            break
        assert answer.status_code == 503, (at, answer.text)
    else:
        raise AssertionError("a redemption made more than 9 writes")
    assert replaced() == (True, 1)
