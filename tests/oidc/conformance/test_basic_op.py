"""The OpenID Foundation's Basic OP certification plan (oidcc-basic-certification-test-plan: response type
code, client_secret_basic, default response mode) in its static_client variant (a confidential client an
operator added), one test per module the variant runs, each sending the module's own requests (no PKCE
but in oidcc-ensure-request-with-valid-pkce-succeeds) and asserting the module's failure-level conditions
(docs/security/test-plans.md). Every authorization goes through the browser and citylogin's web UI; the
person signs in, allows or logs in again there.

test_formpost_basic_op.py runs these same tests with response_mode=form_post (the Form Post OP plan):
a test reads the response mode from its `rp`. test_basic_op_dynamic.py and
test_formpost_basic_op_dynamic.py run them in the dynamic_client variant: each module registers its own
client (the fixtures `rp`, `secret_post_rp` and `refresh_clients` are the variant's), and the three
modules the suite runs for a dynamic client alone are there."""
from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.oidc.conformance.browser_person import Person
from tests.oidc.conformance.relying_party import (USER_INTERFACE_ERRORS, AuthorizationRequest, Flow, Provider,
                                                  RelyingParty, authorization_request, authorization_url,
                                                  browser_authorizes, callback_of, check_client_auth_supported,
                                                  check_error_response, check_no_callback, check_standard_claims,
                                                  check_token_error, check_userinfo, code_flow, completed_flow,
                                                  id_token_claims, next_second, random_value, redeem, register_rp,
                                                  scope_claims_returned, shannon_bits, token_request, userinfo)
from tests.support.live import FakeClock

# the conformance plans run in the full suite; tests/oidc/test_code_flow.py keeps the flow in the fast tier
pytestmark = pytest.mark.slow

RESPONSE_MODE = "default"
# The suite's dynamic clients register no request_object_signing_alg and send unsigned objects (oidcc-request-uri-
# unsigned): the OP under certification takes OIDC Registration §2's default (off in citylogin's own).
OP_SETTINGS = {"oidc_registered_apps_send_unsigned_request_objects": True}


@pytest.fixture(scope="module")
def rp(op, app_server) -> RelyingParty:
    # The plan's static client as a tester configures it, allowing unsigned request objects (the suite's
    # request-object modules send alg none): apps add --allow-unsigned-request-objects
    return register_rp(op, app_server.url, response_mode=RESPONSE_MODE, allow_unsigned_request_objects=True)


@pytest.fixture
def secret_post_rp(rp) -> RelyingParty:
    """OIDCCServerTestClientSecretPost's client: the static variant's `client_secret_post` client, which
    may be the plan's one client, as an app an operator added takes either method."""
    return rp


@pytest.fixture
def refresh_clients(op, rp, app_server) -> tuple[RelyingParty, RelyingParty]:
    """OIDCCRefreshToken's two clients (AbstractOIDCCMultipleClient): the plan's client and the static
    variant's second one (`client2`), another app an operator added."""
    return rp, register_rp(op, app_server.url, response_mode=rp.response_mode)


def _second_flow(op: Provider, rp: RelyingParty, person: Person, **extra: str) -> tuple[Flow, list[str]]:
    """The second authorization of a module that authorizes twice, its whole chain (token, ID token,
    userinfo); and the person's steps it took."""
    flow = code_flow(op, rp, person, **extra)
    assert flow.visit is not None
    return flow, flow.visit.steps


def test_oidcc_server(op, rp, person):
    flow = code_flow(op, rp, person)
    assert "c_hash" not in flow.id_token                 # code flow: no c_hash to check (ExtractCHash is INFO)
    assert "name" not in flow.id_token                   # EnsureIdTokenDoesNotContainName


def test_oidcc_response_type_missing(op, rp, person):
    check_client_auth_supported(op, "client_secret_basic")
    request = authorization_request(rp)
    del request.params["response_type"]
    # The client and its redirect are trusted, so the error goes back to the app (SPEC §14), which the
    # module takes in place of the error page's screenshot; by query, as no response_type was sent, or
    # as the Form Post plan's POST.
    callback = callback_of(rp, browser_authorizes(op, person, request))
    check_error_response(op, request, callback, allowed={"invalid_request", "unsupported_response_type"})


