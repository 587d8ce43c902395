"""The OpenID Foundation's FAPI 2.0 Security Profile plan (fapi2-security-profile-final-test-plan) with
the variants fapi_profile=plain_fapi, client_auth_type=private_key_jwt, sender_constrain=dpop,
openid=openid_connect, fapi_request_method=unsigned and fapi_response_mode=plain_response: one test per
module, each sending the module's own requests (fapi2_client.py: PAR with the client's assertion, PKCE
S256, DPoP proofs, the second client where the module has one) and asserting the module's failure-level
conditions (docs/security/test-plans.md). Every authorization goes through the browser and citylogin's
web UI, where the person signs in, or declines.

Modules the plan's variants exclude (VariantNotApplicable) have a test too, named after the module,
asserting what citylogin does in the module's place."""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from tests.oidc.conformance.browser_person import CALLBACK_PATH, Person
from tests.oidc.conformance.conftest import DEPLOYED_ISSUER
from tests.oidc.conformance.discovery_checks import (SCOPE_TOKEN, WELL_KNOWN, check_array_holds, check_https_url,
                                                     check_issuer, check_locales, check_types, discovery_answer)
from tests.oidc.conformance.fapi2_client import (
    ASSERTION_TYPE, FAPI2_ALGORITHMS, REDIRECT_QUERY, AuthorizationRequest, FapiClient, SigningKey, Tokens,
    assertion_claims, authorization_request, authorize, authorize_url, b64url, b64url_decode, callback_params,
    check_authorization_error, check_authorization_response, check_client_configuration, check_par_error,
    check_par_response, check_resource_refused, check_resource_response, check_server_configuration,
    check_token_error, check_token_response, client_assertion, code_flow, code_form, code_verifier, compact_jws,
    dpop_proof, fapi_headers, new_key, plain_authorize_url, protected_resource, push, random_alphanumeric,
    register_client, resource_request, sign_assertion, token_chars_ok, token_request)
from tests.oidc.conformance.relying_party import Provider, next_second
from tests.support.live import FakeClock

# the conformance plans run in the full suite; tests/oidc/authorization/test_par.py and
# tests/oidc/token/test_dpop_tokens.py keep the flows in the fast tier
pytestmark = pytest.mark.slow
NONE_HEADER = b'{"alg": "none", "typ": "dpop+jwt"}'     # SignDpopProofWithNone's header, as the suite writes it


@pytest.fixture(scope="module")
def clients(op, app_server) -> tuple[FapiClient, FapiClient]:
    """The suite's client and client2: confidential, private_key_jwt with keys of their own (PS256 and
    ES256), each with both redirect URIs the instructions name (the callback, and the callback with
    ?dummy1=lorem&dummy2=ipsum, the second client's)."""
    callback = app_server.url + CALLBACK_PATH
    redirects = (callback, callback + REDIRECT_QUERY)
    first = register_client(op, callback, new_key("PS256"), redirect_uris=redirects)
    second = register_client(op, callback + REDIRECT_QUERY, new_key("ES256"), redirect_uris=redirects)
    check_client_configuration(first, second)
    return first, second


@pytest.fixture
def client(clients) -> FapiClient:
    return clients[0].fresh()


@pytest.fixture
def client2(clients) -> FapiClient:
    return clients[1].fresh()


@contextmanager
def waited(op: Provider, *clients: FapiClient) -> Iterator[FakeClock]:
    """The suite's waits (WaitForOneSecond, WaitFor62Seconds, WaitForExpiry, WaitFor30Seconds), played by
    moving the OP's clock and the suite's together: the OP and its clients' DPoP proofs and ID token checks
    on one FakeClock while the test advances it (their client assertions keep the host's time, which the
    OP checks them by: FapiClient.assertion_clock)."""
    real_clock, clock = op.ctx.clock, FakeClock()
    op.ctx.clock = clock
    clocks = [client.clock for client in clients]
    for client in clients:
        client.clock = lambda: clock().timestamp()
    try:
        yield clock
    finally:
        op.ctx.clock = real_clock
        for client, was in zip(clients, clocks, strict=True):
            client.clock = was


def _client1_with_client2s_token(client: FapiClient, second: Tokens) -> None:
    """switchToClient1AndTryClient2AccessToken: client 1's DPoP key with client 2's access token is
    refused (EnsureHttpStatusCodeIs4xx)."""
    answer = resource_request(client, second)
    check_resource_refused(answer, statuses=tuple(range(400, 500)))


# --- discovery ---------------------------------------------------------------------------------------

def test_fapi2_security_profile_final_discovery_end_point_verification(deployed_op):
    metadata = discovery_answer(deployed_op).json()        # EnsureDiscoveryEndpointResponse…Is200, …JsonContentType
    assert metadata == deployed_op.metadata
    check_array_holds(metadata, "response_types_supported", {"code"})      # CheckDiscEndpointResponseTypeCodeSupported
    assert metadata.get("authorization_response_iss_parameter_supported") is True  # EnsureAuthorization…IsTrue
    check_https_url(metadata.get("pushed_authorization_request_endpoint"))  # CheckDiscEndpointPARSupported
    check_issuer(metadata, DEPLOYED_ISSUER + WELL_KNOWN)   # CheckDiscEndpointDiscoveryUrl, …Issuer, …IssuerIsValidUrl
    check_types(metadata)                                  # ValidateServerMetadataAgainstSchema
    check_array_holds(metadata, "dpop_signing_alg_values_supported", FAPI2_ALGORITHMS)  # FAPI2CheckDpopSigningAlg…
    check_array_holds(metadata, "id_token_signing_alg_values_supported", FAPI2_ALGORITHMS)  # FAPI2Check…IdToken…
    check_array_holds(metadata, "token_endpoint_auth_methods_supported",   # …ContainsPrivateKeyOrTlsClient
                      {"private_key_jwt", "tls_client_auth"})
    check_array_holds(metadata, "token_endpoint_auth_signing_alg_values_supported", FAPI2_ALGORITHMS)
    check_https_url(metadata["token_endpoint"])           # CheckDiscEndpointTokenEndpoint
    if "registration_endpoint" in metadata:                # CheckDiscEndpointRegistrationEndpoint
        check_https_url(metadata["registration_endpoint"])
    check_https_url(metadata["jwks_uri"])                  # CheckJwksUri
    check_array_holds(metadata, "code_challenge_methods_supported", {"S256"})  # …SupportsCodeChallengeMethodS256
    assert all(SCOPE_TOKEN.fullmatch(scope) for scope in metadata["scopes_supported"])   # …ScopesSupportedSyntax
    check_locales(metadata)                                # CheckDiscEndpointLocalesSyntax
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]  # …SupportsPrivateKeyJwt
    assert isinstance(metadata.get("require_pushed_authorization_requests", False), bool)  # …IsABoolean
    check_https_url(metadata["authorization_endpoint"])   # CheckDiscEndpointAuthorizationEndpoint
    check_array_holds(metadata, "grant_types_supported", {"authorization_code"})  # PlainFAPIDiscoveryEndpointChecks
    check_array_holds(metadata, "scopes_supported", {"openid"})          # …ScopesSupportedContainsOpenId
    check_array_holds(metadata, "subject_types_supported", {"public", "pairwise"})  # …SubjectTypesSupported
    if "userinfo_signing_alg_values_supported" in metadata:  # FAPI2CheckDiscEndpointUserinfoSigningAlgValuesSupported
        check_array_holds(metadata, "userinfo_signing_alg_values_supported", FAPI2_ALGORITHMS)


