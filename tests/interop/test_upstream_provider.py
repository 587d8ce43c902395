"""The upstream of the federation tests (tests/support/upstream.py, SPEC §16) answers as each provider does:
a plain code flow written here (discovery, authorization with PKCE, state and nonce, code exchange, the ID
token checked with Authlib against the JWKS) meets Google's claims, Apple's form_post, JWT client secret,
private-relay address and once-only name, and a company provider's key rotation; each fault and tamper hook
breaks what it says, and stop() leaves no process behind."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.upstream import Answer, Upstream, client

pytestmark = pytest.mark.slow

CALLBACK = "http://127.0.0.1:9/federation/up/callback"     # never reached: the answer is read, not sent


@dataclass
class Flow:
    """One relying party's code flow against an upstream, as a careful relying party makes it."""
    upstream: Upstream
    app: dict[str, Any]
    client_secret: str | None = None         # Apple: the JWT client secret sent instead of the app's

    def start(self, **extra: str) -> tuple[Answer, dict[str, str]]:
        """The authorization's answer and the request's secrets (state, nonce, verifier)."""
        sent = {"state": secrets.token_urlsafe(16), "nonce": secrets.token_urlsafe(16),
                "verifier": secrets.token_urlsafe(48)}
        challenge = base64.urlsafe_b64encode(hashlib.sha256(sent["verifier"].encode()).digest()).rstrip(b"=")
        query = {"response_type": "code", "client_id": self.app["client_id"], "redirect_uri": CALLBACK,
                 "scope": "openid email profile", "state": sent["state"], "nonce": sent["nonce"],
                 "code_challenge": challenge.decode(), "code_challenge_method": "S256", **extra}
        url = self.upstream.discovery()["authorization_endpoint"] + "?" + urlencode(query)
        return self.upstream.authorize(requests.Session(), url), sent

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
    _, default = google.sign_in()                                         # no next-login: the default person
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
