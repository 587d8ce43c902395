"""The conformance suite's dynamic client (its `dynamic_client` variant), written again for citylogin's own
tests (docs/security/test-plans.md): the registration request exactly as OIDCCCreateDynamicClientRegistrationRequest
and its conditions build it, sent to the registration endpoint (RFC 7591) with the initial access token the
suite is configured with; the registration's checks (CallDynamicRegistrationEndpointAndVerifySuccessfulResponse);
the client's RS256 key and its client assertions (private_key_jwt, RFC 7523); the suite's own web server
(`ClientSite`), which serves the client's jwks_uri, logo, policy page and request objects by reference; and
the DELETE that unregisters each client at the module's end (RFC 7592)."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from joserfc import jws
from joserfc.jwk import RSAKey
from PIL import Image

from tests.oidc.conformance.browser_person import CALLBACK_PATH
from tests.oidc.conformance.relying_party import (TIMEOUT, AuthorizationRequest, Provider, RelyingParty,
                                                  check_error_text)

SUPPORT_EMAIL = "certification@oidf.org"       # AbstractCondition.SUPPORT_EMAIL: AddContactsToDynamic...
CLIENT_NAME = "OIDF Conformance Test"           # AddClientNameToDynamicRegistrationRequest, no client_name configured
KEY_SIZE = 2048                                 # AbstractGenerateClientJWKs.DEFAULT_KEY_SIZE
ASSERTION_LIFETIME = 60                         # CreateClientAuthenticationAssertionClaims: exp = iat + 60 s
# The suite's own pages, at its base URL (CreateJwksUri, CreateLogoUri, CreatePolicyUri, CreateTosUri,
# CreateRandomRequestUriWithFragment).
JWKS_PATH = "/client1_jwks"
LOGO_PATH = "/images/openid.png"
POLICY_PATH = "/login.html"
TOS_URI = "https://openid.net"
REQUEST_URI_PATH = "/requesturi/"
# The logo's size: an odd one, so that a test knows the registered image from any other on a page.
LOGO_WIDTH, LOGO_HEIGHT = 61, 37


class KnownFailure(AssertionError):
    """A failure-level condition of the suite's that citylogin fails today for the reason its test's
    `xfail(raises=KnownFailure)` names. Only that check raises it, so any other failed assertion of the
    test still fails the test."""


def alphanumeric(length: int) -> str:
    """RandomStringUtils.secure().nextAlphanumeric(length)."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


class ClientKeys:
    """The client's signing key: GenerateRS256ClientJWKs (RSA 2048, `use` sig, `alg` RS256, no kid) or
    GenerateRS256ClientJWKsWithKeyID (its kid the key's RFC 7638 thumbprint). `rotate` replaces it by a
    new one, as oidcc-refresh-token-rp-key-rotation does at the client's jwks_uri."""

    def __init__(self, *, with_kid: bool = False) -> None:
        self.with_kid = with_kid
        self.key = self._new()

    def _new(self) -> RSAKey:
        key = RSAKey.generate_key(KEY_SIZE, parameters={"use": "sig", "alg": "RS256"})
        if self.with_kid:
            key = RSAKey.import_key({**key.as_dict(private=True), "kid": key.thumbprint()})
        return key

    @property
    def kid(self) -> str | None:
        return self.key.kid

    def rotate(self) -> None:
        self.key = self._new()

    def public_jwks(self) -> dict[str, Any]:
        """client_public_jwks: what the registration's `jwks` holds, and the jwks_uri serves."""
        return {"keys": [self.key.as_dict(private=False)]}

    def sign(self, claims: dict[str, Any]) -> str:
        """AbstractSignJWT: a compact JWS of the claims whose header is the key's alg and kid alone."""
        header = {"alg": "RS256", **({"kid": self.kid} if self.kid else {})}
        return jws.serialize_compact(header, json.dumps(claims), self.key)


def client_assertion(keys: ClientKeys, client_id: str, audience: str) -> str:
    """CreateClientAuthenticationAssertionClaims (iss and sub the client, aud the token endpoint, a random
    jti, nbf = iat, exp 60 s on) and SignClientAuthenticationAssertion."""
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "jti": alphanumeric(20), "nbf": now, "iat": now,
              "exp": now + ASSERTION_LIFETIME}
    return keys.sign(claims)