# --- normal well-behaved clients -----------------------------------------------------------------------

def test_fapi2_security_profile_final_happy_flow(op, client, client2, person):
    first = code_flow(client, person)
    # performAdditionalResourceEndpointTests: the access token in the query alone is refused
    # (DisallowAccessTokenInQuery: 400, 401 or 414), with the request's DPoP proof and no Authorization.
    headers = fapi_headers(client)
    in_query = requests.get(client.resource_url, params={"access_token": first.tokens.access_token},
                            headers={**headers, "Accept": "application/json",
                                     "DPoP": dpop_proof(client, htm="GET", htu=client.resource_url,
                                                        access_token=first.tokens.access_token,
                                                        nonce=client.rs_nonce)}, timeout=10)
    assert in_query.status_code in (400, 401, 414), (in_query.status_code, in_query.text[:300])
    # An IPv6 x-fapi-customer-ip-address and a UTF-8 JSON Accept, then a permissive Accept: each 200
    # (EnsureHttpStatusCodeIs200or201).
    headers["x-fapi-customer-ip-address"] = "2001:DB8::1893:25c8:1946"
    for accept in ({"Accept": "application/json;charset=UTF-8", "Accept-Charset": "UTF-8"},
                   {"Accept": "application/json, application/*+json, */*", "Accept-Charset": "UTF-8"}):
        answer = resource_request(client, first.tokens, headers={**headers, **accept})
        assert answer.status_code in (200, 201), (answer.status_code, answer.text[:300])
    # The second client (performAuthorizationFlowWithSecondClient): its redirect URI with a query
    # (CheckMatchingCallbackParameters), a 128-character state, a 43-character nonce, the code bound to
    # its DPoP key by dpop_jkt alone at PAR (RFC 9449 §10.1), the authorization request's parameters in
    # reverse order (…ReorderedParams), no x-fapi headers at the resource.
    request = authorization_request(client2, state_length=128, nonce_length=43)
    request.params["dpop_jkt"] = client2.dpop().kid
    second = code_flow(client2, person, request=request, reverse=True, first_client=False)
    assert second.callback["dummy1"] == "lorem" and second.callback["dummy2"] == "ipsum"
    _client1_with_client2s_token(client, second.tokens)


def test_fapi2_security_profile_final_user_rejects_authentication(op, client, client2, person):
    # "Clear any cookies … to ensure the user is offered the opportunity to reject the authentication":
    # the person signs out of citylogin, and cancels at the sign-in page each app's request shows.
    person.signs_out_of_citylogin()
    for fapi_client in (client, client2):
        check_server_configuration(op)
        request = authorization_request(fapi_client, state_length=128)
        visit = authorize(fapi_client, person, request, declines=True)
        assert "declined" in visit.steps, visit.steps
        params = callback_params(visit, person.page.url, redirect_uri=request.redirect_uri)
        # ExpectAccessDeniedErrorFromAuthorizationEndpointDueToUserRejectingRequest
        check_authorization_error(op, request, params, allowed={"access_denied"})


def test_fapi2_security_profile_final_ensure_authorization_request_without_state_success(op, client, person):
    request = authorization_request(client, state_length=None)
    flow = code_flow(client, person, request=request)
    assert "state" not in flow.callback                   # VerifyNoStateInAuthorizationResponse
    assert "s_hash" not in flow.tokens.claims


def test_fapi2_security_profile_final_ensure_authorization_request_without_nonce_success(op, client, person):
    flow = code_flow(client, person, request=authorization_request(client, nonce_length=None))
    assert "nonce" not in flow.tokens.claims              # ValidateIdTokenNonce: none sent, none returned


def test_fapi2_security_profile_final_ensure_authorization_request_with_64_char_nonce_success(op, client, person):
    flow = code_flow(client, person, request=authorization_request(client, nonce_length=64))
    assert len(flow.tokens.claims["nonce"]) == 64


def test_fapi2_security_profile_final_ensure_other_scope_order_succeeds(op, client, person):
    request = authorization_request(client)
    request.params["scope"] = " ".join(reversed(request.params["scope"].split()))  # ReverseScopeOrder…
    code_flow(client, person, request=request)


def test_fapi2_security_profile_final_test_claims_parameter_identity_claims(op, client, person):
    # Skipped: discovery's claims_parameter_supported is false, on which the suite skips the module. A
    # request that carries one signs in all the same (the parameter is not understood, so ignored).
    check_server_configuration(op)
    assert op.metadata.get("claims_parameter_supported", False) is False
    request = authorization_request(client)
    request.params["claims"] = json.dumps({"id_token": {"email": {"essential": True}}, "userinfo": {"email": None}})
    code_flow(client, person, request=request)


def test_fapi2_security_profile_final_access_token_type_header_case_sensitivity(op, client, person):
    flow = code_flow(client, person, resource=False)
    # SetAccessTokenTypeToInvertedCase (RFC 9110 §11.1: the scheme is case-insensitive)
    inverted = flow.tokens.token_type.swapcase()
    assert inverted != flow.tokens.token_type
    answer = resource_request(client, flow.tokens, headers=fapi_headers(client), token_type=inverted)
    check_resource_response(answer, client)


# --- DPoP ------------------------------------------------------------------------------------------------

def test_fapi2_security_profile_final_check_dpop_proof_nbf_exp(op, client, person):
    # SetDpopNbfToNow and SetDpopExpToFiveMinutesInFuture in the token and resource proofs
    def nbf_exp(claims: dict[str, Any]) -> None:
        claims.update(nbf=client.now(), exp=client.now() + 5 * 60)
    code_flow(client, person, proof_change=nbf_exp)


def test_fapi2_security_profile_final_ensure_dpopproof_with_iat_10seconds_before_succeeds(op, client, person):
    def ten_seconds_ago(claims: dict[str, Any]) -> None:        # SetDpopIatTo10SecondsInPast
        claims["iat"] = client.now() - 10
    code_flow(client, person, dpop_at_par=True, proof_change=ten_seconds_ago)


def test_fapi2_security_profile_final_ensure_dpopproof_with_iat_10seconds_after_succeeds(op, client, person):
    def ahead(claims: dict[str, Any]) -> None:                  # SetDpopIatTo8SecondsInFuture
        claims["iat"] = client.now() + 8
    code_flow(client, person, dpop_at_par=True, proof_change=ahead)


