"""The person's claims an app's refresh token carries (oidc.core.claims, oidc.token.refresh_tokens): the rotation's
write checks that the account still gives them, on DynamoDB Local. The check holds exactly when the account's
claims of the scope are the carried ones, whatever changed (the address, its verification, whether the
account holds it, the locale, a deletion begun), and a refusal brings the account as it is; the token
carries the claims as parsed values, and anything else under its MAC is refused."""
from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.store import AccountStore
from accounts.user_store import EMAIL_UNCLAIMED
from common.database import dynamo
from common.database.guarded_write import write_all
from oidc.core import claims
from oidc.token import refresh_tokens as refresh
from oidc.core.models import SignedIn

ABSENT = None
ROWS = st.fixed_dictionaries({
    "email": st.sampled_from(["ann@example.com", "bob@example.com"]),
    "email_verified": st.sampled_from([ABSENT, False, True]),
    EMAIL_UNCLAIMED: st.sampled_from([ABSENT, True]),
    "locale": st.sampled_from([ABSENT, "en", "ja"]),
    "username": st.sampled_from(["ann", "anna"]),
    "deleting_since": st.sampled_from([ABSENT, ABSENT, 1700000000]),
})
SCOPES = st.sampled_from(["openid profile", "openid email", "openid profile email offline_access"])


@pytest.fixture
def server_ctx(make_server):
    return make_server(host_name="127.0.0.1")[1]


def _put(ctx, user_uuid: str, row: dict) -> None:
    item = {"user_uuid": user_uuid, "created_at": "2026-01-01T00:00:00Z",
            **{name: value for name, value in row.items() if value is not ABSENT}}
    ctx.dynamodb.put_item(TableName=ctx.tables.users, Item=dynamo.to_item(item))


def _record(row: dict, user_uuid: str):
    return AccountStore.from_item(dynamo.to_item({"user_uuid": user_uuid, "created_at": "2026-01-01T00:00:00Z",
                                                  **{k: v for k, v in row.items() if v is not ABSENT}}))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(then=ROWS, now=ROWS, scope=SCOPES)
def test_the_check_holds_exactly_when_the_account_gives_the_carried_claims(server_ctx, then, now, scope):
    ctx, user_uuid = server_ctx, str(uuid.uuid4())
    carried_from = _record({**then, "deleting_since": ABSENT}, user_uuid)
    assert carried_from is not None
    person = claims.of_account(carried_from, scope=scope)
    _put(ctx, user_uuid, now)
    current = _record(now, user_uuid)
    check = claims.still_given(ctx, user_uuid=user_uuid, person=person, scope=scope)
    assert check is not None
    if current is not None and claims.of_account(current, scope=scope) == person:
        write_all(ctx.dynamodb, [check])
        return
    with pytest.raises(claims.PersonChanged) as refused:
        write_all(ctx.dynamodb, [check])
    assert refused.value.account == current  # as it is now; None while it is being deleted


def test_a_check_of_an_account_that_is_gone_is_refused_without_one(server_ctx):
    person = {"preferred_username": "ann", "locale": "en", "zoneinfo": claims.ZONEINFO}
    check = claims.still_given(server_ctx, user_uuid=str(uuid.uuid4()), person=person, scope="openid profile")
    assert check is not None
    with pytest.raises(claims.PersonChanged) as refused:
        write_all(server_ctx.dynamodb, [check])
    assert refused.value.account is None


def test_a_scope_without_profile_or_email_checks_nothing():
    assert claims.still_given(None, user_uuid="u", person={}, scope="openid offline_access") is None  # type:
                                                                                                      # ignore[arg-type]


PEOPLE = st.fixed_dictionaries({
    "profile": st.booleans(), "email": st.booleans(), "released": st.booleans(),
    "username": st.text(min_size=1, max_size=40), "locale": st.sampled_from(["en", "ja", "de"]),
    "address": st.emails()})


@given(PEOPLE)
def test_packed_claims_unpack_to_the_same_claims(drawn):
    scope = " ".join(["openid", *(["profile"] if drawn["profile"] else []), *(["email"] if drawn["email"] else [])])
    person: dict = {}
    if drawn["profile"]:
        person |= {"preferred_username": drawn["username"], "locale": drawn["locale"], "zoneinfo": claims.ZONEINFO}
    if drawn["email"] and drawn["released"]:
        person |= {"email": drawn["address"], "email_verified": True}
    packed = claims.packed(person, scope=scope)
    assert packed is not None and claims.unpacked(packed, scope=scope) == person
    assert claims.narrowed(person, scope="openid") == {}


@pytest.mark.parametrize("values, scope", [
    (["ann", "en", None], "openid"),                 # profile claims for a scope without profile
    ([None, None, "a@example.com"], "openid profile"),  # an address for a scope without email
    ([None, "en", None], "openid profile"),          # half a profile
    (["ann", 7, None], "openid profile"),            # not text
    (["ann", "en"], "openid profile"),               # a member short
    ({"u": "ann"}, "openid profile"),                # not the list form
    ("ann", "openid profile"),
])
def test_carried_claims_that_do_not_fit_their_scope_are_refused(values, scope):
    assert claims.unpacked(values, scope=scope) is None


def test_claims_too_long_to_carry_are_left_to_be_read_at_the_tokens_rotation(server_ctx):
    """A token carries the claims only while it stays within MAX_TOKEN_LENGTH; else it carries none (the
    form before), and its rotation reads them."""
    scope = "openid email offline_access"
    user = SignedIn(user_uuid=str(uuid.uuid4()), session_id=str(uuid.uuid4()), device_id=str(uuid.uuid4()),
                    auth_time=1795779467, amr=("hwk", "pwd"), refresh_generation=3, grant_id="0123456789abcdef",
                    grant_scope=scope)
    for address, carried in (("ann@example.com", True), ("a" * 1100 + "@example.com", False)):
        text = refresh.token_text(server_ctx.refresh_secrets,
                                  replace(user, person={"email": address, "email_verified": True}), client_id="notes")
        assert len(text) <= refresh.MAX_TOKEN_LENGTH
        presented = refresh.presented_for_rotation(server_ctx, text)
        assert presented is not None and presented.unread and presented.grant.scope == scope
        assert presented.person == ({"email": address, "email_verified": True} if carried else None)