def test_oidcc_userinfo_get(op, rp, person):
    flow = code_flow(op, rp, person)
    check_userinfo(userinfo(op, flow.tokens["access_token"]), flow.id_token)


def test_oidcc_userinfo_post_header(op, rp, person):
    flow = code_flow(op, rp, person)
    check_userinfo(userinfo(op, flow.tokens["access_token"], method="POST"), flow.id_token)


def test_oidcc_userinfo_post_body(op, rp, person):
    # RFC 6750 §2.2's form-encoded token is optional (the suite only warns without it); given, it must work.
    flow = code_flow(op, rp, person)
    answer = userinfo(op, flow.tokens["access_token"], in_body=True)
    if answer.status_code == 200:
        check_userinfo(answer, flow.id_token)
    else:
        assert answer.status_code == 401 and answer.headers.get("WWW-Authenticate", "").startswith("Bearer"), \
            (answer.status_code, answer.headers, answer.text[:300])


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(op, rp, person):
    flow = code_flow(op, rp, person, with_nonce=False)
    assert "nonce" not in flow.request.params and "nonce" not in flow.id_token


def test_oidcc_scope_profile(op, rp, person):
    flow = code_flow(op, rp, person, scope="openid profile")
    claims = check_userinfo(userinfo(op, flow.tokens["access_token"]), flow.id_token)
    scope_claims_returned(claims, flow.request.scope)


def test_oidcc_scope_email(op, rp, person):
    flow = code_flow(op, rp, person, scope="openid email")
    claims = check_userinfo(userinfo(op, flow.tokens["access_token"]), flow.id_token)
    scope_claims_returned(claims, flow.request.scope)
    assert claims["email"] == person.username + "@example.com" and claims["email_verified"] is True
    assert "name" not in claims and "name" not in flow.id_token   # EnsureUserInfoDoesNotContainName, ...IdToken...


def _skipped_for_scopes(op: Provider, rp: RelyingParty, person: Person, *scopes: str) -> None:
    """Skipped: the suite's configuration step finds a scope of the module's missing from discovery's
    scopes_supported (citylogin keeps no postal address or phone number) and skips the module. A client
    that asks for them all the same signs in: the values not understood are ignored (Core §3.1.2.1)."""
    assert not set(scopes) <= set(op.metadata["scopes_supported"])
    flow = code_flow(op, rp, person, scope=" ".join(scopes))
    granted = set(flow.tokens.get("scope", "openid").split())
    assert granted <= set(op.metadata["scopes_supported"]) and "openid" in granted


def test_oidcc_scope_address(op, rp, person):
    _skipped_for_scopes(op, rp, person, "openid", "address")


def test_oidcc_scope_phone(op, rp, person):
    _skipped_for_scopes(op, rp, person, "openid", "phone")


def test_oidcc_scope_all(op, rp, person):
    _skipped_for_scopes(op, rp, person, "openid", "email", "phone", "address", "profile")


def test_oidcc_alternate_happy_flow(op, rp, person):
    # The scope's order reversed (RFC 6749 §3.3) and the query's parameters in another order.
    names = ["scope", "state", "redirect_uri", "nonce", "response_type", "client_id"]
    order = names + (["response_mode"] if rp.response_mode == "form_post" else [])
    flow = code_flow(op, rp, person, scope="email openid", order=order)
    claims = check_userinfo(userinfo(op, flow.tokens["access_token"]), flow.id_token)
    scope_claims_returned(claims, "email")


def test_oidcc_display_page(op, rp, person):
    code_flow(op, rp, person, display="page")


def test_oidcc_display_popup(op, rp, person):
    code_flow(op, rp, person, display="popup")


def test_oidcc_prompt_login(op, rp, person):
    first = code_flow(op, rp, person)
    next_second(first.id_token["auth_time"])                        # WaitForOneSecond
    second, steps = _second_flow(op, rp, person, prompt="login")
    # ExpectSecondLoginPage: the web UI asks for the password again (the person confirms the re-login)
    assert "login" in steps, steps
    person.screenshot(f"prompt-login-{rp.response_mode}")
    assert second.id_token["auth_time"] > first.id_token["auth_time"]  # CheckSecondIdTokenAuthTimeIsLaterIfPresent