def _invalid_jkt(client: FapiClient) -> str:
    """AddInvalidDpopJktToAuthorizationEndpointRequest: the DPoP key's thumbprint with each byte XORed."""
    return b64url(bytes(byte ^ 0x5A for byte in b64url_decode(client.dpop().kid)))


def test_fapi2_security_profile_final_ensure_mismatched_dpop_jkt_fails(op, client):
    check_server_configuration(op)
    request = authorization_request(client)
    request.params["dpop_jkt"] = _invalid_jkt(client)
    # EnsurePARInvalidRequestOrInvalidDpopProof: the PAR endpoint refuses the proof's other key
    check_par_error(push(client, request, dpop=True), {"invalid_request", "invalid_dpop_proof"})


def _redeem_expecting_dpop_refusal(client: FapiClient, request: AuthorizationRequest, code: str) -> None:
    """CheckTokenEndpointReturnedInvalidRequestGrantOrDPopProofError: invalid_request, invalid_grant or
    invalid_dpop_proof, each with 400."""
    answer = token_request(client, code_form(request, code))
    check_token_error(answer, {"invalid_request", "invalid_grant", "invalid_dpop_proof"})


def _code_of(client: FapiClient, person: Person, request: AuthorizationRequest, **options: Any) -> str:
    """The module's authorization up to the code: PAR, the browser, the callback's checks."""
    check_server_configuration(client.op)
    visit = authorize(client, person, request, **options)
    return check_authorization_response(client.op, request, callback_params(visit, person.page.url,
                                                                            redirect_uri=request.redirect_uri))


def test_fapi2_security_profile_final_ensure_token_endpoint_fails_with_mismatched_dpop_proof_jkt(op, client, person):
    request = authorization_request(client)
    code = _code_of(client, person, request, dpop=True)     # the code bound to the PAR proof's key
    client.dpop_key = new_key(client.dpop().alg)             # GenerateDpopKey: another key at the token endpoint
    _redeem_expecting_dpop_refusal(client, request, code)


def test_fapi2_security_profile_final_ensure_token_endpoint_fails_with_mismatched_dpop_jkt(op, client, person):
    request = authorization_request(client)
    request.params["dpop_jkt"] = _invalid_jkt(client)
    _redeem_expecting_dpop_refusal(client, request, _code_of(client, person, request))


def test_fapi2_security_profile_final_ensure_dpopproof_at_par_endpoint_binding_success(op, client, person):
    code_flow(client, person, dpop_at_par=True)


def test_fapi2_security_profile_final_ensure_dpop_auth_code_binding_success(op, client, person):
    request = authorization_request(client)
    request.params["dpop_jkt"] = client.dpop().kid          # AddDpopJktToAuthorizationEndpointRequest
    code_flow(client, person, request=request, dpop_at_par=True)


# --- the authorization request: possible failure cases -----------------------------------------------------

def _success_or_error(client: FapiClient, person: Person, request: AuthorizationRequest, *, allowed: set[str],
                      screenshot: str, pushed: bool = True) -> dict[str, str] | None:
    """The browser at the authorization endpoint for a module with three outcomes: an error page
    (its placeholder's screenshot), an error back at the app (one of `allowed`), or success. The
    callback's parameters, or None for the error page."""
    url = authorize_url(client, request) if pushed else plain_authorize_url(client, request)
    visit = person.go(url, until="error-page")
    if visit.callback is None:
        assert visit.status is not None and 400 <= visit.status < 500, (visit.status, person.page.url)
        person.screenshot(screenshot)
        return None
    params = callback_params(visit, person.page.url, redirect_uri=request.redirect_uri)
    if "error" in params:
        check_authorization_error(client.op, request, params, allowed=allowed)
    return params


def _finish(client: FapiClient, request: AuthorizationRequest, params: dict[str, str] | None) -> Tokens | None:
    """A successful authorization's rest: the callback's checks, the token endpoint, the resource."""
    if params is None or "error" in params:
        return None
    code = check_authorization_response(client.op, request, params)
    tokens = check_token_response(client, token_request(client, code_form(request, code)), request=request)
    protected_resource(client, tokens)
    return tokens


def test_fapi2_security_profile_final_ensure_different_nonce_inside_and_outside_request_object(op, client, person):
    check_server_configuration(op)
    request = authorization_request(client)
    check_par_response(push(client, request), request)
    request.params["nonce"] = random_alphanumeric(10)       # AddIncorrectNonceToAuthorizationEndpointRequest
    params = _success_or_error(client, person, request, allowed={"invalid_request"},
                               screenshot="fapi2-different-nonce")
    tokens = _finish(client, request, params)
    if tokens is not None:                                  # the nonce from inside the pushed request
        assert tokens.claims["nonce"] == request.pushed["nonce"] != request.params["nonce"]


def test_fapi2_security_profile_final_ensure_different_state_inside_and_outside_request_object(op, client, person):
    check_server_configuration(op)
    request = authorization_request(client)
    check_par_response(push(client, request), request)
    request.params["state"] = random_alphanumeric(10)       # AddIncorrectStateToAuthorizationEndpointRequest
    params = _success_or_error(client, person, request, allowed={"invalid_request"},
                               screenshot="fapi2-different-state")
    if params is not None and "error" not in params:
        assert params["state"] == request.pushed["state"]  # CheckStateInAuthorizationResponse: the inner one
    _finish(client, request, params)


def _long_value_module(client: FapiClient, person: Person, request: AuthorizationRequest, screenshot: str) -> None:
    """A long nonce or state: refused at PAR (EnsurePARInvalidRequestError), an error page, an error back at
    the app (EnsureInvalidRequestError is a warning there), or success, the value returned whole."""
    check_server_configuration(client.op)
    answer = push(client, request)
    if not 200 <= answer.status_code < 300:
        check_par_error(answer, {"invalid_request"})
        return
    check_par_response(answer, request)
    params = _success_or_error(client, person, request, allowed={"invalid_request", "invalid_request_object",
                                                                  "access_denied", "server_error"},
                               screenshot=screenshot)
    _finish(client, request, params)


def test_fapi2_security_profile_final_ensure_authorization_request_with_long_nonce(op, client, person):
    request = authorization_request(client, nonce_length=384)
    _long_value_module(client, person, request, "fapi2-long-nonce")


def test_fapi2_security_profile_final_ensure_authorization_request_with_long_state(op, client, person):
    request = authorization_request(client, state_length=1000)
    _long_value_module(client, person, request, "fapi2-long-state")


