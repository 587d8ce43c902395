"""Codes and request_uris are spent only by a redemption that passes every check (SPEC §14 Authorize):
the client and its authentication, the redirect_uri, the PKCE verifier, the DPoP key. A failed attempt,
by anyone, leaves the code (or the PAR request_uri) to its client; a second redemption that passes every
check is still a replay and revokes what the first gave; two at once yield at most one token set that
stays valid; DynamoDB failing at any call of a redemption answers a quick 503 and half-writes nothing."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import pytest
import requests
from flask import has_request_context

from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.client.keys import dpop_proof, generate_key
from common.crypto.dpop import key_thumbprint
from common.database.one_time_tokens import OneTimeTokenStore
from oidc.token import codes
from oidc.core.models import Grant
from oidc.core.store import GrantStore, RequestStore
from tests.support.dynamo_faults import DynamoFaults, Shape
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import authorize_url, code_for, finish_as_device, pkce_pair, query_of, sign_in_page_request

REDIRECT = "https://app.example/callback"
SCOPE = "openid offline_access"
REQUEST_BUDGET = 10.0  # botocore's attempts, answered at once, and its backoff: far below a hung request


@dataclass(frozen=True)
class Redemption:
    """What one token request at `url` sends: `as_app`'s credentials, and a DPoP proof by `key`."""

    url: str
    code: str
    verifier: str
    redirect_uri: str = REDIRECT
    key: Any = None

    def send(self, as_app) -> requests.Response:
        headers = {"DPoP": dpop_proof(self.key, method="POST", url=self.url + "/oidc/token")} if self.key else {}
        return requests.post(self.url + "/oidc/token", headers=headers, timeout=30,
                             data={"grant_type": "authorization_code", "code": self.code,
                                   "redirect_uri": self.redirect_uri, "code_verifier": self.verifier},
                             auth=(as_app.app.client_id, as_app.client_secret))


def _app(ctx):
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))


def _signed_in_device(url: str):
    device = register_device(url)
    device.login(PASSWORD)
    return device


def _code_item(ctx, code: str) -> dict:
    """The row a code's redemption writes: its app's grant on its session (the code itself is sealed),
    {} while there is none."""
    opened = codes.opened(ctx.refresh_secrets, code, now=int(ctx.now().timestamp()))
    assert opened is not None, "not a live code"
    item = ctx.dynamodb.get_item(TableName=ctx.tables.oidc_grants, ConsistentRead=True, Key={
        "session_id": {"S": opened.session_id}, "client_id": {"S": opened.client_id}}).get("Item")
    return {**(item or {}), "request": opened.request_digest}


def _spent(ctx, code: str) -> bool:
    """Whether a code of the code's request was redeemed: its request's mark names the code's session."""
    opened = codes.opened(ctx.refresh_secrets, code, now=int(ctx.now().timestamp()))
    assert opened is not None, "not a live code"
    requests_ = RequestStore(OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens))
    return requests_.redeemed_session(digest=opened.request_digest) == opened.session_id


def _grant(ctx, device, credentials) -> Grant | None:
    return GrantStore(ctx.dynamodb, ctx.tables.oidc_grants).get(session_id=device.session_id,
                                                                 client_id=credentials.app.client_id)


def _holds_grant(ctx, device, credentials) -> bool:
    """Whether the app holds a live grant on the device's session (a revoked one's row may stay)."""
    grant = _grant(ctx, device, credentials)
    return grant is not None and grant.live


def _userinfo(url: str, tokens: dict) -> int:
    return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                        timeout=10).status_code


def _refresh(url: str, credentials, tokens: dict) -> requests.Response:
    return requests.post(url + "/oidc/token", data={"grant_type": "refresh_token",
                                                    "refresh_token": tokens["refresh_token"]},
                         auth=(credentials.app.client_id, credentials.client_secret), timeout=10)


# --- a failed attempt leaves the code to its client -------------------------------------------------

KEY, OTHER_KEY = generate_key(), generate_key()
# Each: (what the code is bound to at /oidc/authorize, the failed attempt, the error it gets).
FAILED_ATTEMPTS: dict[str, tuple[dict[str, str], Callable[[Redemption, Any, Any], requests.Response], str]] = {
    "wrong verifier": ({}, lambda r, app, other: Redemption(r.url, r.code, pkce_pair()[0]).send(app), "invalid_grant"),
    "no verifier": ({}, lambda r, app, other: Redemption(r.url, r.code, "").send(app), "invalid_grant"),
    "another client's credentials": ({}, lambda r, app, other: r.send(other), "invalid_grant"),
    "wrong redirect_uri": ({}, lambda r, app, other: Redemption(r.url, r.code, r.verifier, REDIRECT + "/x").send(app),
                           "invalid_grant"),
    "wrong DPoP key": ({"dpop_jkt": key_thumbprint(KEY.public_key())},
                       lambda r, app, other: Redemption(r.url, r.code, r.verifier, key=OTHER_KEY).send(app),
                       "invalid_grant"),
    "no DPoP proof": ({"dpop_jkt": key_thumbprint(KEY.public_key())},
                      lambda r, app, other: Redemption(r.url, r.code, r.verifier).send(app), "invalid_dpop_proof"),
}


