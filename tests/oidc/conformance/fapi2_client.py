"""The FAPI 2.0 client that the OpenID Foundation's conformance suite plays against an OP in its FAPI 2.0
Security Profile plan (fapi2-security-profile-final-test-plan with plain_fapi, private_key_jwt, DPoP,
openid_connect, unsigned requests, plain responses), written again for citylogin's own tests
(docs/security/test-plans.md): two statically registered confidential clients with keys of their own,
the suite's requests as it builds them (PAR with a client assertion, PKCE S256, DPoP proofs that take
up the server's nonces), and the suite's checks ("conditions") as named functions that assert. Each
check names the condition it stands for, so a failure reads like the suite's log.

The person's part is relying_party's: the browser is sent to the authorization endpoint with the
request_uri and comes back to the app's server (browser_person.py)."""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import jwt
import requests
from requests.structures import CaseInsensitiveDict
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from relying_parties import service as apps
from relying_parties.models import OidcClient
from oidc.registration.client_keys import public_jwks
from tests.oidc.conformance.browser_person import Callback, Person, Visit
from tests.oidc.conformance.relying_party import (ERROR_CALLBACK_PARAMETERS, ID_TOKEN_CLAIMS, SKEW, VSCHAR, Provider,
                                                  at_hash, check_error_text, check_standard_claims, shannon_bits)

TIMEOUT = 10
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# FAPI2CheckDiscEndpointIdTokenSigningAlgValuesSupported.FAPI2_ALLOWED_ALGS: what FAPI 2.0 §5.4 lets sign.
FAPI2_ALGORITHMS = frozenset({"PS256", "ES256", "EdDSA", "Ed25519"})
# The clients' configured scope (the suite's client.scope): openid for OpenID Connect, email for a second
# scope (ensure-other-scope-order reverses it), offline_access so that a refresh token is issued (the
# refresh-token module is skipped without one).
SCOPE = "openid email offline_access"
REDIRECT_QUERY = "?dummy1=lorem&dummy2=ipsum"   # AddRedirectUriQuerySuffix: the second client's redirect URI
# AbstractBuildRequestObjectRedirectToAuthorizationEndpoint.REQUIRED_DUPLICATES: sent beside a request_uri.
REQUIRED_DUPLICATES = ("response_type", "client_id", "scope", "redirect_uri")
ALPHANUMERIC = string.ascii_letters + string.digits


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def random_alphanumeric(length: int) -> str:
    """RandomStringUtils.secure().nextAlphanumeric(length)."""
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def random_value(length: int) -> str:
    """CreateRandomStateValue / CreateRandomNonceValue: alphanumeric, ending in "-._~" past 10 characters."""
    if length > 10:
        return random_alphanumeric(length - 4) + "-._~"
    return random_alphanumeric(length)


# --- keys ----------------------------------------------------------------------------------------

def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: the SHA-256 of the key's required members (keyIDFromThumbprint)."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True)
class SigningKey:
    """A private key of the tester's, with the JWK members the suite's keys carry (kid, alg, use)."""

    private: Any
    alg: str

    @property
    def private_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = algorithm.to_jwk(self.private, as_dict=True)
        return {**jwk, "kid": thumbprint(jwk), "alg": self.alg, "use": "sig"}

    @property
    def public_jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        jwk: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": thumbprint(jwk), "alg": self.alg, "use": "sig"}

    @property
    def registered_jwk(self) -> dict[str, Any]:
        """The public key as its app registers it: the key, its kid and use; no alg, so that which
        algorithms count is the OP's rule, not the key's."""
        return {name: value for name, value in self.public_jwk.items() if name != "alg"}

    @property
    def kid(self) -> str:
        return str(self.public_jwk["kid"])


def new_key(alg: str) -> SigningKey:
    """AbstractGenerateKey.createJwkForAlg: RSA 2048 for PS256, P-256 for ES256."""
    if alg == "PS256":
        return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), alg)
    if alg == "ES256":
        return SigningKey(ec.generate_private_key(ec.SECP256R1()), alg)
    raise ValueError(alg)


