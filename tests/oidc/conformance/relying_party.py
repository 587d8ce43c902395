"""The relying party that the OpenID Foundation's conformance suite plays against an OP, written again
for citylogin's own tests (docs/security/test-plans.md): a static client, PKCE S256 in every request (citylogin
requires it of every client), the person's browser played by a registered device as the web UI plays
it, and the suite's checks ("conditions") as named functions that assert. Each check names the
condition it stands for, so a failure reads like the suite's log."""
from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import requests

from apps import service as apps
from apps.models import OidcClient
from citylogin.client import Client
from citylogin.client_keys import sign_challenge
from common.context import AppContext
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import finish_as_device, pkce_pair

REDIRECT = "https://rp.example/callback"
POST_LOGOUT = "https://rp.example/post_logout_redirect"
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
    """A statically registered client (the suite's `static_client` variant)."""

    client_id: str
    client_secret: str
    redirect_uri: str = REDIRECT


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the RP sent to the authorization endpoint, and the PKCE verifier it keeps."""

    params: dict[str, str]
    verifier: str

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


def discovered(url: str) -> dict[str, Any]:
    answer = requests.get(url + "/.well-known/openid-configuration", timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    return answer.json()


def register_rp(op: Provider, **options: Any) -> RelyingParty:
    """A client registered as an operator would (`citylogin apps add`), with the suite's redirect URI."""
    options.setdefault("redirect_uris", (REDIRECT,))
    credentials = apps.add_app(op.ctx, name="Conformance RP", push_url=None, oidc=OidcClient(**options))
    return RelyingParty(client_id=credentials.app.client_id, client_secret=credentials.client_secret)


def signed_in_person(op: Provider) -> Client:
    """A person with a registered device, signed in to citylogin on it (the suite's test user, logged in)."""
    device = register_device(op.url)
    device.login(PASSWORD)
    return device


# --- the authorization request -------------------------------------------------------------------

def random_value(length: int = 10) -> str:
    """A random state or nonce of `length` characters, as the suite makes them (CreateRandomStateValue)."""
    return secrets.token_urlsafe(length)[:length]


def authorization_request(rp: RelyingParty, *, scope: str = "openid", state_length: int = 10,
                          with_nonce: bool = True, **extra: str) -> AuthorizationRequest:
    """The suite's request (CreateAuthorizationEndpointRequestFromClientInformation, random state and
    nonce, response_type=code) with PKCE S256 (SetupPkceAndAddToAuthorizationRequest)."""
    verifier, challenge = pkce_pair()
    params = {"client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": scope,
              "state": random_value(state_length), "response_type": "code", "code_challenge": challenge,
              "code_challenge_method": "S256"}
    if with_nonce:
        params["nonce"] = random_value()
    params.update(extra)
    return AuthorizationRequest(params=params, verifier=verifier)


def with_params(request: AuthorizationRequest, **params: str) -> AuthorizationRequest:
    """The request with `params` added (or changed)."""
    return AuthorizationRequest(params={**request.params, **params}, verifier=request.verifier)


def send_to_authorization_endpoint(op: Provider, request: AuthorizationRequest, *, method: str = "GET",
                                   order: list[str] | None = None) -> requests.Response:
    """The browser's request at the authorization endpoint (BuildPlainRedirectToAuthorizationEndpoint),
    its parameters in `order` when given; the answer is not followed."""
    names = order or list(request.params)
    pairs = [(name, request.params[name]) for name in names]
    endpoint = op.metadata["authorization_endpoint"]
    if method == "POST":
        return requests.post(endpoint, data=pairs, allow_redirects=False, timeout=TIMEOUT)
    return requests.get(f"{endpoint}?{urlencode(pairs)}", allow_redirects=False, timeout=TIMEOUT)


def sign_in_page(op: Provider, answer: requests.Response) -> str:
    """The request id the authorization endpoint sends the browser to citylogin's sign-in page with."""
    assert answer.status_code == 303, (answer.status_code, answer.text[:300])
    location = answer.headers["Location"]
    prefix = f"{op.issuer}/#oidc="
    assert location.startswith(prefix), location
    return location.removeprefix(prefix)


