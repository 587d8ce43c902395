"""The OpenID Foundation's Basic OP certification plan (oidcc-basic-certification-test-plan: response type
code, client_secret_basic, default response mode, a static client), one test per module, each asserting
what the module checks (docs/security/test-plans.md). citylogin's profile holds throughout: PKCE S256 in every
request, exact redirect URIs, `iss` in every authorization response."""
from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from common.jwt_keys import ID_TOKEN_ALGORITHMS
from tests.oidc.conformance.relying_party import (
    REDIRECT, TIMEOUT, AuthorizationRequest, Provider, RelyingParty, authorization_request, browser_signs_in,
    callback_of, check_authorization_response, check_error_page, check_error_response, check_id_token,
    check_standard_claims, check_token_error, check_token_response, check_userinfo, code_flow, id_token_claims,
    next_second, random_value, redeem, register_rp, scope_claims_returned, send_to_authorization_endpoint,
    shannon_bits, sign_in_page, signed_in_person, single_sign_on, token_request, userinfo, with_params)
from tests.support.live import PASSWORD, FakeClock, verify_address
from tests.support.oidc import finish_as_device

# the conformance plans run in the full suite; tests/oidc/test_code_flow.py keeps the flow in the fast tier
pytestmark = pytest.mark.slow

USER_INTERFACE_ERRORS = {"interaction_required", "login_required", "account_selection_required", "consent_required"}


@pytest.fixture(scope="module")
def rp(op: Provider) -> RelyingParty:
    return register_rp(op)


def _redirect_error(op: Provider, rp: RelyingParty, request: AuthorizationRequest) -> dict[str, str]:
    answer = send_to_authorization_endpoint(op, request)
    assert answer.status_code == 303, (answer.status_code, answer.text[:300])
    return callback_of(rp, answer.headers["Location"])


def _second_authorization(op: Provider, rp: RelyingParty, device, **extra: str):
    """The second authorization of a module that authorizes twice: its request and the answer of the
    device's session to it (the sign-in page finished without a new sign-in), not yet followed."""
    request = with_params(authorization_request(rp), **extra)
    request_id = sign_in_page(op, send_to_authorization_endpoint(op, request))
    return request, request_id, device.request("POST", "/oidc/authorize/complete",
                                               json={"request": request_id, "consent": False})


def _redeemed(op: Provider, rp: RelyingParty, request: AuthorizationRequest, location: str) -> dict:
    callback = callback_of(rp, location)
    tokens = check_token_response(redeem(op, rp, request, check_authorization_response(op, request, callback)))
    return check_id_token(op, rp, request, tokens)


def test_oidcc_server(op, rp):
    device = signed_in_person(op)
    flow = code_flow(op, rp, device)
    assert "c_hash" not in flow.id_token                 # code flow: no c_hash to check (ExtractCHash is INFO)
    assert "name" not in flow.id_token                   # EnsureIdTokenDoesNotContainName
    assert userinfo(op, flow.tokens["access_token"]).status_code == 200   # requestProtectedResource


def test_oidcc_response_type_missing(op, rp):
    request = authorization_request(rp)
    del request.params["response_type"]
    # The client and its redirect are trusted, so the error goes back to the app (SPEC §14), by query.
    callback = _redirect_error(op, rp, request)
    check_error_response(op, request, callback, allowed={"invalid_request", "unsupported_response_type"})


def test_oidcc_idtoken_signature(op):
    # The suite registers a client without an algorithm (dynamically); an app added without one stands in.
    plain = register_rp(op)
    flow = code_flow(op, plain, signed_in_person(op))
    header = jwt.get_unverified_header(flow.tokens["id_token"])
    assert header["alg"] == "RS256" and header.get("kid"), header   # EnsureIdTokenSignatureIsRS256, ...ContainsKid


def test_oidcc_idtoken_unsigned(op):
    # Not applicable: the suite skips it when discovery does not list `none`; citylogin signs every ID token.
    assert "none" not in op.metadata["id_token_signing_alg_values_supported"]
    assert set(op.metadata["id_token_signing_alg_values_supported"]) <= set(ID_TOKEN_ALGORITHMS)


def test_oidcc_userinfo_get(op, rp):
    flow = code_flow(op, rp, signed_in_person(op))
    check_userinfo(userinfo(op, flow.tokens["access_token"]), flow.id_token)


