"""The round trip's own steps on parsed values (federation.round_trip, relying_party, transactions), each with
what an attacker would send around the valid input: a return_to that leaves the service, a repeated parameter,
Apple's `user` field. Pure: no server, no table."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import ApiError, ErrorCode
from federation import discovery, relying_party, round_trip
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


def document(**changes: object) -> bytes:
    base = {"issuer": "https://idp.example", "authorization_endpoint": "https://idp.example/auth",
            "token_endpoint": "https://idp.example/token", "jwks_uri": "https://idp.example/jwks"}
    return json.dumps({**base, **changes}).encode()


def test_discovery_keeps_the_asymmetric_algorithms_a_provider_announces_and_nothing_else():
    read = discovery.parse_metadata(document(id_token_signing_alg_values_supported=["none", "HS256", "ES256", "RS256"]),
                                    issuer="https://idp.example", private_allowed=False)
    assert read.id_token_algs == ("RS256", "ES256")
    assert discovery.parse_metadata(document(), issuer="https://idp.example", private_allowed=False).id_token_algs \
        == ("RS256",)  # Discovery §3: RS256 when it says nothing
    with pytest.raises(discovery.DiscoveryFailed):
        discovery.parse_metadata(document(id_token_signing_alg_values_supported=["HS256", "none"]),
                                 issuer="https://idp.example", private_allowed=False)


@pytest.mark.parametrize("changes", [{"issuer": "https://idp.example/"}, {"token_endpoint": "http://idp.example/t"},
                                     {"jwks_uri": "https://user@idp.example/j"}, {"authorization_endpoint": 7},
                                     {"issuer": "https://evil.example/{tenantid}/v2.0"}])
def test_discovery_refuses_a_document_not_of_the_issuer_or_with_an_endpoint_it_may_not_use(changes):
    with pytest.raises(discovery.DiscoveryFailed):
        discovery.parse_metadata(document(**changes), issuer="https://idp.example", private_allowed=False)


def test_microsofts_multi_tenant_document_is_read_with_its_template_issuer():
    template = "https://login.microsoftonline.com/{tenantid}/v2.0"
    read = discovery.parse_metadata(document(issuer=template, jwks_uri="https://login.microsoftonline.com/keys"),
                                    issuer="https://login.microsoftonline.com/common/v2.0", private_allowed=False)
    assert read.issuer == template