def test_fapi2_security_profile_final_state_only_outside_request_object_not_used(op, client, person):
    check_server_configuration(op)
    request = authorization_request(client)
    state = request.params.pop("state")
    check_par_response(push(client, request), request)      # the pushed request has no state
    request.params["state"] = state                         # AddStateToAuthorizationEndpointRequest: outside only
    params = _success_or_error(client, person, request, allowed={"invalid_request", "invalid_request_object",
                                                                  "access_denied"},
                               screenshot="fapi2-state-only-outside")
    if params is not None and "error" not in params:
        assert "state" not in params                        # VerifyNoStateInAuthorizationResponse
    _finish(client, request, params)


def test_fapi2_security_profile_final_ensure_request_object_without_redirect_uri_fails(op, client, person):
    check_server_configuration(op)
    request = authorization_request(client)
    answer = push(client, request, without=("redirect_uri",))   # RemoveRedirectUriFromRequestObject
    if not 200 <= answer.status_code < 300:
        check_par_error(answer, {"invalid_request", "invalid_request_object"})
        return
    check_par_response(answer, request)
    params = _success_or_error(client, person, request, allowed={"invalid_request", "invalid_request_object"},
                               screenshot="fapi2-request-object-without-redirect-uri")
    assert params is None or "error" in params, params      # EnsureErrorFromAuthorizationEndpointResponse


def test_fapi2_security_profile_final_plain_fapi_tolerate_unregistered_redirect_uri(op, client, person, app_server):
    check_server_configuration(op)
    bad = f"{app_server.url}{CALLBACK_PATH}/{random_alphanumeric(10)}"    # CreateBadRedirectUriByAppending
    request = authorization_request(client, redirect_uri=bad)
    answer = push(client, request)
    if not 200 <= answer.status_code < 300:
        # EnsurePARInvalidRequestOrInvalidRequestObjectError; and the browser is never sent anywhere
        check_par_error(answer, {"invalid_request", "invalid_request_object"})
        return
    check_par_response(answer, request)
    params = _success_or_error(client, person, request, allowed=set(), screenshot="fapi2-unregistered-redirect-uri")
    _finish(client, request, params)                        # RFC 9126 §2.4 allows it


def test_fapi2_security_profile_final_ensure_unsigned_authorization_request_without_using_par_fails(op, client,
                                                                                                     person):
    check_server_configuration(op)
    request = authorization_request(client)
    params = _success_or_error(client, person, request, allowed={"invalid_request"}, pushed=False,
                               screenshot="fapi2-without-par")
    assert params is None or "error" in params, params      # EnsureErrorFromAuthorizationEndpointResponse


def test_fapi2_security_profile_final_ensure_redirect_uri_in_authorization_request(op, client, person):
    check_server_configuration(op)
    request = authorization_request(client)
    del request.params["redirect_uri"]
    answer = push(client, request)
    if not 200 <= answer.status_code < 300:
        check_par_error(answer, {"invalid_request", "invalid_request_object"})
        return
    check_par_response(answer, request)
    params = _success_or_error(client, person, request, allowed={"invalid_request"},
                               screenshot="fapi2-redirect-uri-missing")
    _finish(client, request, params)                        # the one registered URI as the default


def _response_type_module(client: FapiClient, person: Person, response_type: str, screenshot: str) -> None:
    """response_type code id_token or token: refused at PAR (4xx; its error a warning), an error page, or
    an error back at the app (EnsureUnsupportedResponseTypeOrInvalidRequestError), never a code
    (RejectAuthCodeInUrlQuery)."""
    check_server_configuration(client.op)
    request = authorization_request(client, response_type=response_type)
    answer = push(client, request)
    if not 200 <= answer.status_code < 300:
        assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)   # EnsureHttpStatusCodeIs4xx
        return
    check_par_response(answer, request)
    params = _success_or_error(client, person, request, allowed={"unsupported_response_type", "invalid_request"},
                               screenshot=screenshot)
    assert params is None or "error" in params, params


def test_fapi2_security_profile_final_ensure_response_type_code_idtoken_fails(op, client, person):
    _response_type_module(client, person, "code id_token", "fapi2-response-type-code-id-token")


def test_fapi2_security_profile_final_ensure_response_type_token_fails(op, client, person):
    _response_type_module(client, person, "token", "fapi2-response-type-token")


# --- the token endpoint ---------------------------------------------------------------------------------

def test_fapi2_security_profile_final_ensure_client_id_in_token_endpoint(op, client, client2, person):
    request = authorization_request(client)
    code = _code_of(client, person, request)

    def client2s_id_client1s_key(fapi_client: FapiClient) -> dict[str, str]:
        # AddClientIdToRequest with client 2's id, and its assertion signed with client 1's key
        return {"client_id": client2.client_id, "client_assertion": sign_assertion(
            client2, assertion_claims(client2), key=client.key), "client_assertion_type": ASSERTION_TYPE}
    answer = token_request(client, code_form(request, code), auth=client2s_id_client1s_key)
    check_token_error(answer, {"invalid_client", "invalid_grant"}, allow_401_for_invalid_client=True)


def test_fapi2_security_profile_final_ensure_holder_of_key_required(op, client, person):
    # The TLS versions and ciphers of each endpoint are those of the TLS in front of citylogin (not
    # played here). The code redeemed with the client's assertion and no DPoP proof is refused.
    request = authorization_request(client)
    code = _code_of(client, person, request)
    answer = token_request(client, code_form(request, code), dpop=False)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)     # EnsureHttpStatusCodeIs4xx
    check_token_error(answer, {"invalid_request", "invalid_grant", "invalid_dpop_proof"})


def test_fapi2_security_profile_final_ensure_authorization_code_is_bound_to_client(op, client, client2, person):
    request = authorization_request(client)
    code = _code_of(client, person, request)
    answer = token_request(client2, code_form(request, code))   # client 2's assertion and DPoP key
    check_token_error(answer, {"invalid_grant"})


def test_fapi2_security_profile_final_attempt_reuse_authorization_code_after_one_second(op, client, person):
    flow = code_flow(client, person)
    code = flow.callback["code"]
    with waited(op, client) as clock:
        clock.advance(1)                                    # WaitForOneSecond
        again = token_request(client, code_form(flow.request, code))   # a new assertion, a new proof
        assert again.status_code != 200, again.text         # ServerAllowedReusingAuthorizationCode
        check_token_error(again, {"invalid_grant"})
        # The access token the code gave "should" be revoked (a warning otherwise; SPEC §14 revokes it).
        answer = resource_request(client, flow.tokens)
        check_resource_refused(answer, statuses=tuple(range(400, 500)))


def test_fapi2_security_profile_final_ensure_token_endpoint_fails_with_expired_auth_code(op, client, person):
    request = authorization_request(client)
    code = _code_of(client, person, request)
    with waited(op, client) as clock:
        clock.advance(62)                                   # WaitFor62Seconds: 60 s and 2 s of clock skew
        answer = token_request(client, code_form(request, code))
    assert answer.status_code != 200, answer.text           # ServerAllowedExpiredAuthorizationCode
    check_token_error(answer, {"invalid_grant"})