def test_oidcc_userinfo_post_header(op, rp):
    flow = code_flow(op, rp, signed_in_person(op))
    check_userinfo(userinfo(op, flow.tokens["access_token"], method="POST"), flow.id_token)


def test_oidcc_userinfo_post_body(op, rp):
    # RFC 6750 §2.2's form-encoded token is optional (the suite only warns without it); given, it must work.
    flow = code_flow(op, rp, signed_in_person(op))
    answer = userinfo(op, flow.tokens["access_token"], in_body=True)
    if answer.status_code == 200:
        check_userinfo(answer, flow.id_token)
    else:
        assert answer.status_code == 401 and answer.headers.get("WWW-Authenticate", "").startswith("Bearer"), \
            (answer.status_code, answer.headers, answer.text[:300])


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(op, rp):
    device = signed_in_person(op)
    request = authorization_request(rp, with_nonce=False)
    check_authorization_response(op, request, browser_signs_in(op, rp, device, request))


def test_oidcc_scope_profile(op, rp):
    flow = code_flow(op, rp, signed_in_person(op), scope="openid profile")
    claims = check_userinfo(userinfo(op, flow.tokens["access_token"]), flow.id_token)
    scope_claims_returned(claims, flow.request.scope)


def test_oidcc_scope_email(op, rp):
    device = signed_in_person(op)
    verify_address(op.ctx, user_uuid=device.require_key_file().user_uuid)
    flow = code_flow(op, rp, device, scope="openid email")
    claims = check_userinfo(userinfo(op, flow.tokens["access_token"]), flow.id_token)
    scope_claims_returned(claims, flow.request.scope)
    assert claims["email"] == device.require_key_file().username + "@example.com" and claims["email_verified"] is True
    assert "name" not in claims and "name" not in flow.id_token   # EnsureUserInfoDoesNotContainName, ...IdToken...


def _skipped_for_scopes(op: Provider, rp, *scopes: str) -> None:
    """OIDCCCheckScopesSupportedContainScopeTest: the suite skips a scope module whose scopes discovery
    does not list (citylogin keeps no postal address or phone number of a person). A client that asks
    for them all the same signs in: the values not understood are ignored (Core §3.1.2.1), never granted."""
    assert not set(scopes) <= set(op.metadata["scopes_supported"])
    flow = code_flow(op, rp, signed_in_person(op), scope=" ".join(scopes))
    granted = set(flow.tokens.get("scope", "openid").split())
    assert granted <= set(op.metadata["scopes_supported"]) and "openid" in granted


def test_oidcc_scope_address(op, rp):
    _skipped_for_scopes(op, rp, "openid", "address")


def test_oidcc_scope_phone(op, rp):
    _skipped_for_scopes(op, rp, "openid", "phone")


def test_oidcc_scope_all(op, rp):
    _skipped_for_scopes(op, rp, "openid", "email", "phone", "address", "profile")


def test_oidcc_alternate_happy_flow(op, rp):
    device = signed_in_person(op)
    verify_address(op.ctx, user_uuid=device.require_key_file().user_uuid)
    # The scope's order reversed (RFC 6749 §3.3) and the query's parameters in another order.
    order = ["scope", "state", "redirect_uri", "nonce", "code_challenge_method", "response_type", "client_id",
             "code_challenge"]
    flow = code_flow(op, rp, device, scope="email openid", order=order)
    claims = check_userinfo(userinfo(op, flow.tokens["access_token"]), flow.id_token)
    scope_claims_returned(claims, "email")


def test_oidcc_display_page(op, rp):
    code_flow(op, rp, signed_in_person(op), display="page")


def test_oidcc_display_popup(op, rp):
    code_flow(op, rp, signed_in_person(op), display="popup")


def test_oidcc_prompt_login(op, rp):
    device = signed_in_person(op)
    first = code_flow(op, rp, device)
    next_second(first.id_token["auth_time"])
    request, request_id, answer = _second_authorization(op, rp, device, prompt="login")
    # The session is no answer: the person is asked to sign in again (ExpectSecondLoginPage).
    assert answer.status_code == 401 and answer.json()["code"] == "login_required", answer.text
    device.login(PASSWORD)
    second = _redeemed(op, rp, request, finish_as_device(device, request_id))
    assert second["auth_time"] > first.id_token["auth_time"]        # CheckSecondIdTokenAuthTimeIsLaterIfPresent