def compact_jws(header: dict[str, Any], claims: dict[str, Any], key: Any, alg: str) -> str:
    """A JWS of exactly `header` and `claims` (the suite builds both member by member), signed by `alg`."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    algorithm = jwt.get_algorithm_by_name(alg)
    return f"{signing_input}.{b64url(algorithm.sign(signing_input.encode(), algorithm.prepare_key(key)))}"


# --- the clients ----------------------------------------------------------------------------------

@dataclass
class FapiClient:
    """One of the suite's two static clients (client and client2 of its configuration) and what the
    module keeps of it: its DPoP key once made (GenerateDpopKey) and the server nonces it was handed
    (authorization_server_dpop_nonce, resource_server_dpop_nonce). `clock` is the suite's: the tests
    that move the OP's clock move it too, as the suite's waiting would."""

    op: Provider
    client_id: str
    key: SigningKey
    redirect_uri: str
    scope: str = SCOPE
    clock: Callable[[], float] = time.time
    # The time of its client assertions: the host's, which the OP checks them by (Authlib reads the
    # host's clock, not the OP's injectable one), so the tests that move the OP's clock leave it.
    assertion_clock: Callable[[], float] = time.time
    dpop_key: SigningKey | None = None
    as_nonce: str | None = None
    rs_nonce: str | None = None

    def now(self) -> int:
        return int(self.clock())

    def fresh(self) -> FapiClient:
        """The client as a new module starts it: no DPoP key, no nonces."""
        return FapiClient(op=self.op, client_id=self.client_id, key=self.key, redirect_uri=self.redirect_uri,
                          scope=self.scope, clock=self.clock)

    @property
    def resource_url(self) -> str:
        """The suite's resource.resourceUrl: citylogin's protected resource for an app is userinfo."""
        return str(self.op.metadata["userinfo_endpoint"])

    def dpop(self) -> SigningKey:
        """GenerateDpopKey, once: the first of the server's dpop_signing_alg_values_supported unless it
        lists PS256, the suite's preference."""
        if self.dpop_key is None:
            supported = self.op.metadata.get("dpop_signing_alg_values_supported") or ["PS256"]
            self.dpop_key = new_key("PS256" if "PS256" in supported else supported[0])
        return self.dpop_key


def register_client(op: Provider, redirect_uri: str, key: SigningKey, **options: Any) -> FapiClient:
    """A client registered as an operator registers a FAPI 2.0 app (`citylogin apps add --profile fapi2
    --jwks … --id-token-alg ES256`): confidential, private_key_jwt with its public key, ID tokens by a
    FAPI 2.0 algorithm, held to the profile (PAR, PKCE S256 and DPoP follow from it)."""
    options = {"redirect_uris": (redirect_uri,), "jwks": public_jwks(json.dumps({"keys": [key.registered_jwk]})),
               "id_token_alg": "ES256", "profile": "fapi2", **options}
    added = apps.add_app(op.ctx, name="FAPI 2.0 conformance client", push_url=None, oidc=OidcClient(**options))
    return FapiClient(op=op, client_id=added.app.client_id, key=key, redirect_uri=redirect_uri)


def check_client_configuration(first: FapiClient, second: FapiClient) -> None:
    """validateClientConfiguration for both clients and ValidateClientPrivateKeysAreDifferent:
    ValidateClientJWKsPrivatePart, CheckForKeyIdInClientJWKs, FAPI2CheckKeyAlgInClientJWKs and
    FAPI2FinalEnsureMinimumClientKeyLength."""
    for client in (first, second):
        jwk = client.key.private_jwk
        assert jwk.get("kid") and jwk["alg"] in FAPI2_ALGORITHMS, jwk["alg"]
        if jwk["kty"] == "RSA":
            assert client.key.private.key_size >= 2048
    assert first.key.private_jwk != second.key.private_jwk        # ValidateClientPrivateKeysAreDifferent


# --- the server's configuration, as each module checks it first ----------------------------------

def check_server_configuration(op: Provider) -> None:
    """The module's configure(): CheckServerConfiguration (authorization_endpoint, token_endpoint and
    issuer), FetchServerKeys, CheckForKeyIdInServerJWKs and FAPI2FinalEnsureMinimumServerKeyLength (RSA
    2048 bits, EC 224)."""
    for name in ("authorization_endpoint", "token_endpoint", "issuer"):
        assert isinstance(op.metadata.get(name), str) and op.metadata[name], name
    keys = requests.get(op.metadata["jwks_uri"], timeout=TIMEOUT).json()["keys"]
    for key in keys:
        assert key.get("kid"), key
        if key["kty"] == "RSA":
            assert len(base64.urlsafe_b64decode(key["n"] + "==")) * 8 >= 2048, key["kid"]
        elif key["kty"] == "EC":
            assert {"P-256": 256, "P-384": 384, "P-521": 521}[key["crv"]] >= 224, key["kid"]


# --- DPoP proofs ----------------------------------------------------------------------------------

HeaderChange = Callable[[dict[str, Any]], None]
ClaimsChange = Callable[[dict[str, Any]], None]