def test_oidcc_prompt_none_not_logged_in(op, rp, browser, app_server):
    # "Please remove any cookies": a browser with nothing of citylogin's. The web UI shows no page and
    # answers login_required itself (oidc.js).
    check_client_auth_supported(op, "client_secret_basic")
    stranger = Person(browser, op.url, app_server, "nobody")
    try:
        request = authorization_request(rp, state_length=128, prompt="none")
        visit = browser_authorizes(op, stranger, request)
        assert visit.steps == [], visit.steps
        callback = callback_of(rp, visit)
    finally:
        errors = stranger.close()
    assert not errors, errors
    check_error_response(op, request, callback, allowed=USER_INTERFACE_ERRORS)
    assert len(callback["state"]) == 128                             # the long state unchanged


def test_oidcc_prompt_none_logged_in(op, rp, person):
    first = code_flow(op, rp, person)
    second, steps = _second_flow(op, rp, person, prompt="none")
    assert steps == [], steps                                        # no page at all
    assert second.id_token["sub"] == first.id_token["sub"]          # CheckIdTokenSubConsistentForSecondAuthorization
    assert second.id_token["auth_time"] == first.id_token["auth_time"]   # CheckIdTokenAuthTimeClaimsSameIfPresent


def test_oidcc_max_age_1(op, rp, person):
    first = code_flow(op, rp, person)
    next_second(first.id_token["auth_time"] + 1)                    # WaitFor2Seconds: the sign-in is over 1 s old
    second, steps = _second_flow(op, rp, person, max_age="1")
    assert "login" in steps, steps                                   # ExpectSecondLoginPage
    person.screenshot(f"max-age-1-{rp.response_mode}")
    claims = second.id_token
    assert "auth_time" in claims                                    # CheckIdTokenAuthTimeClaimPresentDueToMaxAge
    assert claims["auth_time"] > first.id_token["auth_time"]        # CheckSecondIdTokenAuthTimeIsLaterIfPresent
    assert claims["auth_time"] >= time.time() - 5 * 60 - 1          # CheckIdTokenAuthTimeIsRecentIfPresent


def test_oidcc_max_age_10000(op, rp, person):
    first = code_flow(op, rp, person, max_age="15000")
    assert "auth_time" in first.id_token
    second, steps = _second_flow(op, rp, person, max_age="10000")
    assert "login" not in steps, steps                               # no new sign-in
    assert second.id_token["auth_time"] == first.id_token["auth_time"]
    assert second.id_token["sub"] == first.id_token["sub"]


def test_oidcc_ensure_request_with_unknown_parameter_succeeds(op, rp, person):
    code_flow(op, rp, person, extra="foobar")                       # RFC 6749 §3.1: ignored


def test_oidcc_id_token_hint(op, rp, person):
    first = code_flow(op, rp, person)
    second, steps = _second_flow(op, rp, person, prompt="none", id_token_hint=first.tokens["id_token"])
    assert steps == [], steps
    assert second.id_token["sub"] == first.id_token["sub"]
    assert second.id_token["auth_time"] == first.id_token["auth_time"]


def test_oidcc_login_hint(op, rp, person):
    # "This test requests that you log in as a specific user, so a fresh login page is needed": the
    # person signs out of citylogin first, and signs in again at the login page the request shows.
    person.signs_out_of_citylogin()
    hint = f"buffy@{urlsplit(op.issuer).hostname}"
    flow = code_flow(op, rp, person, login_hint=hint)               # the whole chain: token, ID token, userinfo
    assert flow.visit is not None and "login" in flow.visit.steps, flow.visit


def test_oidcc_ui_locales(op, rp, person):
    code_flow(op, rp, person, ui_locales="se")


def test_oidcc_claims_locales(op, rp, person):
    code_flow(op, rp, person, claims_locales="se")