def test_oidcc_prompt_none_not_logged_in(op, rp):
    device = signed_in_person(op)
    device.logout()                              # "remove any cookies": this browser's device has no session
    request = authorization_request(rp, state_length=128, prompt="none")
    request_id = sign_in_page(op, send_to_authorization_endpoint(op, request))
    shown = requests.post(op.url + "/oidc/interaction", json={"request": request_id}, timeout=TIMEOUT).json()
    assert shown["prompt"] == ["none"]           # the web UI shows no page for it (oidc.js silent())
    refused = single_sign_on(op, device, request_id)
    assert refused.status_code == 401 and refused.json()["code"] == "login_required", refused.text
    cancelled = requests.post(op.url + "/oidc/authorize/cancel", timeout=TIMEOUT,
                              json={"request": request_id, "error": "login_required"})
    callback = callback_of(rp, cancelled.json()["redirect_to"])
    check_error_response(op, request, callback, allowed=USER_INTERFACE_ERRORS)
    assert len(callback["state"]) == 128


def test_oidcc_prompt_none_logged_in(op, rp):
    device = signed_in_person(op)
    first = code_flow(op, rp, device)
    request, _, answer = _second_authorization(op, rp, device, prompt="none")
    assert answer.status_code == 200, answer.text                   # no sign-in asked for
    second = _redeemed(op, rp, request, answer.json()["redirect_to"])
    assert second["sub"] == first.id_token["sub"]                   # CheckIdTokenSubConsistentForSecondAuthorization
    assert second["auth_time"] == first.id_token["auth_time"]       # CheckIdTokenAuthTimeClaimsSameIfPresent


def test_oidcc_max_age_1(op, rp):
    device = signed_in_person(op)
    first = code_flow(op, rp, device)
    next_second(first.id_token["auth_time"] + 1)                    # the first sign-in is over a second old
    request, request_id, answer = _second_authorization(op, rp, device, max_age="1")
    assert answer.status_code == 401 and answer.json()["code"] == "login_required", answer.text
    device.login(PASSWORD)
    second = _redeemed(op, rp, request, finish_as_device(device, request_id))
    assert "auth_time" in second                                    # CheckIdTokenAuthTimeClaimPresentDueToMaxAge
    assert second["auth_time"] > first.id_token["auth_time"]        # CheckSecondIdTokenAuthTimeIsLaterIfPresent
    assert second["auth_time"] >= time.time() - 5 * 60 - 1          # CheckIdTokenAuthTimeIsRecentIfPresent


def test_oidcc_max_age_10000(op, rp):
    device = signed_in_person(op)
    first = code_flow(op, rp, device, max_age="15000")
    assert "auth_time" in first.id_token
    request, _, answer = _second_authorization(op, rp, device, max_age="10000")
    assert answer.status_code == 200, answer.text                   # no new sign-in
    second = _redeemed(op, rp, request, answer.json()["redirect_to"])
    assert second["auth_time"] == first.id_token["auth_time"] and second["sub"] == first.id_token["sub"]


def test_oidcc_ensure_request_with_unknown_parameter_succeeds(op, rp):
    code_flow(op, rp, signed_in_person(op), extra="foobar")        # RFC 6749 §3.1: ignored


def test_oidcc_id_token_hint(op, rp):
    device = signed_in_person(op)
    first = code_flow(op, rp, device)
    request, _, answer = _second_authorization(op, rp, device, prompt="none", id_token_hint=first.tokens["id_token"])
    assert answer.status_code == 200, answer.text
    second = _redeemed(op, rp, request, answer.json()["redirect_to"])
    assert second["sub"] == first.id_token["sub"] and second["auth_time"] == first.id_token["auth_time"]


def test_oidcc_login_hint(op, rp):
    device = signed_in_person(op)
    hint = f"buffy@{urlsplit(op.issuer).hostname}"
    request = authorization_request(rp, login_hint=hint)
    request_id = sign_in_page(op, send_to_authorization_endpoint(op, request))
    shown = requests.post(op.url + "/oidc/interaction", json={"request": request_id}, timeout=TIMEOUT).json()
    assert shown["login_hint"] == hint                              # the sign-in page may fill it in
    check_authorization_response(op, request, callback_of(rp, finish_as_device(device, request_id)))


