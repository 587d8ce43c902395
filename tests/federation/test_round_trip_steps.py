"""The round trip's own steps on parsed values (federation.round_trip, relying_party, transactions), each with
what an attacker would send around the valid input: a return_to that leaves the service, a repeated parameter,
Apple's `user` field. Pure: no server, no table."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import ApiError, ErrorCode
from federation import relying_party, round_trip
from federation.models import UpstreamIdentity


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.text(max_size=40), st.from_regex(r"[/\\]{1,3}[a-z.:@]{0,20}", fullmatch=True),
                       st.sampled_from(["https://evil.example/", "//evil.example", "/\\evil", "/ok#x", "/"])))
def test_return_to_is_never_another_origin(value):
    try:
        kept = round_trip.checked_return_to(value)
    except ApiError as error:
        assert error.code == ErrorCode.INVALID_FIELD
        return
    parts = urlsplit(kept)
    assert not parts.scheme and not parts.netloc and kept.startswith("/") and not kept.startswith("//")
    assert "\\" not in kept


@settings(max_examples=200, deadline=None)
@given(params=st.dictionaries(st.sampled_from(["state", "code", "iss", "error", "user", "other"]),
                              st.lists(st.text(max_size=5), min_size=1, max_size=3)))
def test_a_parameter_counts_only_when_sent_once(params):
    try:
        values = relying_party.single_values(params)
    except ApiError as error:
        repeated = [name for name in relying_party.READ if len(params.get(name, [])) > 1]
        assert repeated
        assert error.code == (ErrorCode.FEDERATION_STATE_INVALID if "state" in repeated
                              else ErrorCode.FEDERATION_TOKEN_INVALID)
        return
    assert values == {name: sent[0] for name, sent in params.items() if name in relying_party.READ}


@pytest.mark.parametrize(("field", "name"), [
    ('{"name": {"firstName": "Grace", "lastName": "Hopper"}, "email": "x@privaterelay.appleid.com"}',
     "Grace Hopper"),
    ('{"name": {"firstName": " ", "lastName": 7}}', None), ("not json", None), ("[]", None), ('{"name": "G"}', None),
])
def test_apples_user_field_gives_a_name_or_nothing(field, name):
    assert round_trip.apple_name(field) == name


def test_a_suggested_username_keeps_to_the_characters_usernames_allow():
    who = UpstreamIdentity(provider="p", issuer="https://i", sub="s", email="Ada.L+x@example.com")
    assert round_trip.suggested_username(who) == "ada.lx"
    assert round_trip.suggested_username(UpstreamIdentity(provider="p", issuer="i", sub="s", name="毛")) is None
