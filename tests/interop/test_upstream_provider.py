"""The upstream of the federation tests (tests/support/upstream.py, SPEC §16) answers as each provider does:
a plain code flow written here (discovery, authorization with PKCE, state and nonce, code exchange, the ID
token checked with Authlib against the JWKS) meets Google's claims, Apple's form_post, JWT client secret,
private-relay address and once-only name, and a company provider's key rotation; each fault and tamper hook
breaks what it says, and stop() leaves no process behind."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from tests.support.ports import free_port
from tests.support.upstream import AppleKey, Answer, Upstream, client

pytestmark = pytest.mark.slow

CALLBACK = "http://127.0.0.1:9/federation/up/callback"     # never reached: the answer is read, not sent


@dataclass
class Flow:
    """One relying party's code flow against an upstream, as a careful relying party makes it."""
    upstream: Upstream
    app: dict[str, Any]
    client_secret: str | None = None         # Apple: the JWT client secret sent instead of the app's
    browser: requests.Session = field(default_factory=requests.Session)   # its cookies kept, as a browser's

    def start(self, **extra: str) -> tuple[Answer, dict[str, str]]:
        """The authorization's answer and the request's secrets (state, nonce, verifier)."""
        sent = {"state": secrets.token_urlsafe(16), "nonce": secrets.token_urlsafe(16),
                "verifier": secrets.token_urlsafe(48)}
        challenge = base64.urlsafe_b64encode(hashlib.sha256(sent["verifier"].encode()).digest()).rstrip(b"=")
        query = {"response_type": "code", "client_id": self.app["client_id"], "redirect_uri": CALLBACK,
                 "scope": "openid email profile", "state": sent["state"], "nonce": sent["nonce"],
                 "code_challenge": challenge.decode(), "code_challenge_method": "S256", **extra}
        url = self.upstream.discovery()["authorization_endpoint"] + "?" + urlencode(query)
        return self.upstream.authorize(self.browser, url), sent

    def exchange(self, code: str, verifier: str) -> requests.Response:
        body = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}
        token_endpoint = self.upstream.discovery()["token_endpoint"]
        if self.client_secret is not None:   # client_secret_post, as Apple asks
            body |= {"client_id": self.app["client_id"], "client_secret": self.client_secret}
            return requests.post(token_endpoint, data=body, timeout=30)
        return requests.post(token_endpoint, data=body, auth=(self.app["client_id"], self.app["client_secret"]),
                             timeout=30)

    def id_token(self, **extra: str) -> tuple[str, dict[str, str], Answer]:
        """A fresh sign-in's ID token, unchecked, with the request's secrets and the authorization's answer."""
        answer, sent = self.start(**extra)
        assert answer.url == CALLBACK and answer.params["state"] == sent["state"], answer
        assert answer.params["iss"] == self.upstream.issuer            # RFC 9207
        tokens = self.exchange(answer.params["code"], sent["verifier"])
        assert tokens.status_code == 200, tokens.text
        return tokens.json()["id_token"], sent, answer

    def sign_in(self, **extra: str) -> tuple[Answer, dict[str, Any]]:
        """The answer and the ID token's claims, checked (signature by the JWKS, iss, aud, exp, nonce)."""
        id_token, sent, answer = self.id_token(**extra)
        return answer, self.check(id_token, nonce=sent["nonce"])

    def check(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The ID token's claims, checked as OIDC Core §3.1.3.7 asks (joserfc, Authlib's JOSE library)."""
        token = jwt.decode(id_token, KeySet.import_key_set(self.upstream.jwks()), algorithms=["RS256"])
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": self.upstream.issuer},
                              aud={"essential": True, "value": self.app["client_id"]},
                              nonce={"essential": True, "value": nonce},
                              exp={"essential": True}).validate(token.claims)
        return dict(token.claims)


def header(jwt: str) -> dict[str, Any]:
    part = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@pytest.fixture
def google(upstream_factory) -> Flow:
    app = client("citylogin", redirect_uri=CALLBACK)
    return Flow(upstream_factory("google", clients=[app]), app)


@pytest.fixture
def company(upstream_factory) -> Flow:
    app = client("citylogin", redirect_uri=CALLBACK)
    return Flow(upstream_factory("company", clients=[app], issuer_path="/realms/acme"), app)


def test_google_answers_with_a_boolean_email_verified_and_the_hosted_domain(google):
    discovery = google.upstream.discovery()
    assert discovery["authorization_response_iss_parameter_supported"] is True
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    google.upstream.next_login(sub="g-1", email="ada@example.com", email_verified=True, name="Ada Lovelace",
                               hd="example.com", picture="https://example.com/ada.png")
    answer, claims = google.sign_in()
    assert answer.method == "GET"                                         # response_mode query
    assert claims["sub"] == "g-1" and claims["email"] == "ada@example.com" and claims["email_verified"] is True
    assert (claims["hd"], claims["name"], claims["picture"]) == ("example.com", "Ada Lovelace",
                                                                  "https://example.com/ada.png")
    assert any(cookie.name.startswith("_session") for cookie in google.browser.cookies)
    _, default = google.sign_in()                  # the same browser, no next-login: the default person
    assert default["sub"] != "g-1" and "hd" not in default and default["email_verified"] is True


def test_pkce_is_required(google):
    answer, _ = google.start(code_challenge="", code_challenge_method="")
    assert answer.params["error"] == "invalid_request" and "PKCE" in answer.params["error_description"]


def test_cancel_next_ends_the_authorization_with_access_denied(google):
    google.upstream.cancel_next()
    answer, sent = google.start()
    assert answer.params["error"] == "access_denied" and answer.params["state"] == sent["state"]
    assert answer.params["iss"] == google.upstream.issuer
    assert google.sign_in()[1]["email_verified"] is True                    # only the next one


@pytest.fixture
def apple_key() -> AppleKey:
    return AppleKey.generate()


@pytest.fixture
def apple(upstream_factory, apple_key) -> Flow:
    app = client("com.example.citylogin", redirect_uri=CALLBACK)
    upstream = upstream_factory("apple", clients=[app], apple=apple_key)
    secret = apple_key.client_secret(client_id=app["client_id"], audience=upstream.issuer)
    return Flow(upstream, app, client_secret=secret)


def apple_sign_in(apple: Flow) -> tuple[Answer, dict[str, Any]]:
    return apple.sign_in(scope="openid email name", response_mode="form_post")


def test_apple_answers_by_form_post_with_string_booleans_a_relay_address_and_no_name(apple):
    answer, claims = apple_sign_in(apple)
    assert answer.method == "POST" and answer.url == CALLBACK
    assert claims["email_verified"] == "true" and claims["is_private_email"] == "true"
    assert claims["email"].endswith("@privaterelay.appleid.com")
    assert not {"name", "given_name", "family_name"} & set(claims)
    assert json.loads(answer.params["user"]) == {"name": {"firstName": "Ada", "lastName": "Lovelace"},
                                                 "email": claims["email"]}


def test_apple_sends_the_name_on_a_subs_first_consent_only(apple):
    apple.upstream.next_login(sub="001.a", given_name="Grace", family_name="Hopper", email="grace@example.com")
    first, claims = apple_sign_in(apple)
    assert json.loads(first.params["user"])["name"] == {"firstName": "Grace", "lastName": "Hopper"}
    assert claims["email"] == "grace@example.com" and "is_private_email" not in claims
    apple.upstream.next_login(sub="001.a", given_name="Grace", family_name="Hopper", email="grace@example.com")
    again, _ = apple_sign_in(apple)
    assert "user" not in again.params and "code" in again.params
    apple.upstream.next_login(sub="001.b", email_verified=False)                 # another sub: its first time
    other, claims = apple_sign_in(apple)
    assert "user" in other.params and claims["email_verified"] == "false"


def test_apple_refuses_a_client_secret_not_signed_by_the_operators_key_or_expired(apple, apple_key):
    issuer, client_id = apple.upstream.issuer, apple.app["client_id"]
    stranger = AppleKey.generate(team_id=apple_key.team_id, key_id=apple_key.key_id)
    refused = {   # each secret, and the reason the upstream logs for refusing it
        "ERR_JWS_SIGNATURE_VERIFICATION_FAILED": stranger.client_secret(client_id=client_id, audience=issuer),
        "ERR_JWT_EXPIRED": apple_key.client_secret(client_id=client_id, audience=issuer, issued_at=1_700_000_000),
        'unexpected "aud"': apple_key.client_secret(client_id=client_id, audience="https://appleid.apple.com"),
        "more than 6 months": apple_key.client_secret(client_id=client_id, audience=issuer, lifetime_s=200 * 86400),
        "ERR_JWS_INVALID": apple.app["client_secret"],                    # a static secret is no JWT
    }
    for why, secret in refused.items():
        answer, sent = apple.start(scope="openid email name", response_mode="form_post")
        refusal = Flow(apple.upstream, apple.app, client_secret=secret).exchange(answer.params["code"],
                                                                                  sent["verifier"])
        assert (refusal.status_code, refusal.json()["error"]) == (401, "invalid_client"), why
        assert why in apple.upstream.log().splitlines()[-1]
    assert apple_sign_in(apple)[1]["email_verified"] == "true"                    # the operator's own is taken


def test_apple_cancelled_answers_access_denied_by_form_post(apple):
    apple.upstream.cancel_next()
    answer, sent = apple.start(scope="openid email name", response_mode="form_post")
    assert (answer.method, answer.url) == ("POST", CALLBACK)
    assert answer.params["error"] == "access_denied" and answer.params["state"] == sent["state"]


def test_a_company_provider_under_a_path_rotates_its_signing_key(company):
    assert company.upstream.issuer.endswith("/realms/acme")
    assert company.upstream.discovery()["issuer"] == company.upstream.issuer
    _, claims = company.sign_in()
    assert claims["preferred_username"] == "ada" and claims["email_verified"] is True
    old = header(company.id_token()[0])["kid"]

    rotated = company.upstream.rotate_keys()
    id_token, sent, _ = company.id_token()
    assert header(id_token)["kid"] == rotated["kid"] != old
    assert [key["kid"] for key in company.upstream.jwks()["keys"]] == [rotated["kid"], old]
    assert company.check(id_token, nonce=sent["nonce"])["sub"] == claims["sub"]

    dropped = company.upstream.rotate_keys(drop_old=True)
    assert [key["kid"] for key in company.upstream.jwks()["keys"]] == [dropped["kid"]]
    assert header(company.id_token()[0])["kid"] == dropped["kid"]


def test_each_fault_breaks_its_endpoint_until_cleared(google):
    upstream = google.upstream
    urls = {"discovery": f"{upstream.issuer}/.well-known/openid-configuration",
            "jwks": upstream.discovery()["jwks_uri"], "token": upstream.discovery()["token_endpoint"]}
    for endpoint, url in urls.items():
        upstream.fault(endpoint, "error")
        assert requests.post(url, timeout=30).status_code == 500
        upstream.fault(endpoint, "garbage")
        garbage = requests.post(url, timeout=30)
        assert garbage.status_code == 200
        with pytest.raises(ValueError):
            garbage.json()
        upstream.fault(endpoint, "slow")
        with pytest.raises(requests.exceptions.ReadTimeout):    # held 30 s: no answer within 2
            requests.post(url, timeout=2)
        upstream.fault(endpoint, None)
    assert google.sign_in()[1]["email_verified"] is True


# The claim rewrites: signed by the provider's key, each fails the check of one claim (joserfc's message).
CLAIM_REWRITES = {"wrong_aud": "'aud'", "wrong_iss": "'iss'", "expired": "expired", "wrong_nonce": "'nonce'"}
# The signature rewrites, by the alg they leave in the header: none passes a check that allows RS256 only.
SIGNATURE_REWRITES = {"bad_signature": "RS256", "alg_none": "none", "hs256_with_public_key": "HS256"}


@pytest.mark.parametrize("kind", CLAIM_REWRITES)
def test_a_tampered_claim_is_signed_well_and_fails_its_check(google, kind):
    google.upstream.tamper(kind)
    id_token, sent, _ = google.id_token()
    assert jwt.decode(id_token, KeySet.import_key_set(google.upstream.jwks()), algorithms=["RS256"])
    with pytest.raises(JoseError, match=CLAIM_REWRITES[kind]):
        google.check(id_token, nonce=sent["nonce"])
    assert google.sign_in()                                       # once only


@pytest.mark.parametrize("kind", SIGNATURE_REWRITES)
def test_a_tampered_signature_fails_the_signature_check(google, kind):
    google.upstream.tamper(kind)
    id_token, sent, _ = google.id_token()
    assert header(id_token)["alg"] == SIGNATURE_REWRITES[kind]
    with pytest.raises(JoseError):
        google.check(id_token, nonce=sent["nonce"])
    assert google.sign_in()


def test_the_hs256_confusion_is_keyed_with_the_public_keys_pem(google):
    google.upstream.tamper("hs256_with_public_key")
    id_token = google.id_token()[0]
    pem = RSAKey.import_key(google.upstream.jwks()["keys"][0]).as_pem(private=False)
    signing_input, signature = id_token.rsplit(".", 1)
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == signature


def test_no_azp_with_two_audiences(google):
    google.upstream.tamper("no_azp_multi_aud")
    id_token, sent, _ = google.id_token()
    claims = jwt.decode(id_token, KeySet.import_key_set(google.upstream.jwks()), algorithms=["RS256"]).claims
    assert claims["aud"] == [google.app["client_id"], "another-app"] and "azp" not in claims


def test_stop_leaves_no_process(google):
    pid = google.upstream.process.pid
    google.upstream.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(google.upstream.issuer, timeout=5)


class Callback(BaseHTTPRequestHandler):
    """A relying party's redirect URI that only records what arrived (GET query or POSTed form)."""
    arrived: list[tuple[str, dict[str, str]]] = []

    def do_GET(self) -> None:
        self._record("GET", urlsplit(self.path).query)

    def do_POST(self) -> None:
        self._record("POST", self.rfile.read(int(self.headers["Content-Length"])).decode())

    def _record(self, method: str, query: str) -> None:
        if urlsplit(self.path).path == "/callback":           # not the browser's /favicon.ico
            self.arrived.append((method, dict(parse_qsl(query))))
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<!DOCTYPE html><p id=arrived>arrived</p>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def callback() -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """(the redirect URI, what arrived at it) of a callback server in a thread."""
    port = free_port()
    handler = type("RecordingCallback", (Callback,), {"arrived": []})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/callback", handler.arrived
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode", ["google", "apple"])
def test_chromium_passes_through_to_the_relying_party(upstream_factory, browser, callback, mode):
    """The sign-in needs no page: Chromium follows the redirects, and Apple's form_post page submits itself."""
    redirect_uri, arrived = callback
    app = client("citylogin", redirect_uri=redirect_uri)
    upstream = upstream_factory(mode, clients=[app], **({"apple": AppleKey.generate()} if mode == "apple" else {}))
    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v" * 43).digest()).rstrip(b"=").decode()
    query = {"response_type": "code", "client_id": "citylogin", "redirect_uri": redirect_uri, "state": "s-1",
             "scope": "openid email", "nonce": "n-1", "code_challenge": challenge, "code_challenge_method": "S256",
             **({"response_mode": "form_post"} if mode == "apple" else {})}
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(upstream.discovery()["authorization_endpoint"] + "?" + urlencode(query))
        page.wait_for_selector("#arrived")
    finally:
        context.close()
    [(method, fields)] = arrived
    assert method == ("POST" if mode == "apple" else "GET")
    assert fields["state"] == "s-1" and fields["iss"] == upstream.issuer and fields["code"]
    assert ("user" in fields) == (mode == "apple")