def test_oidcc_ui_locales(op, rp):
    code_flow(op, rp, signed_in_person(op), ui_locales="se")


def test_oidcc_claims_locales(op, rp):
    code_flow(op, rp, signed_in_person(op), claims_locales="se")


def test_oidcc_ensure_request_with_acr_values_succeeds(op, rp):
    # Discovery names no acr_values_supported, so the suite asks for "1 2"; success is what OIDC §15.1
    # requires (the acr the token carries is then only a warning of the suite's).
    acr_values = " ".join(op.metadata.get("acr_values_supported", ["1", "2"]))
    flow = code_flow(op, rp, signed_in_person(op), acr_values=acr_values)
    assert isinstance(flow.id_token.get("acr"), str) and flow.id_token["acr"]


def test_oidcc_codereuse(op, rp):
    flow = code_flow(op, rp, signed_in_person(op))
    check_token_error(redeem(op, rp, flow.request, flow.callback["code"]))


def test_oidcc_codereuse_30seconds(op, rp):
    flow = code_flow(op, rp, signed_in_person(op))
    real_clock, op.ctx.clock = op.ctx.clock, FakeClock()
    try:
        op.ctx.clock.advance(30)                 # WaitFor30Seconds, on the OP's clock
        check_token_error(redeem(op, rp, flow.request, flow.callback["code"]))
    finally:
        op.ctx.clock = real_clock
    # The tokens the code gave are revoked (RFC 6749 §4.1.2; SPEC §14: a second use revokes them).
    assert userinfo(op, flow.tokens["access_token"]).status_code == 401


def test_oidcc_ensure_registered_redirect_uri(op, rp):
    request = authorization_request(rp, redirect_uri=f"{REDIRECT}/{random_value(10)}")
    check_error_page(send_to_authorization_endpoint(op, request))


def test_oidcc_ensure_post_request_succeeds(op, rp):
    code_flow(op, rp, signed_in_person(op), method="POST")


def test_oidcc_server_client_secret_post(op, rp):
    flow = code_flow(op, rp, signed_in_person(op), auth="client_secret_post")
    assert userinfo(op, flow.tokens["access_token"]).status_code == 200


def _unsigned_request_object(rp: RelyingParty, request: AuthorizationRequest) -> str:
    """ConvertAuthorizationEndpointRequestToRequestObject + SerializeRequestObjectWithNullAlgorithm."""
    return jwt.encode({**request.params, "iss": rp.client_id, "aud": ""}, "", algorithm="none")


def _outside_the_object(request: AuthorizationRequest, **changed: str) -> dict[str, str]:
    """BuildRequestObjectByValueRedirectToAuthorizationEndpoint's query: the parameters OAuth 2.0 requires
    outside the object (response_type, client_id, scope, redirect_uri; not state), and citylogin's PKCE."""
    names = ("response_type", "client_id", "scope", "redirect_uri", "code_challenge", "code_challenge_method")
    return {**{name: request.params[name] for name in names}, **changed}


def test_oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(op, rp):
    # The suite runs it with dynamic registration only; citylogin takes a request_uri from its own PAR
    # endpoint alone (request_uri_parameter_supported: false), so a request_uri of the app's is refused.
    assert op.metadata["request_uri_parameter_supported"] is False
    request = authorization_request(rp)
    answer = requests.get(op.metadata["authorization_endpoint"], params={
        "client_id": rp.client_id, "request_uri": "https://rp.example/request.jwt", "response_type": "code",
        "scope": "openid", "redirect_uri": rp.redirect_uri, "state": request.state}, allow_redirects=False,
        timeout=TIMEOUT)
    if answer.status_code == 303 and not answer.headers["Location"].startswith(op.issuer + "/#"):
        check_error_response(op, request, callback_of(rp, answer.headers["Location"]),
                             allowed={"request_uri_not_supported", "invalid_request_uri", "invalid_request"})
    else:
        check_error_page(answer)


