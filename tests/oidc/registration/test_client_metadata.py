"""The client metadata parser of dynamic registration (RFC 7591 §2; oidc.registration.client_metadata) on what an
attacker sends: any JSON document, any value in any member, URLs around the valid ones. It accepts an app or refuses
naming a member, never raises anything else; what it accepts holds the rules of `apps add`."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oidc.registration.client_metadata import (AUTH_METHODS, GRANT_TYPES, InvalidClientMetadata, InvalidRedirectUri,
                                               parse_metadata)
from oidc.registration.client_urls import endpoint_url_problem, fetched_url_problem, web_url_problem
from oidc.core.redirects import redirect_uri_problem
from common.web.cors import web_origin

VALID = {"redirect_uris": ["https://rp.example/cb"], "client_name": "Rebus"}
MEMBERS = ("redirect_uris", "grant_types", "response_types", "token_endpoint_auth_method", "jwks", "jwks_uri",
           "client_name", "logo_uri", "client_uri", "policy_uri", "tos_uri", "contacts",
           "id_token_signed_response_alg", "userinfo_signed_response_alg", "post_logout_redirect_uris",
           "backchannel_logout_uri", "request_uris", "request_object_signing_alg", "require_signed_request_object",
           "require_pushed_authorization_requests", "dpop_bound_access_tokens", "subject_type", "application_type",
           "default_max_age", "require_auth_time", "token_endpoint_auth_signing_alg")
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                               max_size=4), max_leaves=12)
# What an attacker tries around a valid URL: other schemes, userinfo, fragments, spaces and controls,
# backslashes, non-ASCII hosts, IPv6 oddities, ports out of range, percent-encodings.
URL_PIECES = st.sampled_from(["https://", "http://", "javascript:", "data:", "HTTPS://", "https:/", "//", "file://",
                              "rp.example", "127.0.0.1", "[::1]", "[::1]x", "localhost", "bank.example@evil.example",
                              "user:pw@", ":443", ":0", ":99999", "/logo.png", "?q=1", "#frag", " ", "\t", "\n",
                              "\\", '"', "<", "%0a", "%zz", "é", "ｒｐ.example", "/", "..", ";", ",", "'"])
URLS = st.lists(URL_PIECES, max_size=7).map("".join)
ERRORS = (InvalidClientMetadata, InvalidRedirectUri)


def _parsed_or_refused(body):
    try:
        return parse_metadata(body)
    except ERRORS as refused:
        assert refused.member in (*MEMBERS, "request"), refused.member
        assert refused.description.startswith(f"{refused.member}: ")
        return None


@given(JSON)
@settings(max_examples=300)
def test_any_json_document_is_an_app_or_a_named_refusal(body):
    _parsed_or_refused(body)


@given(st.sampled_from(MEMBERS), JSON)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_any_value_in_any_member_is_taken_or_refused_naming_a_member(member, value):
    _parsed_or_refused({**VALID, member: value})


@given(st.sampled_from(["logo_uri", "client_uri", "policy_uri", "tos_uri", "jwks_uri"]), URLS)
@settings(max_examples=400)
def test_a_url_member_taken_is_an_http_url_without_userinfo_or_fragment(member, url):
    parsed = _parsed_or_refused({**VALID, member: url})
    if parsed is None:
        return
    kept = getattr(parsed.oidc, member)
    assert kept == url and web_url_problem(url) is None
    parts = urlsplit(url)
    assert parts.scheme.lower() in ("http", "https") and not parts.fragment and "#" not in url
    assert parts.username is None and web_origin(url) is not None
    assert not any(ch.isspace() or ch in '"<>\\' or not ch.isascii() for ch in url)
    if member == "jwks_uri":
        assert fetched_url_problem(url) is None
        assert parts.scheme.lower() == "https" or parts.hostname in ("127.0.0.1", "::1", "localhost")


@given(URLS)
def test_a_backchannel_logout_uri_taken_is_one_apps_add_takes(url):
    parsed = _parsed_or_refused({**VALID, "backchannel_logout_uri": url})
    if parsed is None:
        return
    parts = urlsplit(url)
    assert endpoint_url_problem(url) is None and parts.scheme in ("http", "https") and parts.netloc
    assert not parts.fragment


@given(st.lists(URLS, min_size=1, max_size=3))
def test_redirect_uris_taken_are_those_apps_add_takes(uris):
    parsed = _parsed_or_refused({**VALID, "redirect_uris": uris})
    if parsed is None:
        return
    assert all(redirect_uri_problem(uri) is None for uri in parsed.oidc.redirect_uris)
    assert set(parsed.oidc.redirect_uris) == set(uris)


@given(st.lists(st.sampled_from([*GRANT_TYPES, "implicit", "client_credentials", "password", ""]), max_size=4),
       st.sampled_from([*AUTH_METHODS, "client_secret_jwt", None]))
def test_grants_and_auth_methods_taken_are_consistent(grant_types, method):
    body = {**VALID, "grant_types": grant_types, **({"token_endpoint_auth_method": method} if method else {})}
    parsed = _parsed_or_refused(body)
    if parsed is None:
        return
    oidc = parsed.oidc
    assert set(oidc.grant_types) <= set(GRANT_TYPES) and oidc.grant_types
    assert oidc.public == (method == "none") and oidc.token_endpoint_auth_method() == (method or "client_secret_basic")
    assert oidc.device_flow == ("urn:ietf:params:oauth:grant-type:device_code" in grant_types)
    assert method != "private_key_jwt"  # VALID has no keys: refused


def test_an_omitted_request_object_alg_takes_signed_objects_only_unless_the_deployment_allows_unsigned_ones():
    assert parse_metadata(VALID).oidc.allow_unsigned_request_objects is False
    assert parse_metadata({**VALID, "request_object_signing_alg": "none"}).oidc.request_object_signing_alg == "none"
    assert parse_metadata(VALID, unsigned_by_default=True).oidc.allow_unsigned_request_objects is True
    required = parse_metadata({**VALID, "require_signed_request_object": True}, unsigned_by_default=True).oidc
    assert (required.allow_unsigned_request_objects, required.require_signed_request_object) == (False, True)
    named = parse_metadata({**VALID, "request_object_signing_alg": "ES256"}, unsigned_by_default=True).oidc
    assert (named.allow_unsigned_request_objects, named.request_object_signing_alg) == (False, "ES256")
    with pytest.raises(InvalidClientMetadata, match="request_object_signing_alg: none"):
        parse_metadata({**VALID, "request_object_signing_alg": "none", "require_signed_request_object": True})


@pytest.mark.parametrize(("body", "member"), [
    ({**VALID, "jwks": {"keys": []}, "jwks_uri": "https://rp.example/jwks"}, "jwks_uri"),
    ({**VALID, "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "jwks"),
    ({**VALID, "jwks": "{}"}, "jwks"),
    ({**VALID, "token_endpoint_auth_method": "none", "jwks_uri": "https://rp.example/jwks"}, "jwks_uri"),
    ({**VALID, "jwks_uri": "http://rp.example/jwks"}, "jwks_uri"),
    ({**VALID, "grant_types": ["refresh_token"]}, "grant_types"),
    ({**VALID, "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"], "response_types": ["code"]},
     "response_types"),
    ({**VALID, "userinfo_signed_response_alg": "HS256"}, "userinfo_signed_response_alg"),
    ({**VALID, "id_token_encrypted_response_alg": "RSA-OAEP"}, "id_token_encrypted_response_alg"),
    ({**VALID, "client_name": " "}, "client_name"),
    ({**VALID, "client_name": "a\u0000b"}, "client_name"),
    ({**VALID, "contacts": "ops@rp.example"}, "contacts"),
    ({**VALID, "application_type": "desktop"}, "application_type"),
    ({**VALID, "require_auth_time": "yes"}, "require_auth_time"),
    ({**VALID, "request_uris": ["http://rp.example/req"]}, "request_uris"),
    ({**VALID, "request_uris": ["https://rp.example/r\u00e9q"]}, "request_uris"),   # apps add's rule: RFC 3986 only
    ({**VALID, "request_uris": ["https://user@rp.example/req"]}, "request_uris"),
    ({**VALID, "post_logout_redirect_uris": ["https://rp.example/bye#x"]}, "post_logout_redirect_uris"),
    ({**VALID, "token_endpoint_auth_signing_alg": "HS256"}, "token_endpoint_auth_signing_alg"),
])
def test_each_rule_names_its_member(body, member):
    with pytest.raises(InvalidClientMetadata) as refused:
        parse_metadata(body)
    assert refused.value.member == member and refused.value.error == "invalid_client_metadata"


def test_what_is_taken_by_default():
    oidc = parse_metadata({"redirect_uris": ["https://rp.example/cb"], "unknown_member": {"ignored": True},
                           "require_auth_time": True}).oidc
    assert (oidc.grant_types, oidc.token_endpoint_auth_method(), oidc.id_token_alg, oidc.consent) == \
        (("authorization_code",), "client_secret_basic", "RS256", True)
    assert parse_metadata({"redirect_uris": ["https://rp.example/cb"]}).name == "rp.example"
    device = parse_metadata({"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
                             "token_endpoint_auth_method": "none"})
    assert device.oidc.device_flow and device.oidc.public and not device.oidc.redirect_uris and not device.oidc.consent
    keyed = parse_metadata({**VALID, "token_endpoint_auth_method": "private_key_jwt",
                            "jwks_uri": "http://127.0.0.1:8080/jwks"}, private_addresses=True).oidc
    assert keyed.jwks_uri == "http://127.0.0.1:8080/jwks" and keyed.token_endpoint_auth_method() == "private_key_jwt"
    assert json.loads(json.dumps(parse_metadata({**VALID, "request_uris": ["https://rp.example/r#abc"]})
                                 .oidc.request_uris)) == ["https://rp.example/r#abc"]