def test_a_failed_redemption_leaves_the_code_redeemable_by_its_client(make_server):
    url, ctx = make_server(host_name="127.0.0.1")  # one server; a device of its own for each attempt
    credentials, other = _app(ctx), _app(ctx)
    for attempt, (bound, fail, error) in FAILED_ATTEMPTS.items():
        device = _signed_in_device(url)
        code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope=SCOPE, **bound)
        redemption = Redemption(url, code, verifier, key=KEY if bound else None)

        for _ in range(2):  # tried again, still nothing spent
            refused = fail(redemption, credentials, other)
            assert (refused.status_code, refused.json()["error"]) == (400, error), (attempt, refused.text)
        assert not _spent(ctx, code) and _grant(ctx, device, credentials) is None, attempt

        issued = redemption.send(credentials)
        assert issued.status_code == 200, (attempt, issued.text)
        assert _spent(ctx, code) and _holds_grant(ctx, device, credentials), attempt


def test_a_code_replaces_the_grant_there_is_when_it_is_redeemed_not_the_one_it_found(make_server):
    """A code names the app's grant it found on the session when it was given (its redemption's first guess);
    another sign-in replacing that grant meanwhile does not stand in its way, and no earlier grant's tokens
    outlive the replacements."""
    url, ctx = make_server(host_name="127.0.0.1")
    credentials, device = _app(ctx), _signed_in_device(url)

    def redeemed(code_and_verifier: tuple[str, str]) -> dict:
        answer = Redemption(url, *code_and_verifier).send(credentials)
        assert answer.status_code == 200, answer.text
        return answer.json()

    first = redeemed(code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope=SCOPE))
    found_first = [code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope=SCOPE)
                   for _ in range(2)]  # both given while the first grant holds
    second = redeemed(found_first[1])   # replaces the grant it found
    third = redeemed(found_first[0])    # found the first grant, replaces the second
    assert _grant(ctx, device, credentials).grant_id not in {None, ""}

    def userinfo(tokens: dict) -> int:
        return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                            timeout=10).status_code
    assert [userinfo(first), userinfo(second), userinfo(third)] == [401, 401, 200]


def test_a_second_redemption_that_passes_every_check_is_a_replay_and_revokes_the_first(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = _app(ctx)
    device = _signed_in_device(url)
    code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope=SCOPE)
    redemption = Redemption(url, code, verifier)
    first = redemption.send(credentials)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert _userinfo(url, tokens) == 200

    failed = Redemption(url, code, pkce_pair()[0]).send(credentials)   # a failed try proves nothing:
    assert failed.json()["error"] == "invalid_grant" and _userinfo(url, tokens) == 200   # no revocation

    replay = redemption.send(credentials)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    assert _userinfo(url, tokens) == 401
    assert _refresh(url, credentials, tokens).json()["error"] == "invalid_grant"
    assert not _holds_grant(ctx, device, credentials)
    assert redemption.send(credentials).json()["error"] == "invalid_grant"
    assert device.me()["session_id"] == device.session_id          # the device's own session goes on


def test_only_a_committed_redemption_signs_tokens(make_server, monkeypatch):
    """A code's tokens are signed once its transaction committed: a replay, or a redemption of a session
    that ended, signs nothing (and so gives nothing)."""
    from oidc.token import tokens
    signed: list[str] = []
    code_tokens = tokens.code_tokens

    def counted(ctx, request, *, scope):
        signed.append(request.authorization_code.request_digest)
        return code_tokens(ctx, request, scope=scope)

    monkeypatch.setattr(tokens, "code_tokens", counted)
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = _app(ctx)
    device = _signed_in_device(url)
    code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope=SCOPE)
    assert Redemption(url, code, verifier).send(credentials).status_code == 200 and len(signed) == 1
    replay = Redemption(url, code, verifier).send(credentials)
    assert (replay.status_code, replay.json()["error"], len(signed)) == (400, "invalid_grant", 1)

    ending = _signed_in_device(url)
    code, verifier = code_for(url, credentials.app.client_id, ending, redirect_uri=REDIRECT, scope=SCOPE)
    ending.logout()
    ended = Redemption(url, code, verifier).send(credentials)
    assert (ended.status_code, ended.json()["error"], len(signed)) == (400, "invalid_grant", 1)