def test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(op, rp):
    assert op.metadata["request_parameter_supported"] is False   # CheckDiscEndpointRequestParameterSupported
    request = authorization_request(rp)
    answer = requests.get(op.metadata["authorization_endpoint"], allow_redirects=False, timeout=TIMEOUT,
                          params={**_outside_the_object(request), "request": _unsigned_request_object(rp, request)})
    # SPEC §14: a request object → request_not_supported, back at the app (its client and redirect are
    # good); never a sign-in that ignores what the object says. The state was inside the object alone.
    assert answer.status_code == 303, (answer.status_code, answer.text[:300])
    callback = callback_of(rp, answer.headers["Location"])
    assert callback.get("error") == "request_not_supported", callback
    assert callback.get("iss") == op.issuer and "code" not in callback, callback


def test_oidcc_claims_essential(op, rp):
    device = signed_in_person(op)
    claims = json.dumps({"userinfo": {"name": {"essential": True}}})
    flow = code_flow(op, rp, device, claims=claims)
    returned = check_userinfo(userinfo(op, flow.tokens["access_token"]), flow.id_token)
    assert "name" not in flow.id_token                               # EnsureIdTokenDoesNotContainName
    check_standard_claims(returned)


def test_oidcc_ensure_request_object_with_redirect_uri(op, rp):
    request = authorization_request(rp)
    bad_redirect = f"{REDIRECT}/{random_value(10)}"               # AddInvalidRedirectUriToAuthorizationRequest
    answer = requests.get(op.metadata["authorization_endpoint"], allow_redirects=False, timeout=TIMEOUT, params={
        **_outside_the_object(request, redirect_uri=bad_redirect), "request": _unsigned_request_object(rp, request)})
    # The query's redirect_uri is not registered: an error page. The object's good one is never taken
    # instead, not even for a request_not_supported (EnsureOPDoesNotUseDefaultRedirectUriInCaseOfInvalidRedirectUri).
    check_error_page(answer)


def _refresh(op: Provider, rp: RelyingParty, refresh_token: str, **extra: str) -> requests.Response:
    return token_request(op, rp, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})


def test_oidcc_refresh_token(op, rp):
    assert "offline_access" in op.metadata["scopes_supported"]    # ...OfflineAccessIfServerSupportsOfflineAccess
    assert "refresh_token" in op.metadata["grant_types_supported"]   # EnsureServerConfigurationSupportsRefreshToken
    device = signed_in_person(op)
    scope = "openid offline_access"
    first = code_flow(op, rp, device, scope=scope, prompt="consent")
    refresh_token = first.tokens["refresh_token"]
    assert refresh_token and all(0x20 <= ord(c) <= 0x7e for c in refresh_token)   # RFC 6749 A.17
    next_second(first.id_token["iat"])                                            # WaitForOneSecond
    answer = _refresh(op, rp, refresh_token, scope=scope)
    assert answer.status_code == 200, answer.text
    assert "no-store" in answer.headers.get("Cache-Control", "")                 # CheckTokenEndpointCacheHeaders
    refreshed = answer.json()
    assert refreshed["token_type"].lower() == "bearer" and shannon_bits(refreshed["access_token"]) > 96
    assert isinstance(refreshed.get("expires_in"), int) and refreshed["expires_in"] > 0
    assert refreshed["access_token"] != first.tokens["access_token"]
    if refreshed.get("refresh_token"):
        assert len(refreshed["refresh_token"]) * 8 >= 128 and shannon_bits(refreshed["refresh_token"]) > 96
    if refreshed.get("id_token"):                                                 # CompareIdTokenClaims (OIDC §12.2)
        again = id_token_claims(op, rp, refreshed["id_token"])
        for name in ("iss", "sub", "aud", "auth_time", "azp"):
            assert again.get(name) == first.id_token.get(name), name
        assert again["iat"] != first.id_token["iat"]
    assert userinfo(op, refreshed["access_token"]).status_code == 200

    # The second client's refresh token is refused to the first (RefreshTokenRequestExpectingErrorSteps).
    other = register_rp(op)
    second = code_flow(op, other, device, scope=scope, prompt="consent", nonce=random_value(43))
    check_token_error(_refresh(op, rp, second.tokens["refresh_token"]))
    assert _refresh(op, other, second.tokens["refresh_token"]).status_code == 200   # and it is still the other's


def test_oidcc_ensure_request_with_valid_pkce_succeeds(op, rp):
    flow = code_flow(op, rp, signed_in_person(op))
    assert flow.request.params["code_challenge_method"] == "S256" and 43 <= len(flow.request.verifier) <= 128