def test_oidcc_ensure_request_with_acr_values_succeeds(op, rp, person):
    # Discovery names no acr_values_supported, so the suite asks for "1 2"; success is what OIDC §15.1
    # requires (the acr the token carries is then only a warning of the suite's).
    acr_values = " ".join(op.metadata.get("acr_values_supported", ["1", "2"]))
    flow = code_flow(op, rp, person, acr_values=acr_values)
    assert isinstance(flow.id_token.get("acr"), str) and flow.id_token["acr"]


def test_oidcc_codereuse(op, rp, person):
    flow = code_flow(op, rp, person)
    check_token_error(redeem(op, rp, flow.request, flow.callback["code"]))


def test_oidcc_codereuse_30seconds(op, rp, person):
    flow = code_flow(op, rp, person)
    real_clock, op.ctx.clock = op.ctx.clock, FakeClock()
    try:
        op.ctx.clock.advance(30)                 # WaitFor30Seconds, on the OP's clock
        check_token_error(redeem(op, rp, flow.request, flow.callback["code"]))
    finally:
        op.ctx.clock = real_clock
    # The tokens the code gave are revoked (RFC 6749 §4.1.2; the suite warns otherwise; SPEC §14).
    assert userinfo(op, flow.tokens["access_token"]).status_code == 401


def test_oidcc_ensure_registered_redirect_uri(op, rp, person):
    check_client_auth_supported(op, "client_secret_basic")
    # CreateBadRedirectUriByAppending
    request = authorization_request(rp, redirect_uri=f"{rp.redirect_uri}/{random_value(10)}")
    visit = browser_authorizes(op, person, request, until="error-page")
    check_no_callback(visit)                      # neither the registered URI nor the bad one is called
    assert person.page.url.startswith(op.url), person.page.url
    person.screenshot(f"ensure-registered-redirect-uri-{rp.response_mode}")   # ExpectRedirectUriErrorPage


def test_oidcc_ensure_post_request_succeeds(op, rp, person):
    code_flow(op, rp, person, method="POST")


def test_oidcc_server_client_secret_post(op, secret_post_rp, person):
    code_flow(op, secret_post_rp, person, auth="client_secret_post")


def _unsigned_request_object(request: AuthorizationRequest) -> str:
    """ConvertAuthorizationEndpointRequestToRequestObject (the request's parameters, every one, and nothing
    else: no iss, aud, exp or jti) + SerializeRequestObjectWithNullAlgorithm (Nimbus' PlainHeader: {"alg":
    "none"} alone, and an empty signature)."""
    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none'})}.{part(request.params)}."


def _by_value(op: Provider, request: AuthorizationRequest, **changed: str) -> str:
    """BuildRequestObjectByValueRedirectToAuthorizationEndpoint's URL: `request`, and the parameters that
    also stay outside the object (response_type, client_id, scope, redirect_uri: OIDC Core §6.1 and RFC
    6749 §3.1.2.3), each as the query holds it (`changed`: the module's changes made after the object was
    made), in the TreeMap's order. Not state, nonce or response_mode: those are inside alone."""
    outside = {name: request.params[name] for name in ("response_type", "client_id", "scope", "redirect_uri")}
    params = {**outside, **changed, "request": _unsigned_request_object(request)}
    return authorization_url(op, params, sorted(params))


def test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(op, rp, person):
    """The suite's unsigned object by value, its state, nonce and response_mode inside alone. The static
    client allows unsigned request objects (register_rp: as a tester configures the plan's static client;
    citylogin refuses them from an app an operator added without it); the dynamic variant's client, as
    the suite registers it, names no request_object_signing_alg. The object's parameters are taken,
    and the flow passes (the state and, in the Form Post plan, form_post come from inside the object)."""
    check_client_auth_supported(op, "client_secret_basic")
    # skipTestIfNoneUnsupported: not skipped
    assert "none" in op.metadata["request_object_signing_alg_values_supported"]
    request = authorization_request(rp)
    flow = completed_flow(op, rp, request, person.go(_by_value(op, request)))
    assert flow.callback.get("error") != "request_not_supported"           # else skipped (supported: not skipped)
    assert op.metadata["request_parameter_supported"] is True              # CheckDiscEndpointRequestParameterSupported