@pytest.mark.slow  # rounds of racing threads; the replay test keeps the rule in the fast tier
def test_valid_redemptions_racing_on_threads_leave_at_most_one_token_set_valid(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = _app(ctx)
    device = _signed_in_device(url)
    for _ in range(5):
        code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope=SCOPE)
        answers = _at_once(3, partial(Redemption(url, code, verifier).send, credentials))
        won = [a.json() for a in answers if a.status_code == 200]
        assert len(won) == 1, [a.text for a in answers]   # the right code is not lost to the race either
        assert [a.json()["error"] for a in answers if a.status_code != 200] == ["invalid_grant"] * (3 - len(won))
        valid = [tokens for tokens in won if _userinfo(url, tokens) == 200
                 or _refresh(url, credentials, tokens).status_code == 200]
        assert len(valid) <= 1
        # each loser passed every check: a replay, which revoked what the winner got
        assert valid == [] and not _holds_grant(ctx, device, credentials)
        assert _spent(ctx, code)


def _at_once(n: int, send: Callable[[], requests.Response]) -> list[requests.Response]:
    """`send()` on `n` threads released together."""
    barrier, answers = threading.Barrier(n), []

    def run() -> None:
        barrier.wait(timeout=30)
        answers.append(send())
    threads = [threading.Thread(target=run) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == n
    return answers


# --- PAR: a request_uri is its client's ------------------------------------------------------------

def test_a_request_uri_presented_by_another_or_a_bad_client_id_stays_its_clients(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials, other = _app(ctx), _app(ctx)
    device = _signed_in_device(url)
    _, challenge = pkce_pair()
    pushed = requests.post(url + "/oidc/par", auth=(credentials.app.client_id, credentials.client_secret), data={
        "response_type": "code", "client_id": credentials.app.client_id, "redirect_uri": REDIRECT,
        "scope": "openid", "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"}, timeout=10)
    assert pushed.status_code == 201, pushed.text
    request_uri = pushed.json()["request_uri"]

    for client_id in (other.app.client_id, "app_unknown", "x" * 300, credentials.app.client_id.upper()):
        refused = requests.get(authorize_url(url, client_id=client_id, request_uri=request_uri),
                               allow_redirects=False, timeout=10)
        assert refused.status_code == 400 and "Location" not in refused.headers, client_id
    no_client = requests.get(f"{url}/oidc/authorize?request_uri={request_uri}", allow_redirects=False, timeout=10)
    assert no_client.status_code == 400 and "Location" not in no_client.headers

    own = authorize_url(url, client_id=credentials.app.client_id, request_uri=request_uri)
    assert query_of(finish_as_device(device, sign_in_page_request(own, browser=device)))["state"] == "st"
    again = requests.get(own, allow_redirects=False, timeout=10)     # and then it is used up
    assert again.status_code == 400 and "Location" not in again.headers


def _pushed(url: str, credentials) -> str:
    _, challenge = pkce_pair()
    pushed = requests.post(url + "/oidc/par", auth=(credentials.app.client_id, credentials.client_secret), data={
        "response_type": "code", "client_id": credentials.app.client_id, "redirect_uri": REDIRECT,
        "scope": "openid", "state": "st", "code_challenge": challenge, "code_challenge_method": "S256"}, timeout=10)
    assert pushed.status_code == 201, pushed.text
    return authorize_url(url, client_id=credentials.app.client_id, request_uri=pushed.json()["request_uri"])


@pytest.mark.slow  # rounds of racing threads
def test_a_request_uri_presented_twice_at_once_starts_one_sign_in(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = _app(ctx)
    for _ in range(4):
        own = _pushed(url, credentials)
        answers = _at_once(3, lambda: requests.get(own, allow_redirects=False, timeout=10))  # noqa: B023
        started = [a for a in answers if a.status_code == 303]
        assert len(started) == 1, [(a.status_code, a.text[:100]) for a in answers]
        assert all(a.status_code == 400 and "Location" not in a.headers for a in answers if a not in started)


@pytest.mark.slow  # a request per DynamoDB call and shape
@pytest.mark.parametrize("shape", [Shape.INTERNAL_SERVER_ERROR], ids=lambda s: s.name)
def test_dynamodb_failing_at_each_call_of_a_pushed_requests_use_leaves_it_to_its_client(
        make_server, dynamodb_endpoint, shape):
    home, ctx = make_server(host_name="127.0.0.1")
    credentials = _app(ctx)
    with DynamoFaults(dynamodb_endpoint) as faults:
        url, behind = make_server(dynamodb_endpoint_url=faults.url, create_tables=False)
        failed_at: list[str] = []
        for index in range(20):
            own = _pushed(home, credentials).replace(home, url)
            with FailingCall(behind, faults, index=index, shape=shape) as failing:
                answer = requests.get(own, allow_redirects=False, timeout=30)
            if failing.reached is None:
                assert answer.status_code == 303, answer.text
                break
            failed_at.append(failing.reached)
            assert answer.status_code == 503, (failing.reached, answer.status_code, answer.text[:200])
            again = requests.get(own, allow_redirects=False, timeout=30)  # nothing was spent: it works now
            assert again.status_code == 303, (failing.reached, again.text[:200])
        else:
            raise AssertionError(f"more than 20 DynamoDB calls: {failed_at}")
    assert "TransactWriteItems" in failed_at, failed_at


# --- DynamoDB failing at each call of a redemption ----------------------------------------------------

class FailingCall:
    """Makes the `index`-th DynamoDB call of the app's next request (counted in request threads alone,
    not background ones) and everything after it in that request answer `shape`, by arming the proxy
    just before that call is sent; `reached` says whether the request got that far."""

    def __init__(self, ctx, faults: DynamoFaults, *, index: int, shape: Shape) -> None:
        self.ctx, self.faults, self.index, self.shape = ctx, faults, index, shape
        self.calls: list[str] = []

    def _before_call(self, model, **_: Any) -> None:
        if not has_request_context():
            return
        if len(self.calls) == self.index:
            self.faults.fail(self.shape, operations={model.name})
        self.calls.append(model.name)

    @property
    def reached(self) -> str | None:
        return self.calls[self.index] if len(self.calls) > self.index else None

    def __enter__(self) -> "FailingCall":
        self.ctx.dynamodb.meta.events.register("before-call.dynamodb", self._before_call)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.ctx.dynamodb.meta.events.unregister("before-call.dynamodb", self._before_call)
        self.faults.clear()


@pytest.mark.slow  # a redemption per DynamoDB call and shape, each through botocore's retries
@pytest.mark.parametrize("shape", [Shape.INTERNAL_SERVER_ERROR, Shape.CRC32_MISMATCH], ids=lambda s: s.name)
def test_dynamodb_failing_at_each_call_of_a_redemption_answers_fast_and_half_writes_nothing(
        make_server, dynamodb_endpoint, shape):
    home, ctx = make_server(host_name="127.0.0.1")          # makes the tables and the key ring
    credentials = _app(ctx)
    device = _signed_in_device(home)
    with DynamoFaults(dynamodb_endpoint) as faults:
        url, behind = make_server(dynamodb_endpoint_url=faults.url, create_tables=False)
        code, verifier = code_for(home, credentials.app.client_id, device, redirect_uri=REDIRECT, scope="openid")
        assert Redemption(url, code, verifier).send(credentials).status_code == 200  # its registry copy holds the app
        failed_at: list[str] = []
        for index in range(40):
            # profile and email: the ID token's claims, sealed in the code, are in the answer
            code, verifier = code_for(home, credentials.app.client_id, device, redirect_uri=REDIRECT,
                                      scope="openid profile email offline_access")
            before = _grant(ctx, device, credentials)
            with FailingCall(behind, faults, index=index, shape=shape) as failing:
                started = time.monotonic()
                answer = Redemption(url, code, verifier).send(credentials)
                took = time.monotonic() - started
            if failing.reached is None:
                assert answer.status_code == 200, answer.text   # past the last call: nothing failed
                break
            failed_at.append(failing.reached)
            assert answer.status_code != 500 and took < REQUEST_BUDGET, (failing.reached, answer.status_code, took)
            assert answer.status_code in (200, 503) or answer.json()["error"] == "invalid_grant", answer.text
            _assert_whole(ctx, device, credentials, code, before=before, what=f"call {index} {failing.reached}")
            if shape is Shape.INTERNAL_SERVER_ERROR and answer.status_code == 503:
                # a refused call wrote nothing: no code is spent without the app getting its tokens
                assert not _spent(ctx, code), failing.reached
            if answer.status_code == 503 and not _spent(ctx, code):   # left to its client: it works now
                again = Redemption(url, code, verifier).send(credentials)
                assert again.status_code == 200, (failing.reached, again.text)
                _assert_whole(ctx, device, credentials, code, before=before, what="the retry")
        else:
            raise AssertionError(f"a redemption made more than 40 DynamoDB calls: {failed_at}")
    # The code is sealed: its redemption is one write, which here replaces the app's live grant on the session
    # and tells its end at once (the code names the grant it found when it was given: oidc.authorization.finish).
    assert failed_at == ["TransactWriteItems"], failed_at


def _assert_whole(ctx, device, credentials, code: str, *, before: Grant | None, what: str) -> None:
    """Spent ⇔ the grant it gave is recorded: a spent code names the grant, an unspent one changed none."""
    item, grant = _code_item(ctx, code), _grant(ctx, device, credentials)
    if _spent(ctx, code):
        assert grant is not None and item["request_digest"]["S"] == item["request"], (what, grant)
    else:
        assert grant == before, (what, grant, before)