def png() -> bytes:
    """The logo the suite's server shows (its own, which we do not copy): a small PNG image."""
    image = Image.new("RGB", (LOGO_WIDTH, LOGO_HEIGHT), (0xF7, 0x8C, 0x40))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class ClientSite:
    """The suite's own web server (its test's base URL): the pages an OP fetches or a browser shows
    for the client, each a path answered with its content type. Every GET is counted by path, so a test
    can tell that the OP (or the browser) fetched it."""

    def __init__(self) -> None:
        self._pages: dict[str, tuple[str, Callable[[], bytes]]] = {}
        self._fetched: dict[str, int] = {}
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = urlsplit(self.path).path
                with site._lock:
                    page = site._pages.get(path)
                    site._fetched[path] = site._fetched.get(path, 0) + 1
                if page is None:
                    self.send_error(404)
                    return
                content_type, body = page[0], page[1]()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.serve(LOGO_PATH, "image/png", png())
        self.serve(POLICY_PATH, "text/html; charset=utf-8",
                   b"<!doctype html><title>Policy</title><p>The conformance client's policy.")

    def __enter__(self) -> ClientSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, path: str, content_type: str, body: bytes | Callable[[], bytes]) -> str:
        """Answers GET `path` with `body` (or what the callable gives at each GET); its URL."""
        with self._lock:
            self._pages[path] = (content_type, body if callable(body) else (lambda: body))
        return self.url + path

    def fetches(self, path: str) -> int:
        with self._lock:
            return self._fetched.get(path, 0)

    def serve_jwks(self, keys: ClientKeys) -> str:
        """CreateJwksUri, answered with the keys' public JWK Set at each fetch (so after a rotation
        the new key alone); its URL."""
        return self.serve(JWKS_PATH, "application/json", lambda: json.dumps(keys.public_jwks()).encode())

    def new_request_uri(self) -> tuple[str, str]:
        """CreateRandomRequestUriWithFragment: a random path of 64 characters under /requesturi/, and
        the full URL with a fragment (a SHA-256 in base64url, of other random text, as the suite's).
        (path, full URL)."""
        path = REQUEST_URI_PATH + alphanumeric(64)
        digest = hashlib.sha256(alphanumeric(64).encode()).digest()
        fragment = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return path, f"{self.url}{path}#{fragment}"


# --- the registration request ------------------------------------------------------------------

def registration_request(*, redirect_uri: str, auth: str, keys: ClientKeys, response_type: str = "code",
                         jwks_uri: str | None = None, test_id: str | None = None) -> dict[str, Any]:
    """OIDCCCreateDynamicClientRegistrationRequest's request, member by member in its order:
    CreateEmptyDynamicRegistrationRequest, AddClientNameToDynamicRegistrationRequest ("OIDF Conformance
    Test" and the test's id), AddAuthorizationCodeGrantTypeToDynamicRegistrationRequest (code flows),
    AddPublicJwksToDynamicRegistrationRequest (or, as the jwks_uri modules replace it,
    AddJwksUriToDynamicRegistrationRequest), AddTokenEndpointAuthMethodToDynamicRegistrationRequestFromEnvironment
    (the plan's client authentication), AddResponseTypesArrayToDynamicRegistrationRequestFromEnvironment,
    AddRedirectUriToDynamicRegistrationRequest and AddContactsToDynamicRegistrationRequest."""
    request: dict[str, Any] = {"client_name": f"{CLIENT_NAME} {test_id or alphanumeric(10)}"}
    if "code" in response_type.split():
        request["grant_types"] = ["authorization_code"]
    if {"id_token", "token"} & set(response_type.split()):
        request.setdefault("grant_types", []).append("implicit")
    if jwks_uri is None:
        request["jwks"] = keys.public_jwks()
    else:
        request["jwks_uri"] = jwks_uri
    request["token_endpoint_auth_method"] = auth
    request["response_types"] = [response_type]
    request["redirect_uris"] = [redirect_uri]
    request["contacts"] = [SUPPORT_EMAIL]
    return request


def call_registration_endpoint(op: Provider, request: dict[str, Any], initial_access_token: str | None,
                               ) -> requests.Response:
    """CallDynamicRegistrationEndpoint: the request as JSON, Accept application/json (UTF-8), and the
    initial access token as a Bearer token when the suite is configured with one."""
    headers = {"Accept": "application/json", "Accept-Charset": "utf-8", "Content-Type": "application/json"}
    if initial_access_token:
        headers["Authorization"] = f"Bearer {initial_access_token}"
    # at the OP's socket (deployed_op's endpoint names its https issuer)
    endpoint = op.url + urlsplit(op.metadata["registration_endpoint"]).path
    return requests.post(endpoint, data=json.dumps(request), headers=headers, timeout=TIMEOUT)