def dpop_proof(client: FapiClient, *, htm: str, htu: str, access_token: str | None = None,
               nonce: str | None = None, header_change: HeaderChange | None = None,
               claims_change: ClaimsChange | None = None, signed_change: Callable[[str], str] | None = None,
               sign: Callable[[dict[str, Any], dict[str, Any]], str] | None = None) -> str:
    """CreateDpopProofSteps: CreateDpopHeader (alg, typ dpop+jwt, the public jwk), CreateDpopClaims (a
    20-character jti, iat now), the endpoint's htm and htu, ath for an access token
    (SetDpopAccessTokenHash), the server's nonce if it gave one, SignDpopProof. The negative tests
    change the header or the claims before signing, the proof after, or sign it otherwise."""
    key = client.dpop()
    header: dict[str, Any] = {"alg": key.alg, "typ": "dpop+jwt", "jwk": key.public_jwk}
    claims: dict[str, Any] = {"jti": random_alphanumeric(20), "iat": client.now(), "htm": htm, "htu": htu}
    if access_token is not None:
        claims["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
    if nonce is not None:
        claims["nonce"] = nonce
    if header_change:
        header_change(header)
    if claims_change:
        claims_change(claims)
    proof = sign(header, claims) if sign else compact_jws(header, claims, key.private, str(header.get("alg", key.alg)))
    return signed_change(proof) if signed_change else proof


def dpop_nonce_of(answer: requests.Response) -> str | None:
    """DpopNonceResponseHeader: the one DPoP-Nonce of a response, of NQCHARs (RFC 9449 §8.1)."""
    nonce = answer.headers.get("DPoP-Nonce")
    if nonce is not None:
        assert nonce and all(c == "!" or "#" <= c <= "[" or "]" <= c <= "~" for c in nonce), nonce
        assert "," not in nonce, nonce                                  # one header, not two
    return nonce


# --- client assertions ----------------------------------------------------------------------------

def assertion_claims(client: FapiClient, *, aud: Any = None) -> dict[str, Any]:
    """CreateClientAuthenticationAssertionClaimsWithIssAudience: iss and sub the client_id, aud the
    issuer, a 20-character jti, nbf and iat now, exp in 60 s."""
    now = int(client.assertion_clock())
    return {"iss": client.client_id, "sub": client.client_id, "aud": client.op.issuer if aud is None else aud,
            "jti": random_alphanumeric(20), "nbf": now, "iat": now, "exp": now + 60}


def sign_assertion(client: FapiClient, claims: dict[str, Any], *, alg: str | None = None,
                   key: SigningKey | None = None) -> str:
    """SignClientAuthenticationAssertion: by the key's own alg, its kid in the header."""
    key = key or client.key
    return compact_jws({"kid": key.kid, "alg": alg or key.alg}, claims, key.private, alg or key.alg)


def client_assertion(client: FapiClient) -> dict[str, str]:
    """CreateJWTClientAuthenticationAssertionWithIssAudAndAddToTokenEndpointRequest: the form members."""
    return {"client_assertion": sign_assertion(client, assertion_claims(client)),
            "client_assertion_type": ASSERTION_TYPE}


ClientAuth = Callable[[FapiClient], dict[str, str]]


# --- the authorization request --------------------------------------------------------------------

@dataclass
class AuthorizationRequest:
    """The suite's authorization_endpoint_request, the PKCE verifier it keeps, what it pushed
    (pushed_authorization_request_form_parameters, without the client's credentials) and the request_uri
    it got back."""

    params: dict[str, str]
    verifier: str | None = None
    pushed: dict[str, str] = field(default_factory=dict)
    request_uri: str | None = None

    @property
    def state(self) -> str | None:
        """The state the request stands for: the pushed one's, once pushed."""
        return (self.pushed if self.pushed else self.params).get("state")

    @property
    def nonce(self) -> str | None:
        return (self.pushed if self.pushed else self.params).get("nonce")

    @property
    def redirect_uri(self) -> str:
        return self.params["redirect_uri"]


def code_verifier() -> str:
    """CreateRandomCodeVerifier: 128 characters of RFC 7636's unreserved set."""
    return "".join(secrets.choice(ALPHANUMERIC + "-._~") for _ in range(128))


def authorization_request(client: FapiClient, *, state_length: int | None = 10, nonce_length: int | None = 10,
                          pkce: bool = True, response_type: str = "code",
                          redirect_uri: str | None = None) -> AuthorizationRequest:
    """CreateAuthorizationRequestSteps: CreateAuthorizationEndpointRequestFromClientInformation (client_id,
    redirect_uri, scope), a random state (CreateRandomStateValue, None: none) and nonce
    (CreateRandomNonceValue, None: none), response_type, and PKCE S256
    (SetupPkceAndAddToAuthorizationRequest)."""
    params = {"client_id": client.client_id, "redirect_uri": redirect_uri or client.redirect_uri,
              "scope": client.scope}
    if state_length is not None:
        params["state"] = random_value(state_length)
    if nonce_length is not None:
        params["nonce"] = random_value(nonce_length)
    params["response_type"] = response_type
    verifier = None
    if pkce:
        verifier = code_verifier()
        params["code_challenge"] = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
        params["code_challenge_method"] = "S256"
    return AuthorizationRequest(params=params, verifier=verifier)


def push(client: FapiClient, request: AuthorizationRequest, *, dpop: bool = False,
         auth: ClientAuth = client_assertion, method: str = "POST", proof_change: ClaimsChange | None = None,
         without: tuple[str, ...] = (), extra: dict[str, str] | None = None) -> requests.Response:
    """BuildUnsignedPAREndpointRequest and callParEndpointAndStopOnFailure: the request's parameters (but
    those `without`, and with `extra`) with the client's assertion, form-encoded to the PAR endpoint; with
    a DPoP proof (useDpopAuthCodeBinding), made again with the server's nonce once if it asks for one
    (CallPAREndpointAllowingDpopNonceError)."""
    endpoint = client.op.metadata["pushed_authorization_request_endpoint"]
    request.pushed = {name: value for name, value in request.params.items() if name not in without}
    request.pushed.update(extra or {})
    for _attempt in range(2):
        headers = {"Accept": "application/json"}
        if dpop:
            headers["DPoP"] = dpop_proof(client, htm=method, htu=endpoint, nonce=client.as_nonce,
                                         claims_change=proof_change)
        answer = requests.request(method, endpoint, data={**request.pushed, **auth(client)}, headers=headers,
                                  timeout=TIMEOUT)
        if not dpop or not _answered_nonce(client, answer):
            break
    return answer


def _answered_nonce(client: FapiClient, answer: requests.Response) -> bool:
    """The AS's nonce taken up (a 2xx's, or a use_dpop_nonce error's: True, the request goes again)."""
    nonce = dpop_nonce_of(answer)
    if 200 <= answer.status_code < 300 and nonce is not None:
        client.as_nonce = nonce
    if answer.status_code == 400 and _json(answer).get("error") == "use_dpop_nonce":
        assert nonce is not None, answer.headers                     # no nonce to retry with
        client.as_nonce = nonce
        return True
    return False


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def check_par_response(answer: requests.Response, request: AuthorizationRequest) -> str:
    """processParResponse: CheckPAREndpointResponse201WithNoError, CheckForRequestUriValue,
    CheckForPARResponseExpiresIn (5 s to a year), EnsureContentTypeJson and EnsureMinimumRequestUriEntropy.
    The request_uri."""
    assert answer.status_code == 201, (answer.status_code, answer.text)
    assert answer.headers["Content-Type"].split(";")[0].strip() == "application/json", answer.headers
    body = answer.json()
    assert "error" not in body, body
    request_uri = body.get("request_uri")
    assert isinstance(request_uri, str) and request_uri and urlsplit(request_uri).scheme, body
    expires_in = body.get("expires_in")
    assert isinstance(expires_in, int) and 5 <= expires_in < 365 * 86400, body
    assert shannon_bits(request_uri) >= 96, request_uri
    request.request_uri = request_uri
    return request_uri


def check_par_error(answer: requests.Response, allowed: set[str], *, statuses: tuple[int, ...] = (400,)) -> None:
    """AbstractEnsureSpecifiedErrorFromPushedAuthorizationEndpointResponse (EnsurePARInvalidRequestError and
    its kind): a 400 with an error of `allowed` (CheckErrorFromParEndpointResponseError…: with
    EnsureHttpStatusCodeIs400or401, `statuses` 400 and 401), JSON, its texts of RFC 6749's characters."""
    assert answer.status_code in statuses, (answer.status_code, answer.text)
    assert answer.headers["Content-Type"].split(";")[0].strip() == "application/json", answer.headers
    body = answer.json()
    assert body.get("error") in allowed, body
    check_error_text(body)


def authorize_url(client: FapiClient, request: AuthorizationRequest, *, duplicates: bool = True,
                  reverse: bool = False) -> str:
    """BuildRequestObjectByReferenceRedirectToAuthorizationEndpoint (…ReorderedParams: `reverse`,
    …WithoutDuplicates: not `duplicates`): the request_uri, and beside it the parameters OAuth requires
    (response_type, client_id, scope, redirect_uri) and any the pushed request has not or has otherwise,
    sorted by name (reversed: the other way)."""
    assert request.request_uri is not None
    params = {"request_uri": request.request_uri}
    for name, value in request.params.items():
        if not duplicates:
            if name == "client_id":
                params[name] = value
        elif name in REQUIRED_DUPLICATES or request.pushed.get(name) != value:
            params[name] = value
    ordered = sorted(params.items(), reverse=reverse)
    return f"{client.op.metadata['authorization_endpoint']}?{urlencode(ordered, quote_via=quote)}"


def plain_authorize_url(client: FapiClient, request: AuthorizationRequest) -> str:
    """BuildPlainRedirectToAuthorizationEndpoint: every parameter in the query, no PAR."""
    return f"{client.op.metadata['authorization_endpoint']}?{urlencode(request.params, quote_via=quote)}"


# --- the authorization response -------------------------------------------------------------------

def callback_params(visit: Visit, page_url: str, *, redirect_uri: str | None = None) -> dict[str, str]:
    """What came back to the redirect URI: a GET whose query holds the response, each parameter once,
    with the registered URI's own query parameters (CheckMatchingCallbackParameters); nothing in the
    fragment the browser shows (RejectErrorInUrlFragment, RejectAuthCodeInUrlFragment,
    RejectStateInUrlFragmentForCodeFlow)."""
    callback: Callback | None = visit.callback
    assert callback is not None, f"the browser did not come back to the app ({visit.steps})"
    assert callback.method == "GET", callback
    params = callback.params()
    assert all(len(values) == 1 for values in params.values()), params
    answered = {name: values[0] for name, values in params.items()}
    if redirect_uri is not None:
        expected = urlsplit(redirect_uri)
        assert callback.path == expected.path, (callback.path, redirect_uri)
        for name, values in parse_qs(expected.query).items():
            assert answered.get(name) == values[0], (name, answered)     # CheckMatchingCallbackParameters
    fragment = parse_qs(urlsplit(page_url).fragment)
    assert not {"code", "error", "state"} & set(fragment), page_url
    return answered


def check_authorization_response(op: Provider, request: AuthorizationRequest, params: dict[str, str]) -> str:
    """onAuthorizationCallbackResponse: CheckIfAuthorizationEndpointError, CheckStateInAuthorizationResponse,
    RequireIssInAuthorizationResponse, EnsureMinimumAuthorizationCodeLength (128 bits) and
    EnsureMinimumAuthorizationCodeEntropy. The code."""
    assert "error" not in params, params
    check_state(request, params)
    assert params.get("iss") == op.issuer, params
    code = params.get("code")
    assert code, params
    assert len(code.encode()) * 8 >= 128 and shannon_bits(code) > 96, code
    return code


def check_state(request: AuthorizationRequest, params: dict[str, str]) -> None:
    """CheckStateInAuthorizationResponse: the state sent comes back unchanged; none sent, none comes
    back; an error about a request_uri or a request object may leave it out."""
    expected = request.state
    if expected is None:
        assert "state" not in params, params                           # VerifyNoStateInAuthorizationResponse
        return
    if "state" not in params and params.get("error") in ("invalid_request_object", "invalid_request_uri"):
        return
    assert params.get("state") == expected, (params, expected)


def check_authorization_error(op: Provider, request: AuthorizationRequest, params: dict[str, str], *,
                              allowed: set[str]) -> None:
    """The error modules' checks of an error response: CheckStateInAuthorizationResponse,
    EnsureErrorFromAuthorizationEndpointResponse, the module's error (EnsureInvalidRequestError and its
    kind: one of `allowed`), no code (RejectAuthCodeInUrlQuery); iss and the error's texts as the generic
    checks have them. CheckForUnexpectedParametersInErrorResponseFromAuthorizationEndpoint is a warning:
    the registered URI's own parameters are allowed."""
    check_state(request, params)
    assert "error" in params, params
    assert params["error"] in allowed, (params, allowed)
    assert "code" not in params, params
    assert params.get("iss") == op.issuer, params
    check_error_text(params)
    registered = set(parse_qs(urlsplit(request.redirect_uri).query))
    assert set(params) <= ERROR_CALLBACK_PARAMETERS | registered, params


# --- the token endpoint --------------------------------------------------------------------------

@dataclass
class Tokens:
    """A token response's tokens as the suite keeps them: the access token and its type, the refresh
    token, the ID token's claims."""

    access_token: str
    token_type: str
    refresh_token: str | None
    id_token: str | None
    claims: dict[str, Any] = field(default_factory=dict)


def code_form(request: AuthorizationRequest, code: str, *, verifier: str | None = "") -> dict[str, str]:
    """CreateTokenEndpointRequestForAuthorizationCodeGrant with AddCodeVerifierToTokenEndpointRequest
    (`verifier` "": the request's own; None: none)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": request.redirect_uri}
    chosen = request.verifier if verifier == "" else verifier
    if chosen is not None:
        form["code_verifier"] = chosen
    return form


def token_request(client: FapiClient, form: dict[str, str], *, auth: ClientAuth | None = client_assertion,
                  dpop: bool = True, proof_change: ClaimsChange | None = None) -> requests.Response:
    """callSenderConstrainedTokenEndpoint: the form with the client's authentication made again for each
    attempt, and a DPoP proof (CreateDpopProofSteps for the token endpoint), sent again once with the
    server's nonce if it asks for one (CallTokenEndpointAllowingDpopNonceErrorAndReturnFullResponse)."""
    endpoint = client.op.metadata["token_endpoint"]
    for _attempt in range(2):
        headers = {"Accept": "application/json"}
        if dpop:
            headers["DPoP"] = dpop_proof(client, htm="POST", htu=endpoint, nonce=client.as_nonce,
                                         claims_change=proof_change)
        body = {**form, **(auth(client) if auth else {})}
        answer = requests.post(endpoint, data=body, headers=headers, timeout=TIMEOUT)
        if not dpop or not _answered_nonce(client, answer):
            break
    return answer


def check_token_response(client: FapiClient, answer: requests.Response, *,
                         request: AuthorizationRequest | None = None) -> Tokens:
    """processTokenEndpointResponse: CheckTokenEndpointHttpStatus200, no error, CheckForAccessTokenValue
    (access_token and token_type), ValidateExpiresIn, EnsureMinimumAccessTokenLength and …Entropy (128
    bits), EnsureMinimumRefreshTokenLength and …Entropy for a refresh token, the ID token
    (ExtractIdTokenFromTokenResponse, PerformStandardIdTokenChecks, EnsureIdTokenContainsKid,
    FAPI2ValidateIdTokenSigningAlg, ValidateAtHash/CHash/SHash where present)."""
    assert answer.status_code == 200, (answer.status_code, answer.text)
    body = answer.json()
    assert "error" not in body, body
    access_token, token_type = body.get("access_token"), body.get("token_type")
    assert isinstance(access_token, str) and access_token and isinstance(token_type, str) and token_type, body
    expires_in = body.get("expires_in")
    if expires_in is not None:
        assert isinstance(expires_in, int) and not isinstance(expires_in, bool) and 0 < expires_in <= 31536000, body
    assert len(access_token.encode()) * 8 >= 128 and shannon_bits(access_token) > 96, access_token
    refresh_token = body.get("refresh_token")
    if refresh_token is not None:
        assert len(refresh_token.encode()) * 8 >= 128 and shannon_bits(refresh_token) > 96, refresh_token
    id_token = body.get("id_token")
    assert isinstance(id_token, str), body
    tokens = Tokens(access_token=access_token, token_type=token_type, refresh_token=refresh_token, id_token=id_token)
    tokens.claims = check_id_token(client, id_token, access_token=access_token,
                                   nonce=request.nonce if request else None, check_nonce=request is not None,
                                   state=request.state if request else None)
    return tokens


def check_id_token(client: FapiClient, id_token: str, *, access_token: str | None, nonce: str | None,
                   check_nonce: bool = True, state: str | None = None) -> dict[str, Any]:
    """PerformStandardIdTokenChecks (ValidateIdToken, ValidateIdTokenStandardClaims, ValidateIdTokenNonce,
    ValidateIdTokenSignature, CheckForSubjectInIdToken, EnsureIdTokenUpdatedAtValid), EnsureIdTokenContainsKid,
    FAPI2ValidateIdTokenSigningAlg, and the hashes present (ValidateAtHash, ValidateSHash)."""
    op = client.op
    header = jwt.get_unverified_header(id_token)
    assert header.get("kid"), header                                             # EnsureIdTokenContainsKid
    assert header["alg"] in FAPI2_ALGORITHMS, header                             # FAPI2ValidateIdTokenSigningAlg
    keys = {key["kid"]: key for key in requests.get(op.metadata["jwks_uri"], timeout=TIMEOUT).json()["keys"]}
    assert header["kid"] in keys, (header, list(keys))
    key = jwt.PyJWK(keys[header["kid"]], algorithm=header["alg"])
    claims: dict[str, Any] = jwt.decode(id_token, key.key, algorithms=[header["alg"]], audience=client.client_id,
                                        issuer=op.issuer, options={"verify_exp": False, "verify_iat": False,
                                                                   "verify_nbf": False})
    now = client.clock()
    assert now - SKEW <= claims["exp"] <= now + 50 * 365 * 86400, claims
    assert now - SKEW <= claims["iat"] <= now + SKEW, claims
    if "auth_time" in claims:
        assert now - 365 * 86400 <= claims["auth_time"] <= now + SKEW, claims
    assert claims.get("acr", "x") != "", claims
    assert isinstance(claims.get("sub"), str) and claims["sub"], claims          # CheckForSubjectInIdToken
    if "updated_at" in claims:
        assert isinstance(claims["updated_at"], (int, float)), claims
    check_standard_claims({k: v for k, v in claims.items() if k not in ID_TOKEN_CLAIMS | {"sub"}})
    if check_nonce:
        assert claims.get("nonce") == nonce, (claims, nonce)                     # ValidateIdTokenNonce
    if "at_hash" in claims and access_token is not None:
        assert claims["at_hash"] == at_hash(access_token, header["alg"]), claims
    if "s_hash" in claims and state is not None:
        assert claims["s_hash"] == at_hash(state, header["alg"]), claims
    return claims


def check_token_error(answer: requests.Response, allowed: set[str], *, allow_401_for_invalid_client: bool = False,
                      status: int | None = 400) -> None:
    """The token endpoint's refusal: CheckTokenEndpointHttpStatus400 (…Is400Allowing401ForInvalidClientError),
    CheckTokenEndpointReturnedJsonContentType, the module's error (one of `allowed`),
    ValidateErrorFromTokenEndpointResponseError, ValidateErrorDescription… and ValidateErrorUri…."""
    body = _json(answer)
    if status is not None:
        invalid_client = allow_401_for_invalid_client and body.get("error") == "invalid_client"
        assert answer.status_code in ({status, 401} if invalid_client else {status}), (answer.status_code, answer.text)
    assert answer.headers.get("Content-Type", "").split(";")[0].strip() == "application/json", answer.headers
    assert body.get("error") in allowed, (body, allowed)
    check_error_text(body)


# --- the protected resource ----------------------------------------------------------------------

def fapi_headers(client: FapiClient) -> dict[str, str]:
    """createDefaultFirstClientResourceHeaders: x-fapi-auth-date, an IPv4 x-fapi-customer-ip-address and a
    random x-fapi-interaction-id (CreateRandomFAPIInteractionId)."""
    return {"x-fapi-auth-date": formatdate(client.clock(), usegmt=True),
            "x-fapi-customer-ip-address": "198.51.100.119", "x-fapi-interaction-id": str(uuid.uuid4())}


def resource_request(client: FapiClient, tokens: Tokens, *, headers: dict[str, str] | None = None,
                     proof: dict[str, Any] | None = None, with_proof: bool = True, retries: int = 2,
                     url: str | None = None, token_type: str | None = None, proof_header: str = "DPoP",
                     raw_headers: list[tuple[str, str]] | None = None) -> requests.Response:
    """requestProtectedResourceUsingDpop: a GET of the resource with `Authorization: <token_type> <token>`
    and a DPoP proof for it (CreateDpopProofSteps for the resource, `proof` its changes), made again with
    the resource server's nonce when it asks for one (CallProtectedResourceAllowingDpopNonceError); a
    nonce on a 2xx is kept for the next proof."""
    url = url or client.resource_url
    answer = None
    for _attempt in range(retries):
        sent = {"Accept": "application/json", **(headers or {}),
                "Authorization": f"{token_type or tokens.token_type} {tokens.access_token}"}
        if with_proof:
            made = dpop_proof(client, htm="GET", htu=url, access_token=tokens.access_token, nonce=client.rs_nonce,
                              **(proof or {}))
            sent[proof_header] = made
        answer = _get(url, sent, raw_headers)
        if not _resource_nonce(client, answer):
            break
    assert answer is not None
    return answer


def _get(url: str, headers: dict[str, str], raw_headers: list[tuple[str, str]] | None) -> requests.Response:
    if raw_headers is None:
        return requests.get(url, headers=headers, timeout=TIMEOUT)
    # A header sent more than once (the suite's MultipleProofs: two DPoP header lines), which requests
    # would fold into one: the request written line by line.
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=TIMEOUT)
    try:
        connection.putrequest("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        for name, value in [*headers.items(), *raw_headers]:
            connection.putheader(name, value)
        connection.endheaders()
        raw = connection.getresponse()
        answer = requests.Response()
        answer.status_code, answer._content = raw.status, raw.read()
        answer.headers = CaseInsensitiveDict(raw.getheaders())
        answer.url = url
        return answer
    finally:
        connection.close()


def _resource_nonce(client: FapiClient, answer: requests.Response) -> bool:
    """The resource server's nonce taken up: a 2xx's for the next proof; a 401's use_dpop_nonce challenge
    (True: the request goes again with it)."""
    nonce = dpop_nonce_of(answer)
    if 200 <= answer.status_code < 300 and nonce is not None:
        client.rs_nonce = nonce
    challenge = answer.headers.get("WWW-Authenticate", "")
    if answer.status_code == 401 and challenge.lower().startswith("dpop ") and 'error="use_dpop_nonce"' in challenge:
        assert nonce is not None, answer.headers
        client.rs_nonce = nonce
        return True
    return False


def check_resource_response(answer: requests.Response, client: FapiClient) -> None:
    """requestProtectedResource's checks: EnsureHttpStatusCodeIs200or201 and
    CheckForDateHeaderInResourceResponse (an RFC 1123 date within 5 minutes)."""
    assert answer.status_code in (200, 201), (answer.status_code, answer.text[:300])
    date = answer.headers.get("Date")
    assert date, answer.headers
    assert abs(parsedate_to_datetime(date).timestamp() - client.clock()) <= 5 * 60 + 1, date
    interaction = answer.headers.get("x-fapi-interaction-id")
    if interaction is not None:                                # CheckForFAPIInteractionIdInResourceResponse
        uuid.UUID(interaction)


def token_chars_ok(value: str) -> bool:
    """EnsureAccessTokenContainsAllowedCharactersOnly, EnsureRefreshTokenContainsAllowedCharactersOnly:
    RFC 6749 Appendix A.12 and A.17's VSCHARs."""
    return bool(VSCHAR.fullmatch(value))


def check_resource_refused(answer: requests.Response, statuses: tuple[int, ...] = (400, 401)) -> None:
    """EnsureHttpStatusCodeIs400or401 (…Is4xx with a wider `statuses`)."""
    assert answer.status_code in statuses, (answer.status_code, answer.text[:300])


# --- whole flows ----------------------------------------------------------------------------------

@dataclass
class Flow:
    """One module's authorization for one client: its request, the browser's visit, the response's
    parameters and the tokens."""

    request: AuthorizationRequest
    visit: Visit
    callback: dict[str, str]
    tokens: Tokens


def authorize(client: FapiClient, person: Person, request: AuthorizationRequest, *, dpop: bool = False,
              duplicates: bool = True, reverse: bool = False, until: str = "app", declines: bool = False) -> Visit:
    """performParAuthorizationRequestFlow and performPARRedirectWithRequestUri: the request pushed (with
    a DPoP proof when the module binds the code at PAR), checked (processParResponse), and the browser sent
    to the authorization endpoint with its request_uri, the person through citylogin's pages."""
    check_par_response(push(client, request, dpop=dpop), request)
    return person.go(authorize_url(client, request, duplicates=duplicates, reverse=reverse), until=until,
                     declines=declines)


def code_flow(client: FapiClient, person: Person, *, request: AuthorizationRequest | None = None,
              dpop_at_par: bool = False, duplicates: bool = True, reverse: bool = False,
              first_client: bool = True, resource: bool = True,
              proof_change: ClaimsChange | None = None) -> Flow:
    """A module of AbstractFAPI2SPFinalServerTestModule from its configuration to its end: the server's
    configuration, the pushed request and the browser's authorization, the callback's checks, the code
    redeemed with the client's assertion and a DPoP proof, the token response's and the ID token's checks,
    and the protected resource with the same key (requestProtectedResource: the first client adds the
    x-fapi headers)."""
    check_server_configuration(client.op)
    request = request or authorization_request(client)
    check_par_response(push(client, request, dpop=dpop_at_par, proof_change=proof_change), request)
    visit = person.go(authorize_url(client, request, duplicates=duplicates, reverse=reverse))
    params = callback_params(visit, person.page.url, redirect_uri=request.redirect_uri)
    code = check_authorization_response(client.op, request, params)
    tokens = check_token_response(client, token_request(client, code_form(request, code), proof_change=proof_change),
                                  request=request)
    if resource:
        protected_resource(client, tokens, first_client=first_client, proof_change=proof_change)
    return Flow(request=request, visit=visit, callback=params, tokens=tokens)


def protected_resource(client: FapiClient, tokens: Tokens, *, first_client: bool = True,
                       proof_change: ClaimsChange | None = None) -> requests.Response:
    """requestProtectedResource: the resource with the client's proof, its checks."""
    answer = resource_request(client, tokens, headers=fapi_headers(client) if first_client else None,
                              proof={"claims_change": proof_change} if proof_change else None)
    check_resource_response(answer, client)
    return answer