def test_oidcc_claims_essential(op, rp, person):
    flow = code_flow(op, rp, person, claims=json.dumps({"userinfo": {"name": {"essential": True}}}))
    returned = check_userinfo(userinfo(op, flow.tokens["access_token"]), flow.id_token)
    assert "name" not in flow.id_token                               # EnsureIdTokenDoesNotContainName
    check_standard_claims(returned)


def test_oidcc_ensure_request_object_with_redirect_uri(op, rp, person):
    """The object holds the registered redirect_uri, the query an unregistered one (AddInvalidRedirectUri-
    ToAuthorizationRequest after the object was made: the redirect URI with "_invalid" appended to its
    path). The object's wins (OIDC Core §6.1, RFC 9101 §6.3), so the flow passes at the registered one,
    as the module allows; an error page would pass too, a request_not_supported at the registered one
    would not (EnsureOPDoesNotUseDefaultRedirectUriInCaseOfInvalidRedirectUri)."""
    check_client_auth_supported(op, "client_secret_basic")
    assert "none" in op.metadata["request_object_signing_alg_values_supported"]
    request = authorization_request(rp)
    visit = person.go(_by_value(op, request, redirect_uri=rp.redirect_uri + "_invalid"))
    flow = completed_flow(op, rp, request, visit)
    assert flow.callback.get("error") is None and visit.callback is not None


def _refresh(op: Provider, rp: RelyingParty, refresh_token: str, **extra: str) -> requests.Response:
    return token_request(op, rp, {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})


def test_oidcc_refresh_token(op, refresh_clients, person):
    rp, other = refresh_clients
    assert "offline_access" in op.metadata["scopes_supported"]    # ...OfflineAccessIfServerSupportsOfflineAccess
    assert "refresh_token" in op.metadata["grant_types_supported"]   # EnsureServerConfigurationSupportsRefreshToken
    scope = "openid offline_access"
    first = code_flow(op, rp, person, scope=scope, prompt="consent")
    next_second(first.id_token["iat"])                                            # WaitForOneSecond
    _refreshed(op, rp, first, _refresh(op, rp, first.tokens["refresh_token"], scope=scope))
    # The second client: its flow (a nonce of 43 characters), its refresh (no scope:
    # RefreshTokenRequestSteps(true)) and userinfo; then its refresh token is refused to the first client
    # (performSecondClientTests: RefreshTokenRequestExpectingErrorSteps).
    second = code_flow(op, other, person, scope=scope, prompt="consent", nonce=random_value(43))
    next_second(second.id_token["iat"])
    refreshed = _refreshed(op, other, second, _refresh(op, other, second.tokens["refresh_token"]))
    check_token_error(_refresh(op, rp, refreshed.get("refresh_token") or second.tokens["refresh_token"]))


def _refreshed(op: Provider, rp: RelyingParty, first: Flow, answer: requests.Response) -> dict[str, Any]:
    """sendRefreshTokenRequestAndCheckIdTokenClaims and requestProtectedResource: the refresh token of
    VSCHARs (EnsureRefreshTokenContainsAllowedCharactersOnly, RFC 6749 A.17), RefreshTokenRequestSteps'
    checks of the answer, and userinfo answering 200 to the refreshed access token (CallProtectedResource,
    EnsureHttpStatusCodeIs200). The answer."""
    assert all(0x20 <= ord(c) <= 0x7e for c in first.tokens["refresh_token"]), \
        "EnsureRefreshTokenContainsAllowedCharactersOnly"
    assert answer.status_code == 200, ("CheckTokenEndpointHttpStatus200", answer.status_code, answer.text[:300])
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
    answer = userinfo(op, refreshed["access_token"])
    assert answer.status_code == 200, ("EnsureHttpStatusCodeIs200", answer.status_code, answer.text[:300])
    return refreshed


def test_oidcc_ensure_request_with_valid_pkce_succeeds(op, rp, person):
    # The plan's one module that sends PKCE (SetupPkceAndAddToAuthorizationRequest, S256), and the
    # verifier at the token endpoint (AddCodeVerifierToTokenEndpointRequest).
    flow = code_flow(op, rp, person, pkce=True)
    assert flow.request.params["code_challenge_method"] == "S256"
    assert flow.request.verifier is not None and 43 <= len(flow.request.verifier) <= 128