def _json_body(answer: requests.Response) -> dict[str, Any]:
    """EnsureContentTypeJson, and the body it promises."""
    content_type = answer.headers.get("Content-Type", "").split(";")[0].strip()
    assert content_type == "application/json", ("EnsureContentTypeJson", answer.status_code, content_type,
                                                answer.text[:300])
    body = answer.json()
    assert isinstance(body, dict), body
    return body


def check_registered(op: Provider, answer: requests.Response) -> dict[str, Any]:
    """CallDynamicRegistrationEndpointAndVerifySuccessfulResponse: JSON (EnsureContentTypeJson), 201
    (EnsureHttpStatusCodeIs201), no `error` (CheckNoErrorFromDynamicRegistrationEndpoint), a client_id
    (ExtractDynamicRegistrationResponse), both or neither of registration_client_uri and
    registration_access_token, the URI an https URL (VerifyClientManagementCredentials: a failure
    wherever the OP is; `op` is the deployment behind TLS, so its URI is under its https issuer), and a
    client_secret_expires_at beside any client_secret (VerifyDynamicRegistrationResponseClientCredentials).
    The registered client's metadata."""
    body = _json_body(answer)
    assert answer.status_code == 201, ("EnsureHttpStatusCodeIs201", answer.status_code, body)
    assert "error" not in body, ("CheckNoErrorFromDynamicRegistrationEndpoint", body)
    assert isinstance(body.get("client_id"), str) and body["client_id"], ("ExtractDynamicRegistrationResponse", body)
    management = {name: body.get(name) for name in ("registration_client_uri", "registration_access_token")}
    if any(value is not None for value in management.values()):
        uri, token = management["registration_client_uri"], management["registration_access_token"]
        assert isinstance(uri, str) and uri, ("VerifyClientManagementCredentials", "registration_client_uri", body)
        assert isinstance(token, str) and token, ("VerifyClientManagementCredentials", "registration_access_token")
        parts = urlsplit(uri)
        assert parts.scheme == "https" and parts.hostname, \
            ("VerifyClientManagementCredentials", "URL for client management point does not use https scheme", uri)
        assert uri.startswith(op.issuer + "/"), ("the registration's own URI is under the issuer", uri, op.issuer)
    if "client_secret" in body:
        expires = body.get("client_secret_expires_at")
        assert isinstance(expires, int) and not isinstance(expires, bool), \
            ("VerifyDynamicRegistrationResponseClientCredentials", body.get("client_secret_expires_at"))
    return body


def check_refused(answer: requests.Response, *, errors: set[str]) -> dict[str, Any]:
    """A refused registration: JSON (EnsureContentTypeJson), 400 (EnsureHttpStatusCodeIs400), and an
    error of `errors` (CheckErrorFromDynamicRegistrationEndpointIs...: a warning in the suite, asserted
    here) with RFC 6749's character set. The body."""
    body = _json_body(answer)
    assert answer.status_code == 400, ("EnsureHttpStatusCodeIs400", answer.status_code, body)
    assert body.get("error") in errors, ("CheckErrorFromDynamicRegistrationEndpoint", errors, body)
    check_error_text(body)
    assert "client_id" not in body, body
    return body


# --- registered clients ---------------------------------------------------------------------------

@dataclass
class DynamicClient:
    """A client the suite registered: its request, what the OP answered, its keys, and the relying
    party the modules drive (its redirect URI, its authentication: a secret or its key)."""

    rp: RelyingParty
    auth: str
    keys: ClientKeys
    request: dict[str, Any]
    registered: dict[str, Any]

    @property
    def client_id(self) -> str:
        return self.rp.client_id