# --- private_key_jwt --------------------------------------------------------------------------------------

def _refused_client_authentication(client: FapiClient, person: Person, auth) -> None:
    """The code redeemed with a client authentication that is not good: 400 (401 for invalid_client),
    JSON, invalid_client or invalid_request (CheckErrorFromTokenEndpointResponseErrorInvalidClientOrInvalidRequest)."""
    request = authorization_request(client)
    code = _code_of(client, person, request)
    answer = token_request(client, code_form(request, code), auth=auth)
    check_token_error(answer, {"invalid_client", "invalid_request"}, allow_401_for_invalid_client=True)


def test_fapi2_security_profile_final_ensure_signed_client_assertion_with_rs256_fails(op, client, person):
    assert client.key.alg == "PS256"                        # not skipped: the client's key is RSA (PS256)
    request = authorization_request(client)
    code = _code_of(client, person, request)

    def rs256(fapi_client: FapiClient) -> dict[str, str]:   # ChangeClientJwksAlgToRS256
        return {"client_assertion": sign_assertion(fapi_client, assertion_claims(fapi_client), alg="RS256"),
                "client_assertion_type": ASSERTION_TYPE}
    answer = token_request(client, code_form(request, code), auth=rs256)
    check_token_error(answer, {"invalid_client"}, allow_401_for_invalid_client=True)


def test_fapi2_security_profile_final_ensure_client_assertion_in_token_endpoint(op, client, person):
    _refused_client_authentication(client, person, lambda fapi_client: {"client_id": fapi_client.client_id})


def _assertion_with(change) -> Any:
    def auth(fapi_client: FapiClient) -> dict[str, str]:
        claims = assertion_claims(fapi_client)
        change(fapi_client, claims)
        return {"client_assertion": sign_assertion(fapi_client, claims), "client_assertion_type": ASSERTION_TYPE}
    return auth


def test_fapi2_security_profile_final_ensure_client_assertion_with_exp_is_5_minutes_in_past_fails(op, client, person):
    _refused_client_authentication(client, person, _assertion_with(
        lambda fapi_client, claims: claims.update(exp=fapi_client.now() - 5 * 60)))


def test_fapi2_security_profile_final_ensure_client_assertion_with_wrong_aud_fails(op, client, person):
    # CreateClientAuthenticationAssertionClaims (aud the token endpoint), then AddWrongAudToClientAssertionClaims
    _refused_client_authentication(client, person, _assertion_with(
        lambda fapi_client, claims: claims.update(aud="https://fapidev-rs.authlete.net/api/userinfo")))


def test_fapi2_security_profile_final_ensure_client_assertion_with_no_sub_fails(op, client, person):
    _refused_client_authentication(client, person, _assertion_with(lambda fapi_client, claims: claims.pop("sub")))


# --- DPoP at the resource -----------------------------------------------------------------------------

def test_fapi2_security_profile_final_dpop_negative_tests(op, client, person):
    tokens = code_flow(client, person).tokens         # the normal resource request first
    url = client.resource_url

    def call(*, expect_success: bool, should_fail: bool = True, **options: Any) -> requests.Response:
        """callResourceEndpointSteps: no x-fapi headers, the proof as the step makes it, once more with the
        server's nonce if it asks; 200/201 or 400/401 (EnsureHttpStatusCodeIs…), a warning only where
        the suite says so (`should_fail` False)."""
        answer = resource_request(client, tokens, **options)
        if should_fail:
            if expect_success:
                check_resource_response(answer, client)
            else:
                check_resource_refused(answer)
        return answer

    def iat_call(offset: int) -> None:
        """callResourceEndpointStepsForIatAndNonceTests: without the stored nonce; a server that asks for
        one makes the proof good (then success is only a warning's matter), else it must refuse it."""
        client.rs_nonce = None
        asked: list[bool] = []

        def iat(claims: dict[str, Any]) -> None:
            asked.append("nonce" in claims)
            claims["iat"] = client.now() + offset
        answer = resource_request(client, tokens, proof={"claims_change": iat})
        if not any(asked):
            check_resource_refused(answer)

    def removed(name: str) -> Any:
        return lambda part: part.pop(name)

    call(expect_success=True, should_fail=False, proof_header="DPOP")        # AddDpopHeaderAllCapital
    extra = dpop_proof(client, htm="GET", htu=url, access_token=tokens.access_token, nonce=client.rs_nonce)
    call(expect_success=False, raw_headers=[("DPoP", extra)])                 # MultipleProofs: two DPoP headers
    call(expect_success=False, proof={"signed_change": lambda jws: jws.rsplit(".", 1)[0]})  # NotWellformedDPoP
    call(expect_success=False, proof={"header_change": removed("typ")})      # RemoveTypFromDpopProof
    call(expect_success=False, proof={"signed_change": _alg_renamed})        # SignDpopAndRemoveAlg
    call(expect_success=False, proof={"header_change": removed("jwk")})      # RemoveJwkFromDpopProof
    for claim in ("jti", "htm", "htu", "iat", "ath"):                        # Remove…FromDpopProof, no ath
        call(expect_success=False, proof={"claims_change": removed(claim)})
    call(expect_success=False, proof={"header_change": lambda header: header.update(typ="dpop+jwt+wrongyousee")})
    assert client.dpop().alg != "PS256"          # the RS256 proof is tried only with an RSA DPoP key
    call(expect_success=False, proof={"sign": _unsigned_proof})              # SignDpopProofWithNone
    call(expect_success=False, proof={"signed_change": _signature_flipped})  # InvalidateDpopProofSignature
    call(expect_success=False,                                               # SetDpopHeaderJwkToPrivateKey
         proof={"header_change": lambda header: header.update(jwk=client.dpop().private_jwk)})
    call(expect_success=False, proof={"claims_change": lambda claims: claims.update(htm="PUT")})  # SetDpopHtmToPut
    call(expect_success=True, proof={"claims_change": lambda claims: claims.update(    # AddQueryAndFragmentToDpopHtu
        htu=claims["htu"] + "?allthedoorsonthisspaceshiphavebeen#programmedtohaveacheeryandsunnydisposition")})
    call(expect_success=True, proof={"claims_change": lambda claims: claims.update(    # RemoveQueryAndFragment…
        htu=claims["htu"].split("?")[0])})
    call(expect_success=False, proof={"claims_change": lambda claims: claims.update(   # SetDpopHtuToDifferentUrl
        htu=claims["htu"].split("?")[0] + "ohnonotagain")})
    iat_call(3600)                                                           # SetDpopIatToOneHourInFuture
    iat_call(-3600)                                                          # SetDpopIatToOneHourInPast
    jti = random_alphanumeric(15)                                            # FixedJtiClaim
    call(expect_success=True, proof={"claims_change": lambda claims: claims.update(jti=jti)})
    call(expect_success=False, should_fail=False, proof={"claims_change": lambda claims: claims.update(jti=jti)})
    call(expect_success=False, proof={"claims_change": lambda claims: claims.update(   # …HashToIncorrectValue
        ath=b64url(b"\x00" * 32))})
    other = new_key(client.dpop().alg)                                      # GenerateNewSignKey: signed by another key
    call(expect_success=False, proof={"sign": lambda header, claims: _signed(header, claims, other)})
    call(expect_success=True, proof={"header_change": lambda header: header.update(tx_id=client.now() + 3600),
                                     "claims_change": lambda claims: claims.update(tx_id_key=client.now() + 3600)})
    call(expect_success=True, should_fail=False, proof={"claims_change": _htu_upper_case})   # DpopHtuUpperCase
    call(expect_success=True, should_fail=False, proof={"claims_change": _htu_with_port})    # DpopHtuWithPort
    call(expect_success=False, with_proof=False)                             # RemoveDpopFromResourceRequest
    call(expect_success=False, with_proof=False, token_type="Bearer")        # …and CallProtectedResourceForceBearer
    call(expect_success=True)                                                # a correct proof still works


