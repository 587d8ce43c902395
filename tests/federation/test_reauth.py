"""Re-authentication with a provider (SPEC §16), over HTTP against the all-in-one app on DynamoDB Local: a
reauth ticket (as the callback of a round trip of purpose "reauth" leaves it: the round trip itself runs against
the real upstream in test_reauth_round_trip.py) becomes a reauth token at POST /federation/reauth, which stands
in for the password once — for its own account, for five minutes, counted toward the lockout when wrong — and an
account with no password sets its first one only with such a token or a passkey."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from accounts import reauth_tokens, user_service as users
from accounts.models import Role
from common.database.one_time_tokens import OneTimeTokenStore
from federation import identities, tickets
from tests.support.federation_flows import Person, federation_app, post, proof, provider
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device, settle_background

MAX_FAILURES = 3


@pytest.fixture
def served(base_config):
    with federation_app(base_config, max_concurrent_devices=0, login_max_failures=MAX_FAILURES) as (url, ctx):
        yield url, ctx, provider(ctx)


def test_a_fresh_sign_in_with_the_provider_confirms_an_action_once(served):
    url, ctx, name = served
    person = Person(url, ctx, name)
    answer = person.reauth(person.reauth_ticket())
    assert answer.status_code == 200, answer.text
    assert answer.json()["expires_in"] == 300 and answer.headers["Cache-Control"] == "no-store"
    assert tickets.COOKIE in answer.headers["Set-Cookie"]  # the ticket's cookie is cleared
    token = answer.json()["reauth_token"]
    codes = person.call("POST", "/account/recovery_codes", {"reauth_token": token})
    assert codes.status_code == 201 and len(codes.json()["recovery_codes"]) == 10
    again = person.call("POST", "/account/recovery_codes", {"reauth_token": token})
    assert problem(again)[:2] == (401, "invalid_credentials")
    # each action that asks for the password again takes one
    assert person.call("POST", "/account/email", {"reauth_token": person.token(),
                                                  "new_email": "new@example.com"}).status_code == 202
    assert person.call("POST", "/account/passkeys/options", {"reauth_token": person.token()}).status_code == 200
    both = person.call("POST", "/account/recovery_codes", {"reauth_token": person.token(), "password": "x" * 10})
    assert problem(both)[:2] == (400, "invalid_field")
    gone = person.call("DELETE", "/account", {"reauth_token": person.token()})
    assert gone.status_code == 204, gone.text
    assert identities.owner_of(ctx, issuer=person.who.issuer, sub=person.who.sub) is None  # the account is gone


def test_post_federation_reauth_refuses_what_is_not_a_reauth_of_this_account(served):
    url, ctx, name = served
    person, other = Person(url, ctx, name), Person(url, ctx, name)
    assert problem(person.reauth(person.reauth_ticket(), bearer={}))[:2] == (401, "invalid_token")
    assert problem(person.reauth(None))[:2] == (401, "federation_ticket_invalid")
    assert problem(person.reauth("nonsense"))[:2] == (401, "federation_ticket_invalid")
    # a sign-in's ticket, another account's reauth, an identity the account no longer has
    assert problem(person.reauth(person.reauth_ticket(purpose="sign_in")))[:2] == (401, "federation_ticket_invalid")
    assert problem(person.reauth(other.reauth_ticket()))[:2] == (401, "federation_ticket_invalid")
    assert problem(person.reauth(person.reauth_ticket(who=other.who)))[:2] == (401, "federation_ticket_invalid")
    used = person.reauth_ticket()
    assert person.reauth(used).status_code == 200
    assert problem(person.reauth(used))[:2] == (401, "federation_ticket_invalid")


def test_a_reauth_token_is_good_only_for_its_account_unused_and_unexpired(served):
    url, ctx, name = served
    person, other = Person(url, ctx, name), Person(url, ctx, name)
    token = person.token()
    refused = other.call("POST", "/account/recovery_codes", {"reauth_token": token})
    assert problem(refused)[:2] == (401, "invalid_credentials")
    assert person.call("POST", "/account/recovery_codes", {"reauth_token": token}).status_code == 201  # still its own
    expired = "expired-" + token
    OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens).create(
        digest=reauth_tokens._digest(expired), kind=reauth_tokens.KIND, expires_epoch=ctx.epoch() - 1,
        data={"user_uuid": person.user_uuid})
    assert problem(person.call("POST", "/account/recovery_codes", {"reauth_token": expired}))[:2] == \
        (401, "invalid_credentials")
    # a login never takes one in the password's place
    assert problem(post(url, "/login/", {"username": person.device.key_file.username, "reauth_token": person.token(),
                                         **proof(person.device)}))[:2] == (400, "missing_fields")


def test_wrong_reauth_tokens_count_toward_the_lockout(served):
    url, ctx, name = served
    person = Person(url, ctx, name)
    for _ in range(MAX_FAILURES):
        wrong = person.call("POST", "/account/recovery_codes", {"reauth_token": "not-a-token"})
        assert problem(wrong)[:2] == (401, "invalid_credentials")
    locked = person.call("POST", "/account/recovery_codes", {"reauth_token": person.token()})
    assert problem(locked)[:2] == (429, "too_many_attempts")
    settle_background(ctx)  # a refusal's row is written after its answer
    history = person.call("GET", "/session/history", {}).json()["items"]
    assert [row["result"] for row in history[:2]] == ["locked_out", "invalid_credentials"]


def test_two_uses_racing_with_one_token_confirm_one_action(served):
    url, ctx, name = served
    person = Person(url, ctx, name)
    token = person.token()
    barrier = Barrier(2)

    def use() -> requests.Response:
        barrier.wait()
        return person.call("POST", "/account/recovery_codes", {"reauth_token": token})
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: use(), range(2)))
    assert sorted(a.status_code for a in answers) == [201, 401], [a.text for a in answers]


def test_a_first_password_needs_a_reauth_not_the_session_alone(served):
    url, ctx, name = served
    person = Person(url, ctx, name)
    alone = person.call("POST", "/account/password", {"new_password": PASSWORD})
    assert problem(alone)[:2] == (401, "reauthentication_required")
    assert not users.get_user(ctx, user_uuid=person.user_uuid).has_password
    wrong = person.call("POST", "/account/password", {"reauth_token": "not-a-token", "new_password": PASSWORD})
    assert problem(wrong)[:2] == (401, "invalid_credentials")
    assert person.call("GET", "/account", {}).json()["has_password"] is False
    first = person.call("POST", "/account/password", {"reauth_token": person.token(), "new_password": PASSWORD,
                                                      "logout_other_sessions": False})
    assert first.status_code == 204, first.text
    assert person.call("GET", "/account", {}).json()["has_password"] is True
    assert post(url, "/login/", {"username": person.device.key_file.username, "password": PASSWORD,
                                 **proof(person.device)}).status_code == 200


def test_a_reauth_starts_only_for_a_signed_in_account_with_that_provider(served):
    url, ctx, name = served
    start = f"{url}/federation/{name}/start"
    assert problem(requests.post(start, json={"purpose": "reauth"}, timeout=60))[:2] == (401, "invalid_token")
    account = register_device(url)
    account.login(PASSWORD)
    unlinked = account.request("POST", f"/federation/{name}/start", json={"purpose": "reauth"})
    assert problem(unlinked)[:2] == (404, "identity_not_found")
    person = Person(url, ctx, name)
    elsewhere = requests.post(f"{url}/federation/{provider(ctx)}/start", json={"purpose": "reauth"},
                              headers=person.bearer, timeout=60)
    assert problem(elsewhere)[:2] == (404, "identity_not_found")


def test_an_operator_with_no_password_confirms_a_destructive_action_with_the_provider(base_config):
    with federation_app(base_config, max_concurrent_devices=0, admin_reauth_seconds=0) as (url, ctx):
        support = Person(url, ctx, provider(ctx))
        users.set_role(ctx, user_uuid=support.user_uuid, role=Role.SUPPORT, granted=True)
        target = register_device(url)
        target.login(PASSWORD)
        path = f"/admin/accounts/{target.key_file.user_uuid}/revoke-sessions"
        assert problem(support.call("POST", path, {"reason": "x"}))[:2] == (401, "reauthentication_required")
        done = support.call("POST", path, {"reason": "ticket 3", "reauth_token": support.token()})
        assert done.status_code == 200, done.text
        assert problem(target.request("GET", "/session/me")) == (401, "session_revoked", "admin")
