"""DynamoDB calls of the OpenID Provider's code flow and refresh grant (issue "Speed, round 4"), counted
with a botocore event hook on the app's own client: the flow (authorize -> the device completes ->
token -> userinfo) in 5 (the goal is 7; 6 when the sign-in replaces the app's grant on the session), no
step more than one batch read and one write (two for that replacement), the app's record from the
process's registry copy, the code sealed; a refresh grant in one write, as citylogin's own refresh, with
the person its new ID token names (OpenID Connect Core §12.2: express-openid-connect takes its user from
the last ID token) carried by the refresh token and checked by that write (two writes once the person
changed since). Every single-use rule holds still:
tests/oidc/token/test_code_redemption.py, test_refresh_tokens.py, tests/oidc/test_two_processes.py."""
from __future__ import annotations

from collections import Counter

import jwt
import pytest
import requests

from accounts import service as accounts
from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.citylogin.test_dynamodb_calls import CallCounter
from tests.support.live import PASSWORD, register_device, settle_background
from tests.support.oidc import finish_as_device, query_of, waiting_request

REDIRECT = "https://app.example/callback"
FLOW_BUDGET = 7  # the goal; the flow makes 5


@pytest.fixture
def counted(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    added = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    device = register_device(url)
    device.login(PASSWORD)  # a device-bound session (DPoP), as the web UI's
    return url, ctx, added, device, CallCounter(ctx.dynamodb)


def _step(ctx, counter: CallCounter, call):
    settle_background(ctx)
    counter.take()
    result = call()
    settle_background(ctx)  # what a step leaves for after its answer counts too
    return result, counter.take()


def _flow(url: str, ctx, counter: CallCounter, added, device, http: requests.Session) -> tuple[dict, dict, list]:
    """One code flow, step by step: (the tokens, the userinfo answer, each step's calls)."""
    client_id, auth = added.app.client_id, (added.app.client_id, added.client_secret)
    (request_id, verifier), authorize = _step(ctx, counter, lambda: waiting_request(
        url, client_id, redirect_uri=REDIRECT, browser=device, scope="openid profile email offline_access",
        nonce="n"))
    code, complete = _step(ctx, counter, lambda: query_of(finish_as_device(device, request_id))["code"])
    tokens, token = _step(ctx, counter, lambda: http.post(url + "/oidc/token", auth=auth, timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}).json())
    info, userinfo = _step(ctx, counter, lambda: http.get(url + "/oidc/userinfo", timeout=10, headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).json())
    return tokens, info, [authorize, complete, token, userinfo]


def test_the_code_flow_is_five_calls_and_a_refresh_one(counted):
    url, ctx, added, device, counter = counted
    http = requests.Session()
    _flow(url, ctx, counter, added, device, http)  # the registry's copy holds the app from now on
    device = register_device(url)
    device.login(PASSWORD)  # the app's first sign-in on this session
    tokens, info, (authorize, complete, token, userinfo) = _flow(url, ctx, counter, added, device, http)
    assert info["preferred_username"] == device.key_file.username
    # The waiting request kept, counted against its address's allowance in the same transaction.
    assert authorize == Counter({"TransactWriteItems": 1})
    # The session with the request and the person in one batch read, the device's DPoP proof spent
    # beside it; the code is sealed, so nothing is written.
    assert complete == Counter({"BatchGetItem": 1, "PutItem": 1})
    # The code is read from itself: one transaction records its grant (which uses the code up) with the
    # session's check.
    assert token == Counter({"TransactWriteItems": 1})
    assert userinfo == Counter({"BatchGetItem": 1})                 # the session, the grant, the person
    assert sum((authorize + complete + token + userinfo).values()) <= FLOW_BUDGET

    auth = (added.app.client_id, added.client_secret)
    answer, refresh = _step(ctx, counter, lambda: http.post(url + "/oidc/token", auth=auth, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}))
    assert answer.status_code == 200, answer.text
    # The token carries what its grant says and the person's claims: its rotation is the one write, with
    # the session's check and the check that the account still gives those claims; nothing is read.
    assert refresh == Counter({"TransactWriteItems": 1})

    accounts.update_profile(ctx, user_uuid=device.key_file.user_uuid, locale="ja")
    answer, changed = _step(ctx, counter, lambda: http.post(url + "/oidc/token", auth=auth, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": answer.json()["refresh_token"]}))
    assert answer.status_code == 200, answer.text
    assert jwt.decode(answer.json()["id_token"], options={"verify_signature": False})["locale"] == "ja"
    # The person changed since: the refused write brings the account as it is, and is tried again with it.
    assert changed == Counter({"TransactWriteItems": 2})


def test_a_sign_in_that_replaces_the_apps_grant_on_the_session_is_still_one_write(counted):
    """The app signing the person in again on the session: the code names the live grant it found (read with
    the request, in complete()'s batch read), so the redemption's one write replaces it, with that grant's
    end and its event (SPEC §14: the guards refuse the old grant's tokens)."""
    url, ctx, added, device, counter = counted
    http = requests.Session()
    _flow(url, ctx, counter, added, device, http)
    _, info, (authorize, complete, token, userinfo) = _flow(url, ctx, counter, added, device, http)
    assert info["preferred_username"] == device.key_file.username
    assert token == Counter({"TransactWriteItems": 1})
    assert complete == Counter({"BatchGetItem": 1, "PutItem": 1})  # the grant read with the request, as before
    assert sum((authorize + complete + token + userinfo).values()) <= FLOW_BUDGET


def test_a_token_asked_about_again_is_read_again_and_its_sessions_end_refuses_it(counted):
    """A resource server asks about one token many times: its signature is checked once per process
    (common.keys.verified_tokens), but each request still reads the session and the grant behind it, so the
    session's end refuses the very token that was just accepted (revocation stays immediate)."""
    url, ctx, added, device, counter = counted
    http = requests.Session()
    tokens, _, _ = _flow(url, ctx, counter, added, device, http)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    auth = (added.app.client_id, added.client_secret)
    for _ in range(3):
        answer, calls = _step(ctx, counter, lambda: http.get(url + "/oidc/userinfo", timeout=10, headers=bearer))
        assert answer.status_code == 200 and calls == Counter({"BatchGetItem": 1})
        asked, calls = _step(ctx, counter, lambda: http.post(url + "/session/introspect", auth=auth, timeout=10,
                                                             data={"token": tokens["access_token"]}))
        # (the app itself is read once, then from the process's copy of it)
        assert asked.json()["active"] is True and calls["BatchGetItem"] == 1
    device.logout()
    answer, calls = _step(ctx, counter, lambda: http.get(url + "/oidc/userinfo", timeout=10, headers=bearer))
    assert answer.status_code == 401 and calls == Counter({"BatchGetItem": 1})
    asked = http.post(url + "/session/introspect", auth=auth, timeout=10, data={"token": tokens["access_token"]})
    assert asked.json() == {"active": False}