def _signed(header: dict[str, Any], claims: dict[str, Any], key: SigningKey) -> str:
    return compact_jws(header, claims, key.private, key.alg)


def _alg_renamed(jws: str) -> str:
    """SignDpopAndRemoveAlg: the signed proof's header with "alg" renamed "alg2"."""
    header, rest = jws.split(".", 1)
    return f"{b64url(b64url_decode(header).replace(b'alg', b'alg2'))}.{rest}"


def _unsigned_proof(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """SignDpopProofWithNone: {"alg": "none", "typ": "dpop+jwt"}, the claims, no signature."""
    return f"{b64url(NONE_HEADER)}.{b64url(json.dumps(claims).encode())}."


def _signature_flipped(jws: str) -> str:
    """InvalidateDpopProofSignature: each byte of the signature XORed with 0x5A."""
    signed, signature = jws.rsplit(".", 1)
    return f"{signed}.{b64url(bytes(byte ^ 0x5A for byte in b64url_decode(signature)))}"


def _htu_upper_case(claims: dict[str, Any]) -> None:
    """DpopHtuUpperCase: the scheme and host upper-cased."""
    parts = urlsplit(claims["htu"])
    assert parts.hostname
    claims["htu"] = claims["htu"].replace(parts.hostname, parts.hostname.upper()).replace(
        parts.scheme, parts.scheme.upper(), 1)


def _htu_with_port(claims: dict[str, Any]) -> None:
    """DpopHtuWithPort: the scheme's default port written out, when the URL names none."""
    parts = urlsplit(claims["htu"])
    if parts.port is None:
        claims["htu"] = f"{parts.scheme}://{parts.hostname}:{443 if parts.scheme == 'https' else 80}{parts.path}"


# --- refresh tokens --------------------------------------------------------------------------------------

def _refresh(client: FapiClient, refresh_token: str, *, first_client: bool, auth: Any = client_assertion,
             dpop: bool = True) -> requests.Response:
    """CreateRefreshTokenRequest, with the client's scope for the first client (AddScopeToTokenEndpointRequest)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if first_client:
        form["scope"] = client.scope
    return token_request(client, form, auth=auth, dpop=dpop)


def _check_refreshed(client: FapiClient, answer: requests.Response, before: Tokens) -> Tokens:
    """RefreshTokenRequestSteps' checks: 200 (CheckTokenEndpointHttpStatus200), JSON, Cache-Control no-store
    (CheckTokenEndpointCacheHeaders), a DPoP access token (CheckTokenTypeIsDpop) of 128 bits of VSCHARs,
    ValidateExpiresIn, a refresh token's length and entropy, and the new ID token against the first
    (CompareIdTokenClaims: iss, sub, aud, auth_time and azp the same, iat not)."""
    assert answer.status_code == 200, (answer.status_code, answer.text)
    assert answer.headers["Content-Type"].split(";")[0].strip() == "application/json", answer.headers
    assert "no-store" in [part.strip() for part in answer.headers.get("Cache-Control", "").split(",")], answer.headers
    body = answer.json()
    assert body["token_type"] == "DPoP", body
    assert token_chars_ok(body["access_token"]) and len(body["access_token"]) * 8 >= 128, body
    if "expires_in" in body:
        assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 31536000, body
    refresh_token = body.get("refresh_token")
    if refresh_token is not None:
        assert len(refresh_token) * 8 >= 128 and token_chars_ok(refresh_token), body
    refreshed = Tokens(access_token=body["access_token"], token_type=body["token_type"],
                       refresh_token=refresh_token or before.refresh_token, id_token=body.get("id_token"))
    if refreshed.id_token:
        claims = jwt.decode(refreshed.id_token, options={"verify_signature": False})
        for name in ("iss", "sub", "aud"):
            assert claims[name] == before.claims[name], name
        if "auth_time" in claims:
            assert claims["auth_time"] == before.claims.get("auth_time"), claims
        assert claims.get("azp") == before.claims.get("azp"), claims
        assert claims["iat"] != before.claims["iat"], claims
        refreshed.claims = claims
    return refreshed


def test_fapi2_security_profile_final_refresh_token(op, client, client2, person):
    issued: list[Tokens] = []
    for fapi_client, first_client in ((client, True), (client2, False)):
        check_server_configuration(op)
        request = authorization_request(fapi_client, state_length=10 if first_client else 128)
        request.params["prompt"] = "consent"      # AddPromptConsent…IfScopeContainsOfflineAccess
        code = _code_of(fapi_client, person, request)
        tokens = check_token_response(fapi_client, token_request(fapi_client, code_form(request, code)),
                                      request=request)
        assert tokens.refresh_token, "no refresh token: the suite skips the module"
        assert token_chars_ok(tokens.refresh_token)           # EnsureRefreshTokenContainsAllowedCharactersOnly
        assert "refresh_token" in op.metadata["grant_types_supported"]
        next_second(tokens.claims["iat"])                      # WaitForOneSecond
        fapi_client.dpop_key = new_key(fapi_client.dpop().alg)  # GenerateDpopKey: a new key for the refresh
        refreshed = _check_refreshed(fapi_client, _refresh(fapi_client, tokens.refresh_token,
                                                           first_client=first_client), tokens)
        if refreshed.refresh_token != tokens.refresh_token:
            # Rotated: the previous refresh token, lost in a response that never arrived, still works 30 s later
            # ("Refresh Token Request With Previous Token, FAPI 2.0 Security Profile 5.3.2.1-9").
            with waited(op, fapi_client) as clock:
                clock.advance(30)                              # WaitFor30Seconds
                fapi_client.dpop_key = new_key(fapi_client.dpop().alg)
                refreshed = _check_refreshed(fapi_client, _refresh(fapi_client, tokens.refresh_token,
                                                                   first_client=first_client), tokens)
        if first_client:
            # Without client authentication (RFC 6749 §6): 400 or 401, invalid_client/grant/request.
            answer = _refresh(fapi_client, refreshed.refresh_token or "", first_client=True, auth=lambda c: {})
            assert answer.status_code in (400, 401), (answer.status_code, answer.text)
            check_token_error(answer, {"invalid_client", "invalid_grant", "invalid_request"}, status=None)
            # Without a DPoP proof: 400, invalid_request/grant or invalid_dpop_proof (RFC 9449 §5).
            answer = _refresh(fapi_client, refreshed.refresh_token or "", first_client=True, dpop=False)
            check_token_error(answer, {"invalid_request", "invalid_grant", "invalid_dpop_proof"})
        protected_resource(fapi_client, refreshed, first_client=first_client)
        issued.append(refreshed)
    _client1_with_client2s_token(client, issued[1])
    # Client 2's refresh token with client 1's authentication and key (RefreshTokenRequestExpectingErrorSteps)
    check_token_error(_refresh(client, issued[1].refresh_token or "", first_client=False), {"invalid_grant"})


# --- pushed authorization requests ---------------------------------------------------------------------------

def test_fapi2_security_profile_final_par_ensure_reused_request_uri_prior_to_auth_completion_succeeds(op, client,
                                                                                                      person):
    # "Clear any cookies …": the person is signed out, so that the first visit shows the sign-in page, where
    # the person does nothing; the second visit with the same request_uri is where they sign in.
    person.signs_out_of_citylogin()
    check_server_configuration(op)
    request = authorization_request(client)
    check_par_response(push(client, request), request)
    url = authorize_url(client, request)
    first = person.go(url, until="login-page")
    assert first.callback is None, first.callback         # not authenticated on the first visit
    second = person.go(url, until="error-page")
    if second.callback is None:
        # The request_uri is spent at the first visit: an error page (its screenshot), which the suite
        # takes with a warning (WarningAboutRequestUriError: FAPI 2.0 §5.3.2.2 note 3 recommends otherwise).
        assert second.status is not None and 400 <= second.status < 500, second.status
        person.screenshot("fapi2-reused-request-uri-before-authentication")
        return
    params = callback_params(second, person.page.url, redirect_uri=request.redirect_uri)
    if "error" in params:
        check_authorization_error(op, request, params, allowed={"invalid_request_uri"})   # EnsureInvalidRequestUriError
        return
    assert "login" in second.steps, second.steps
    _finish(client, request, params)


def test_fapi2_security_profile_final_par_attempt_reuse_request_uri(op, client, person):
    flow = code_flow(client, person)
    # The request_uri again: an error page (ExpectInvalidRequestUriErrorPage's screenshot), invalid_request_uri
    # back at the app (EnsureInvalidRequestUriError), or a second success (a warning: PAR §7.3 "SHOULD").
    visit = person.go(authorize_url(client, flow.request), until="error-page")
    if visit.callback is None:
        assert visit.status is not None and 400 <= visit.status < 500, visit.status
        person.screenshot("fapi2-reused-request-uri")
        return
    params = callback_params(visit, person.page.url, redirect_uri=flow.request.redirect_uri)
    if "error" in params:
        assert params["error"] == "invalid_request_uri", params
    else:
        _finish(client, flow.request, params)


def test_fapi2_security_profile_final_par_attempt_to_use_expired_request_uri(op, client, person):
    check_server_configuration(op)
    request = authorization_request(client)
    answer = push(client, request)
    check_par_response(answer, request)
    expires_in = answer.json()["expires_in"]
    assert expires_in <= 30 * 60                            # else the suite skips: too long to wait for
    with waited(op, client) as clock:
        clock.advance(expires_in)                           # WaitForExpiry
        visit = person.go(authorize_url(client, request), until="error-page")
    if visit.callback is None:                              # ExpectInvalidRequestUriErrorPage: its screenshot
        assert visit.status is not None and 400 <= visit.status < 500, visit.status
        person.screenshot("fapi2-expired-request-uri")
        return
    params = callback_params(visit, person.page.url, redirect_uri=request.redirect_uri)
    assert params.get("error") == "invalid_request_uri", params   # EnsureInvalidRequestUriError


def _assertion_times(client: FapiClient, offset: int, *, exp_too: bool) -> dict[str, str]:
    """A PAR client assertion (CreateClientAuthenticationAssertionClaims, its aud then the issuer) with iat
    and nbf `offset` seconds on (exp too with `exp_too`)."""
    claims = assertion_claims(client)
    for name in ("iat", "nbf", *(("exp",) if exp_too else ())):
        claims[name] += offset
    return {"client_assertion": sign_assertion(client, claims), "client_assertion_type": ASSERTION_TYPE}


def test_fapi2_security_profile_final_par_ensure_jwt_client_assertions_nbf_8_seconds_in_the_future_is_accepted(
        op, client, person):
    check_server_configuration(op)
    request = authorization_request(client)
    answer = push(client, request, auth=lambda c: _assertion_times(c, 8, exp_too=False))
    # Not 201: a warning (CheckPAREndpointResponse201WithNoError), the suite ends the module there.
    assert answer.status_code == 201, (answer.status_code, answer.text)
    check_par_response(answer, request)
    visit = person.go(authorize_url(client, request))
    params = callback_params(visit, person.page.url, redirect_uri=request.redirect_uri)
    code = check_authorization_response(op, request, params)
    tokens = check_token_response(client, token_request(client, code_form(request, code)), request=request)
    protected_resource(client, tokens)


def test_fapi2_security_profile_final_par_ensure_jwt_client_assertions_nbf_over_60_seconds_in_the_future_fails(
        op, client):
    check_server_configuration(op)
    answer = push(client, authorization_request(client), auth=lambda c: _assertion_times(c, 62, exp_too=True))
    # EnsureHttpStatusCodeIs400or401 and CheckErrorFromParEndpointResponseErrorInvalidClientOrInvalidRequest
    check_par_error(answer, {"invalid_client", "invalid_request"}, statuses=(400, 401))


def test_fapi2_security_profile_final_par_attempt_to_use_request_uri_for_different_client(op, client, client2,
                                                                                          person):
    check_server_configuration(op)
    request = authorization_request(client)
    check_par_response(push(client, request), request)
    request.params["client_id"] = client2.client_id         # AddClientIdToAuthorizationEndpointRequest
    visit = person.go(authorize_url(client, request), until="error-page")
    if visit.callback is None:                               # ExpectInvalidRequestUriErrorPage: its screenshot
        assert visit.status is not None and 400 <= visit.status < 500, visit.status
        person.screenshot("fapi2-request-uri-of-another-client")
        return
    params = callback_params(visit, person.page.url)
    # EnsureInvalidRequestInvalidRequestObjectOrInvalidRequestUriError
    assert params.get("error") in {"invalid_request", "invalid_request_object", "invalid_request_uri"}, params


def test_fapi2_security_profile_final_par_authorization_request_containing_request_uri_form_param(op, client):
    check_server_configuration(op)
    answer = push(client, authorization_request(client),    # AddBadRequestUriToRequestParameters
                  extra={"request_uri": "urn:fdc:authlete.com:E2ooXxELkEFSKR90ymYV-BbwAvCC2TozHfSb_mMCw2s"})
    check_par_error(answer, {"invalid_request", "invalid_request_object", "request_uri_not_supported"})


def test_fapi2_security_profile_final_par_attempt_invalid_http_method(op, client):
    check_server_configuration(op)
    answer = push(client, authorization_request(client), method="PUT")
    assert 400 <= answer.status_code < 600, (answer.status_code, answer.text)   # EnsureParHTTPError


# --- PKCE -------------------------------------------------------------------------------------------------------

def _refused_pkce(client: FapiClient, person: Person, request: AuthorizationRequest, screenshot: str) -> None:
    """Refused at PAR (EnsurePARInvalidRequestError), an error page (its screenshot), or invalid_request back
    at the app (EnsureInvalidRequestError)."""
    check_server_configuration(client.op)
    answer = push(client, request)
    if not 200 <= answer.status_code < 300:
        check_par_error(answer, {"invalid_request"})
        return
    check_par_response(answer, request)
    visit = person.go(authorize_url(client, request), until="error-page")
    if visit.callback is None:
        assert visit.status is not None and 400 <= visit.status < 500, visit.status
        person.screenshot(screenshot)
        return
    params = callback_params(visit, person.page.url, redirect_uri=request.redirect_uri)
    assert params.get("error") == "invalid_request", params


def test_fapi2_security_profile_final_par_ensure_pkce_required(op, client, person):
    _refused_pkce(client, person, authorization_request(client, pkce=False), "fapi2-pkce-missing")


def test_fapi2_security_profile_final_ensure_pkce_code_verifier_required(op, client, person):
    request = authorization_request(client)
    code = _code_of(client, person, request)
    answer = token_request(client, code_form(request, code, verifier=None))
    check_token_error(answer, {"invalid_grant"})            # CheckErrorFromTokenEndpointResponseErrorInvalidGrant


def test_fapi2_security_profile_final_incorrect_pkce_code_verifier_rejected(op, client, person):
    request = authorization_request(client)
    code = _code_of(client, person, request)
    answer = token_request(client, code_form(request, code, verifier=code_verifier()))   # CreateRandomCodeVerifier
    check_token_error(answer, {"invalid_grant"})


def test_fapi2_security_profile_final_par_plain_pkce_rejected(op, client, person):
    request = authorization_request(client)
    assert request.verifier is not None
    request.params.update(code_challenge=request.verifier, code_challenge_method="plain")   # CreatePlainCodeChallenge
    _refused_pkce(client, person, request, "fapi2-plain-pkce")


def test_fapi2_security_profile_final_par_without_duplicate_parameters(op, client, person):
    code_flow(client, person, duplicates=False)             # …WithoutDuplicates: client_id and request_uri only


# --- client assertions at the PAR endpoint: aud the issuer, as a string (FAPI 2.0 §5.3.2.1-8) ---------------

def _par_audience_refused(client: FapiClient, aud: Any) -> None:
    check_server_configuration(client.op)

    def auth(fapi_client: FapiClient) -> dict[str, str]:
        claims = assertion_claims(fapi_client, aud=aud)
        return {"client_assertion": sign_assertion(fapi_client, claims), "client_assertion_type": ASSERTION_TYPE}
    answer = push(client, authorization_request(client), auth=auth)
    check_par_error(answer, {"invalid_client", "invalid_request"}, statuses=(400, 401))


def test_fapi2_security_profile_final_par_test_array_as_audience_fails(op, client):
    _par_audience_refused(client, [client.op.issuer, client.op.metadata["token_endpoint"]])


def test_fapi2_security_profile_final_par_test_par_endpoint_url_as_audience_fails(op, client):
    _par_audience_refused(client, client.op.metadata["pushed_authorization_request_endpoint"])


def test_fapi2_security_profile_final_par_test_token_endpoint_url_as_audience_fails(op, client):
    _par_audience_refused(client, client.op.metadata["token_endpoint"])


# --- not applicable to plain_fapi ----------------------------------------------------------------------------

def test_fapi2_security_profile_final_ensure_registered_redirect_uri(op, client, app_server):
    # Not applicable to plain_fapi (the plan has fapi2-security-profile-final-plain-fapi-tolerate-unregistered-
    # redirect-uri instead: FAPI 2.0 does not require pre-registration). citylogin requires it: the pushed
    # request with an unregistered redirect URI is refused, so no browser is sent anywhere.
    bad = f"{app_server.url}{CALLBACK_PATH}/{random_alphanumeric(10)}"
    answer = push(client, authorization_request(client, redirect_uri=bad))
    check_par_error(answer, {"invalid_request", "invalid_request_object"})


def test_fapi2_security_profile_final_australia_connectid_ensure_invalid_purpose_fails(op, client):
    # Not applicable: ConnectID (connectid_au) alone has a `purpose` parameter. citylogin has none, so a
    # pushed request with ConnectID's over-long purpose is taken, the parameter ignored (RFC 6749 §3.1).
    request = authorization_request(client)
    answer = push(client, request, extra={"purpose": random_alphanumeric(301)})
    check_par_response(answer, request)


def test_fapi2_security_profile_final_ensure_server_handles_non_matching_intent_id(op):
    # Not applicable: UK Open Banking (openbanking_uk) alone has account-access intents (consents) to
    # cross between clients; citylogin names no such endpoint or scope.
    assert not {"accounts", "payments"} & set(op.metadata["scopes_supported"])


def test_fapi2_security_profile_final_test_essential_acr_sca_claim(op):
    # Not applicable: the SCA acr (urn:openbanking:psd2:sca) is UK Open Banking's (openbanking_uk); and
    # citylogin takes no claims parameter to ask for an essential acr with.
    assert "urn:openbanking:psd2:sca" not in op.metadata.get("acr_values_supported", [])
    assert op.metadata.get("claims_parameter_supported", False) is False


def test_fapi2_security_profile_final_brazil_ensure_bad_payment_signature_fails(op):
    # Not applicable: Brazil's Open Finance (openbanking_brazil) alone has signed payment consents;
    # citylogin's only protected resource for an app is userinfo.
    assert not any("payment" in name or "consent" in name for name in op.metadata if name.endswith("_endpoint"))


def test_fapi2_security_profile_final_australia_connectid_test_claims_parameter_idtoken_identity_claims(op):
    # Not applicable: ConnectID's identity claims (connectid_au); and they are asked for with the claims
    # parameter, which citylogin does not take.
    assert op.metadata.get("claims_parameter_supported", False) is False