class Registrar:
    """The module's dynamic registrations (configureDynamicClient): each client registered with the suite's
    initial access token and checked; at the module's end, each that got a registration_client_uri is
    unregistered (UnregisterDynamicallyRegisteredClient: DELETE with its registration access token, 204;
    a warning in the suite, asserted here). `op` is the OP deployed behind TLS (conftest's deployed_op:
    its issuer https), reached at its socket, as the suite registers at an https OP: the flows then run
    at the test's OP on the same tables, one deployment at two addresses, so that each module's
    registration is checked as the suite checks it (https registration_client_uri) and the browser still
    reaches the OP over plain http."""

    def __init__(self, op: Provider, app_url: str, site: ClientSite, initial_access_token: str) -> None:
        self.op, self.app_url, self.site, self.initial_access_token = op, app_url, site, initial_access_token
        self.clients: list[DynamicClient] = []

    def request(self, *, auth: str = "private_key_jwt", redirect_uri: str | None = None, jwks_uri: bool = False,
                keys: ClientKeys | None = None) -> tuple[dict[str, Any], ClientKeys]:
        """The suite's registration request for a client of this module (and its keys): its redirect URI
        the app's server's /callback (CreateRedirectUri), or `redirect_uri`; its keys' jwks, or a
        jwks_uri on the suite's site serving a key with a kid (the jwks_uri modules)."""
        keys = keys or ClientKeys(with_kid=jwks_uri)
        request = registration_request(redirect_uri=redirect_uri or self.app_url + CALLBACK_PATH, auth=auth,
                                       keys=keys, jwks_uri=self.site.serve_jwks(keys) if jwks_uri else None)
        return request, keys

    def post(self, request: dict[str, Any]) -> requests.Response:
        return call_registration_endpoint(self.op, request, self.initial_access_token)

    def register(self, request: dict[str, Any], keys: ClientKeys, *, response_mode: str = "default",
                 ) -> DynamicClient:
        """The request sent and its answer checked (a 201 with the client); the client, kept for the
        module's end."""
        body = check_registered(self.op, self.post(request))
        auth = request["token_endpoint_auth_method"]
        client_id = body["client_id"]
        rp = RelyingParty(client_id=client_id, client_secret=body.get("client_secret", ""),
                          redirect_uri=request["redirect_uris"][0], post_logout_redirect_uri="",
                          response_mode=response_mode,
                          assertion=(lambda audience: client_assertion(keys, client_id, audience))
                          if auth == "private_key_jwt" else None)
        client = DynamicClient(rp=rp, auth=auth, keys=keys, request=request, registered=body)
        self.clients.append(client)
        return client

    def close(self) -> None:
        failures = []
        for client in self.clients:
            uri = client.registered.get("registration_client_uri")
            token = client.registered.get("registration_access_token")
            if not uri or not token:
                continue
            address = self.op.url + urlsplit(uri).path    # the OP at its socket (deployed_op's is https)
            answer = requests.delete(address, headers={"Authorization": f"Bearer {token}",
                                                       "Accept": "application/json"}, timeout=TIMEOUT)
            if answer.status_code != 204:
                failures.append((client.client_id, answer.status_code, answer.text[:200]))
        assert not failures, ("UnregisterDynamicallyRegisteredClient", failures)


@contextmanager
def registrar(op: Provider, app_url: str, site: ClientSite, initial_access_token: str) -> Iterator[Registrar]:
    """A module's registrations, unregistered at its end."""
    module = Registrar(op, app_url, site, initial_access_token)
    try:
        yield module
    finally:
        module.close()


# --- request objects ------------------------------------------------------------------------------

# What OAuth 2.0 requires outside a request object (AbstractBuildRequestObjectRedirectToAuthorizationEndpoint).
REQUIRED_DUPLICATES = ("response_type", "client_id", "scope", "redirect_uri")


def object_redirect(op: Provider, request: AuthorizationRequest, object_claims: dict[str, Any], name: str,
                    value: str) -> str:
    """BuildRequestObjectBy{Value,Reference}RedirectToAuthorizationEndpoint: `name`=`value` and the request's
    parameters that OAuth 2.0 requires outside the object or whose value the object does not hold, in
    the natural order of their names."""
    params = {name: value}
    for key, outside in request.params.items():
        if key in REQUIRED_DUPLICATES or object_claims.get(key) != outside:
            params[key] = outside
    return f"{op.metadata['authorization_endpoint']}?{urlencode(sorted(params.items()))}"


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_request_object(claims: dict[str, Any]) -> str:
    """SerializeRequestObjectWithNullAlgorithm: an unsecured JWT, its header {"alg":"none"} alone and no
    signature (RFC 7519 §6)."""
    header = _base64url(json.dumps({"alg": "none"}, separators=(",", ":")).encode())
    return f"{header}.{_base64url(json.dumps(claims).encode())}."


def unsigned_objects_listed(op: Provider) -> bool:
    """skipTestIfNoneUnsupported: False (the suite skips the module) when discovery's
    request_object_signing_alg_values_supported is a list without 'none'."""
    values = op.metadata.get("request_object_signing_alg_values_supported")
    return not isinstance(values, list) or "none" in values