def callback_of(rp: RelyingParty, location: str) -> dict[str, str]:
    """The parameters the OP sent back to the RP (CheckMatchingCallbackParameters: to the registered
    redirect URI, in the query for the code flow, each once)."""
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == rp.redirect_uri, location
    assert not parts.fragment, location
    query = parse_qs(parts.query, keep_blank_values=True)
    assert all(len(values) == 1 for values in query.values()), query
    return {name: values[0] for name, values in query.items()}


def browser_signs_in(op: Provider, rp: RelyingParty, device: Client, request: AuthorizationRequest, *,
                     method: str = "GET", order: list[str] | None = None) -> dict[str, str]:
    """The authorization request, the sign-in page's request finished by the device's session, the
    callback's parameters."""
    request_id = sign_in_page(op, send_to_authorization_endpoint(op, request, method=method, order=order))
    return callback_of(rp, finish_as_device(device, request_id))


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


def check_error_page(answer: requests.Response) -> None:
    """An error shown to the person, never a redirect (ExpectRedirectUriErrorPage and its kind)."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:300])
    assert "Location" not in answer.headers, answer.headers


# --- the token endpoint --------------------------------------------------------------------------

def token_request(op: Provider, rp: RelyingParty, form: dict[str, str], *,
                  auth: str = "client_secret_basic") -> requests.Response:
    """A POST to the token endpoint with the client's secret in the header (AddBasicAuthClientSecret...)
    or in the body (AddFormBasedClientSecret...)."""
    endpoint = op.metadata["token_endpoint"]
    if auth == "client_secret_post":
        body = {**form, "client_id": rp.client_id, "client_secret": rp.client_secret}
        return requests.post(endpoint, data=body, timeout=TIMEOUT)
    return requests.post(endpoint, data=form, auth=(rp.client_id, rp.client_secret), timeout=TIMEOUT)


def redeem(op: Provider, rp: RelyingParty, request: AuthorizationRequest, code: str, *,
           auth: str = "client_secret_basic") -> requests.Response:
    """CreateTokenEndpointRequestForAuthorizationCodeGrant with the PKCE verifier (RFC 7636 §4.5)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": request.params["redirect_uri"],
            "code_verifier": request.verifier}
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

def code_flow(op: Provider, rp: RelyingParty, device: Client, *, auth: str = "client_secret_basic",
              method: str = "GET", order: list[str] | None = None, scope: str = "openid",
              **extra: str) -> Flow:
    """The suite's happy flow (oidcc-server): authorize, the person's device finishes it, the checks of
    the callback, the code redeemed, the token response's and the ID token's checks."""
    request = with_params(authorization_request(rp, scope=scope), **extra)
    callback = browser_signs_in(op, rp, device, request, method=method, order=order)
    code = check_authorization_response(op, request, callback)
    tokens = check_token_response(redeem(op, rp, request, code, auth=auth))
    return Flow(request=request, callback=callback, tokens=tokens, id_token=check_id_token(op, rp, request, tokens))


def next_second(after: int) -> None:
    """Wait until the clock's whole second is past `after` (an iat or auth_time), so that a token made
    now carries a later one: the suite's WaitForOneSecond, without guessing how long is enough."""
    while int(time.time()) <= after:
        time.sleep(0.05)


def single_sign_on(op: Provider, device: Client, request_id: str) -> requests.Response:
    """What the web UI tries first for a waiting request (oidc.js signInWithDevice): the browser's device
    key signs a fresh challenge, and the device's live session, if it has one, finishes the request."""
    challenge = requests.post(op.url + "/login/challenge", json={}, timeout=TIMEOUT).json()["challenge"]
    key_file = device.require_key_file()
    body = {"request": request_id, "client_cert": key_file.client_cert_b64(), "challenge": challenge,
            "signature": sign_challenge(key_file.private_key(), challenge, purpose="citylogin-sso:")}
    return requests.post(op.url + "/oidc/authorize/device", json=body, timeout=TIMEOUT)
