"""The relying party that the OpenID Foundation's conformance suite plays against an OP, written again
for citylogin's own tests (docs/security/test-plans.md): a static confidential client (client_secret_basic,
or client_secret_post), the suite's own requests (no PKCE but in the one module that sends it), the
person's browser real Chromium through citylogin's web UI (browser_person.py), and the suite's checks
("conditions") as named functions that assert. Each check names the condition it stands for, so a
failure reads like the suite's log."""
from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.oidc.conformance.browser_person import CALLBACK_PATH, POST_LOGOUT_PATH, Person, Visit
from tests.support.oidc import pkce_pair
from common.runtime.context import AppContext

TIMEOUT = 10
SKEW = 5 * 60  # seconds: the suite's allowance for clocks (ValidateIdToken)
# RFC 6749 §4.1.2.1 and §5.2: what error_description may hold (ValidateErrorDescription...).
ERROR_DESCRIPTION = re.compile(r"[\x09\x0a\x0d\x20-\x21\x23-\x5b\x5d-\x7e]+")
VSCHAR = re.compile(r"[\x20-\x7e]+")  # RFC 6749 Appendix A.12 and A.17: access and refresh tokens
# The claims OpenID Connect Core §5.1 gives a type other than a non-empty string.
BOOLEAN_CLAIMS = {"email_verified", "phone_number_verified"}
NUMBER_CLAIMS = {"updated_at"}
OBJECT_CLAIMS = {"address"}
# OpenID Connect Core §5.4: the claims each scope asks for.
SCOPE_CLAIMS = {
    "profile": {"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username", "profile",
                "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"},
    "email": {"email", "email_verified"},
    "address": {"address"},
    "phone": {"phone_number", "phone_number_verified"},
}
# What an ID token may carry besides the requested scopes' claims (EnsureIdTokenDoesNotContainNonRequestedClaims).
ID_TOKEN_CLAIMS = {"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash",
                   "c_hash", "nbf", "jti", "sid", "s_hash"}
ERROR_CALLBACK_PARAMETERS = {"error", "error_description", "error_uri", "state", "session_state", "iss"}
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"   # RFC 7523 §2.2
USER_INTERFACE_ERRORS = {"interaction_required", "login_required", "account_selection_required", "consent_required"}


@dataclass(frozen=True)
class Provider:
    """The OP under test, as the suite knows it: its address and its discovery document."""

    url: str
    ctx: AppContext
    metadata: dict[str, Any]

    @property
    def issuer(self) -> str:
        return self.metadata["issuer"]


@dataclass(frozen=True)
class RelyingParty:
    """A statically registered client (the suite's `static_client` variant), its redirect URIs on the
    app's server, and the plan's response mode ("default": the query; or "form_post"). A client that
    authenticates with a key (private_key_jwt, dynamic_client.py) has `assertion`: it signs a client
    assertion for an audience."""

    client_id: str
    client_secret: str
    redirect_uri: str
    post_logout_redirect_uri: str
    response_mode: str = "default"
    assertion: Callable[[str], str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the RP sent to the authorization endpoint, and the PKCE verifier it keeps (in the one module
    that sends PKCE)."""

    params: dict[str, str]
    verifier: str | None = None

    @property
    def state(self) -> str | None:
        return self.params.get("state")

    @property
    def nonce(self) -> str | None:
        return self.params.get("nonce")

    @property
    def scope(self) -> str:
        return self.params.get("scope", "")


@dataclass
class Flow:
    """One authorization code flow's results."""

    request: AuthorizationRequest
    callback: dict[str, str]
    tokens: dict[str, Any] = field(default_factory=dict)
    id_token: dict[str, Any] = field(default_factory=dict)
    visit: Visit | None = None


def discovered(url: str) -> dict[str, Any]:
    answer = requests.get(url + "/.well-known/openid-configuration", timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return answer.json()


def register_rp(op: Provider, app_url: str, *, response_mode: str = "default", **options: Any) -> RelyingParty:
    """A client registered as an operator would (`citylogin apps add`): confidential, its redirect URI
    the app's server's (the suite's CreateRedirectUri), and its post-logout one."""
    redirect_uri, post_logout = app_url + CALLBACK_PATH, app_url + POST_LOGOUT_PATH
    options.setdefault("redirect_uris", (redirect_uri,))
    options.setdefault("post_logout_redirect_uris", (post_logout,))
    credentials = apps.add_app(op.ctx, name="Conformance RP", push_url=None, oidc=OidcClient(**options))
    return RelyingParty(client_id=credentials.app.client_id, client_secret=credentials.client_secret,
                        redirect_uri=redirect_uri, post_logout_redirect_uri=post_logout, response_mode=response_mode)


# --- the server's configuration, as each module checks it first ------------------------------------

def check_client_auth_supported(op: Provider, auth: str) -> None:
    """EnsureServerConfigurationSupportsClientSecretBasic (absent means client_secret_basic) and
    EnsureServerConfigurationSupportsClientSecretPost: the client's method is in discovery's
    token_endpoint_auth_methods_supported."""
    methods = op.metadata.get("token_endpoint_auth_methods_supported")
    if methods is None:
        assert auth == "client_secret_basic", "token_endpoint_auth_methods_supported is missing"
        return
    assert isinstance(methods, list) and auth in methods, (auth, methods)


# --- the authorization request -------------------------------------------------------------------

def random_value(length: int = 10) -> str:
    """A random state or nonce of `length` characters, as the suite makes them (CreateRandomStateValue)."""
    return secrets.token_urlsafe(length)[:length]


def authorization_request(rp: RelyingParty, *, scope: str = "openid", state_length: int = 10,
                          with_nonce: bool = True, pkce: bool = False, **extra: str) -> AuthorizationRequest:
    """The suite's request in its order (CreateAuthorizationEndpointRequestFromClientInformation: client_id,
    redirect_uri, scope; a random state and nonce; response_type=code; response_mode=form_post in the
    Form Post plans), with PKCE S256 only when `pkce` (SetupPkceAndAddToAuthorizationRequest)."""
    params = {"client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": scope,
              "state": random_value(state_length)}
    if with_nonce:
        params["nonce"] = random_value()
    params["response_type"] = "code"
    if rp.response_mode == "form_post":
        params["response_mode"] = "form_post"       # SetAuthorizationEndpointRequestResponseModeToFormPost
    verifier = None
    if pkce:
        verifier, challenge = pkce_pair()
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return AuthorizationRequest(params=params, verifier=verifier)


def authorization_url(op: Provider, params: dict[str, str], order: list[str] | None = None) -> str:
    """BuildPlainRedirectToAuthorizationEndpoint: the endpoint with the request in its query."""
    names = order or list(params)
    return f"{op.metadata['authorization_endpoint']}?{urlencode([(name, params[name]) for name in names])}"


def browser_authorizes(op: Provider, person: Person, request: AuthorizationRequest, *, method: str = "GET",
                       order: list[str] | None = None, until: str = "app") -> Visit:
    """The browser sent to the authorization endpoint with the request (by a POST form for `method`
    POST), and the person through citylogin's pages until the browser is back at the app."""
    if method == "POST":
        return person.go(op.metadata["authorization_endpoint"], method="POST", params=list(request.params.items()),
                         until=until)
    return person.go(authorization_url(op, request.params, order), until=until)


def callback_of(rp: RelyingParty, visit: Visit) -> dict[str, str]:
    """The parameters the OP sent back to the RP (CheckMatchingCallbackParameters: at the registered
    redirect URI, each once), by the plan's response mode: in the query (code flow's default), or as a
    POST of a form (CheckCallbackHttpMethodIsPost, CheckCallbackContentTypeIsFormUrlEncoded,
    RejectAuthCodeInUrlQuery, RejectErrorInUrlQuery)."""
    callback = visit.callback
    assert callback is not None, f"the browser did not come back to the app ({visit.steps})"
    assert callback.path == CALLBACK_PATH, callback
    if rp.response_mode == "form_post":
        assert callback.method == "POST", callback
        assert callback.content_type.split(";")[0].strip() == "application/x-www-form-urlencoded", callback
        assert "code" not in callback.query and "error" not in callback.query, callback
    else:
        assert callback.method == "GET", callback
    # CheckMatchingCallbackParameters: the redirect URI's own query comes back as it was sent
    for name, value in parse_qsl(urlsplit(rp.redirect_uri).query, keep_blank_values=True):
        assert callback.query.get(name) == [value], ("CheckMatchingCallbackParameters", name, callback.query)
    params = callback.params()
    assert all(len(values) == 1 for values in params.values()), params
    return {name: values[0] for name, values in params.items()}


def check_no_callback(visit: Visit) -> None:
    """An error shown to the person, never a redirect (ExpectRedirectUriErrorPage and its kind): the
    browser stays at citylogin, on a page that answers with a 4xx status."""
    assert visit.callback is None, visit.callback
    assert visit.status is not None and 400 <= visit.status < 500, visit.status


# --- the authorization response ------------------------------------------------------------------

def shannon_bits(value: str) -> float:
    """The suite's estimate of a value's entropy: Shannon entropy per character times its length."""
    counts = Counter(value)
    per_character = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return per_character * len(value)


def check_authorization_response(op: Provider, request: AuthorizationRequest, callback: dict[str, str]) -> str:
    """onAuthorizationCallbackResponse: iss is the issuer (RFC 9207), no error, the state sent back
    unchanged, a code of at least 128 bits (EnsureMinimumAuthorizationCodeLength) that looks random
    (EnsureMinimumAuthorizationCodeEntropy). The code."""
    assert callback.get("iss") == op.issuer, callback
    assert "error" not in callback, callback
    assert callback.get("state") == request.state, callback
    code = callback.get("code")
    assert code, callback
    assert len(code.encode()) * 8 >= 128 and shannon_bits(code) > 96, code
    return code


def check_error_response(op: Provider, request: AuthorizationRequest, callback: dict[str, str], *,
                         allowed: set[str]) -> None:
    """performGenericAuthorizationEndpointErrorResponseValidation and the module's own error check: the
    state sent back, iss, an error of `allowed`, no code, nothing unexpected, a valid description."""
    assert callback.get("error") in allowed, callback
    assert callback.get("state") == request.state, callback
    assert callback.get("iss") == op.issuer, callback
    assert "code" not in callback, callback
    assert set(callback) <= ERROR_CALLBACK_PARAMETERS, callback
    check_error_text(callback)


def check_error_text(body: dict[str, Any]) -> None:
    """ValidateErrorFrom...ResponseError and ValidateErrorDescription...: the RFC 6749 character sets."""
    assert re.fullmatch(r"[\x20-\x21\x23-\x5b\x5d-\x7e]+", body["error"]), body
    description = body.get("error_description")
    assert description is None or ERROR_DESCRIPTION.fullmatch(description), body
    assert "\n" not in (description or "") and "\t" not in (description or ""), body  # the suite warns on CRLFTAB
    error_uri = body.get("error_uri")
    assert error_uri is None or re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", error_uri), body


# --- the token endpoint --------------------------------------------------------------------------

def token_request(op: Provider, rp: RelyingParty, form: dict[str, str], *,
                  auth: str = "client_secret_basic") -> requests.Response:
    """A POST to the token endpoint with the client's secret in the header (AddBasicAuthClientSecret...)
    or in the body (AddFormBasedClientSecret...), or a client assertion addressed to the endpoint
    (CreateJWTClientAuthenticationAssertionAndAddToTokenEndpointRequest)."""
    endpoint = op.metadata["token_endpoint"]
    if auth == "private_key_jwt":
        assert rp.assertion is not None, "a private_key_jwt client has keys"
        body = {**form, "client_assertion": rp.assertion(endpoint), "client_assertion_type": CLIENT_ASSERTION_TYPE}
        return requests.post(endpoint, data=body, timeout=TIMEOUT)
    if auth == "client_secret_post":
        body = {**form, "client_id": rp.client_id, "client_secret": rp.client_secret}
        return requests.post(endpoint, data=body, timeout=TIMEOUT)
    return requests.post(endpoint, data=form, auth=(rp.client_id, rp.client_secret), timeout=TIMEOUT)


def redeem(op: Provider, rp: RelyingParty, request: AuthorizationRequest, code: str, *,
           auth: str = "client_secret_basic") -> requests.Response:
    """CreateTokenEndpointRequestForAuthorizationCodeGrant, with the PKCE verifier when the request sent
    a challenge (AddCodeVerifierToTokenEndpointRequest, RFC 7636 §4.5)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": request.params["redirect_uri"]}
    if request.verifier is not None:
        form["code_verifier"] = request.verifier
    return token_request(op, rp, form, auth=auth)


def check_token_response(answer: requests.Response) -> dict[str, Any]:
    """CheckTokenEndpointHttpStatus200, its JSON and cache headers, a Bearer access token of VSCHARs
    with a positive expires_in (ValidateExpiresIn), and an ID token (OIDCC §3.1.3.3)."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].split(";")[0].strip() == "application/json", answer.headers
    assert "no-store" in [part.strip() for part in answer.headers.get("Cache-Control", "").split(",")]
    tokens = answer.json()
    assert tokens["token_type"].lower() == "bearer", tokens
    assert VSCHAR.fullmatch(tokens["access_token"]) and shannon_bits(tokens["access_token"]) > 96, tokens
    expires_in = tokens.get("expires_in")
    assert isinstance(expires_in, int) and not isinstance(expires_in, bool) and expires_in > 0, tokens
    assert isinstance(tokens.get("id_token"), str), tokens
    return tokens


def check_token_error(answer: requests.Response, error: str = "invalid_grant") -> None:
    """CheckTokenEndpointHttpStatus400, CheckTokenEndpointReturnedJsonContentType and the error's code
    and texts (RFC 6749 §5.2)."""
    assert answer.status_code == 400, (answer.status_code, answer.text)
    assert answer.headers["Content-Type"].split(";")[0].strip() == "application/json", answer.headers
    body = answer.json()
    assert body.get("error") == error, body
    check_error_text(body)


# --- the ID token ----------------------------------------------------------------------------------

def id_token_claims(op: Provider, rp: RelyingParty, id_token: str) -> dict[str, Any]:
    """ValidateIdTokenSignature with the OP's JWKS (CheckForKeyIdInServerJWKs: found by its kid) and
    ValidateIdToken: iss, aud, exp, iat, auth_time and acr as the suite checks them."""
    header = jwt.get_unverified_header(id_token)
    assert header.get("kid"), header
    keys = {key["kid"]: key for key in requests.get(op.metadata["jwks_uri"], timeout=TIMEOUT).json()["keys"]}
    assert header["kid"] in keys, (header, list(keys))
    assert header["alg"] in op.metadata["id_token_signing_alg_values_supported"], header
    key = jwt.PyJWK(keys[header["kid"]], algorithm=header["alg"])
    claims = jwt.decode(id_token, key.key, algorithms=[header["alg"]], audience=rp.client_id, issuer=op.issuer,
                        options={"verify_exp": False, "verify_iat": False})
    now = time.time()
    assert isinstance(claims.get("sub"), str) and claims["sub"], claims           # CheckForSubjectInIdToken
    assert now - SKEW <= claims["exp"] <= now + 50 * 365 * 86400, claims
    assert now - SKEW <= claims["iat"] <= now + SKEW, claims
    if "auth_time" in claims:
        assert now - 365 * 86400 <= claims["auth_time"] <= now + SKEW, claims
    assert claims.get("acr", "x") != "", claims
    return claims


def at_hash(access_token: str, alg: str) -> str:
    """OpenID Connect Core §3.1.3.6: the left half of the access token's hash by the ID token's alg."""
    digest = hashlib.sha512 if alg == "EdDSA" else {"256": hashlib.sha256, "384": hashlib.sha384,
                                                    "512": hashlib.sha512}[alg[-3:]]
    half = digest(access_token.encode()).digest()
    return base64.urlsafe_b64encode(half[:len(half) // 2]).rstrip(b"=").decode()


def check_id_token(op: Provider, rp: RelyingParty, request: AuthorizationRequest,
                   tokens: dict[str, Any]) -> dict[str, Any]:
    """PerformStandardIdTokenChecks on the token endpoint's ID token, with the at_hash check of
    oidcc-server (ValidateAtHash) and no claim the request did not ask for."""
    claims = id_token_claims(op, rp, tokens["id_token"])
    assert claims.get("nonce") == request.nonce, (claims, request.nonce)          # ValidateIdTokenNonce
    if "at_hash" in claims:
        alg = jwt.get_unverified_header(tokens["id_token"])["alg"]
        assert claims["at_hash"] == at_hash(tokens["access_token"], alg), claims
    check_standard_claims({k: v for k, v in claims.items() if k not in ID_TOKEN_CLAIMS | {"sub"}})
    allowed = ID_TOKEN_CLAIMS.union(*(SCOPE_CLAIMS.get(scope, set()) for scope in request.scope.split()))
    assert set(claims) <= allowed, set(claims) - allowed
    return claims


def check_standard_claims(claims: dict[str, Any]) -> None:
    """ValidateIdTokenStandardClaims / ValidateUserInfoStandardClaims: every standard claim of the type
    OpenID Connect Core §5.1 gives it; a string claim is never empty or "null"."""
    for name, value in claims.items():
        if name in BOOLEAN_CLAIMS:
            assert isinstance(value, bool), (name, value)
        elif name in NUMBER_CLAIMS:
            assert isinstance(value, (int, float)) and not isinstance(value, bool), (name, value)
        elif name in OBJECT_CLAIMS:
            assert isinstance(value, dict), (name, value)
        elif name in set().union(*SCOPE_CLAIMS.values()) | {"sub"}:
            assert isinstance(value, str) and value.strip() and value.lower() != "null", (name, value)


# --- userinfo ------------------------------------------------------------------------------------

def userinfo(op: Provider, access_token: str, *, method: str = "GET", in_body: bool = False) -> requests.Response:
    """CallUserInfoEndpoint: the access token in the Authorization header, or in a POST's form body
    (CallUserInfoEndpointWithBearerTokenInBody, RFC 6750 §2.2)."""
    endpoint = op.metadata["userinfo_endpoint"]
    if in_body:
        return requests.post(endpoint, data={"access_token": access_token}, timeout=TIMEOUT)
    return requests.request(method, endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT)


def check_userinfo(answer: requests.Response, id_token: dict[str, Any]) -> dict[str, Any]:
    """EnsureHttpStatusCodeIs200, EnsureContentTypeJson, ValidateUserInfoStandardClaims,
    EnsureUserInfoContainsSub and VerifyUserInfoAndIdTokenInTokenEndpointSameSub."""
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].split(";")[0].strip() == "application/json", answer.headers
    claims = answer.json()
    check_standard_claims(claims)
    assert claims.get("sub") == id_token["sub"], (claims, id_token["sub"])
    return claims


def scope_claims_returned(claims: dict[str, Any], scope: str) -> None:
    """VerifyScopesReturnedInUserInfoClaims: each requested scope's claims show at userinfo."""
    for name in scope.split():
        if name in SCOPE_CLAIMS:
            assert SCOPE_CLAIMS[name] & set(claims), (name, claims)


# --- whole flows ----------------------------------------------------------------------------------

def code_flow(op: Provider, rp: RelyingParty, person: Person, *, auth: str = "client_secret_basic",
              method: str = "GET", order: list[str] | None = None, scope: str = "openid", pkce: bool = False,
              with_nonce: bool = True, **extra: str) -> Flow:
    """A module of AbstractOIDCCServerTest from its configuration to its end: the client's auth method in
    discovery, the authorization request through the browser and the person, the callback's checks, the
    code redeemed, the token response's and the ID token's checks, and the protected resource (userinfo,
    EnsureHttpStatusCodeIs200)."""
    check_client_auth_supported(op, auth)
    request = authorization_request(rp, scope=scope, pkce=pkce, with_nonce=with_nonce, **extra)
    return completed_flow(op, rp, request, browser_authorizes(op, person, request, method=method, order=order),
                          auth=auth)


def completed_flow(op: Provider, rp: RelyingParty, request: AuthorizationRequest, visit: Visit, *,
                   auth: str = "client_secret_basic") -> Flow:
    """A module's flow once the browser is back at the app with `request`'s answer: the callback's checks,
    the code redeemed, the token response's and the ID token's checks, and the protected resource."""
    callback = callback_of(rp, visit)
    code = check_authorization_response(op, request, callback)
    tokens = check_token_response(redeem(op, rp, request, code, auth=auth))
    flow = Flow(request=request, callback=callback, tokens=tokens, id_token=check_id_token(op, rp, request, tokens),
                visit=visit)
    answer = userinfo(op, tokens["access_token"])                     # requestProtectedResource
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    return flow


def next_second(after: int) -> None:
    """Wait until the clock's whole second is past `after` (an iat or auth_time), so that a token made
    now carries a later one: the suite's WaitForOneSecond, without guessing how long is enough."""
    while int(time.time()) <= after:
        time.sleep(0.05)
