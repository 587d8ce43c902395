"""What citylogin fetches for an app, at the endpoints (SPEC §14): a jwks_uri or request_uri that trickles its
answer costs the request no more than the fetch's deadline; an app that registered itself is never fetched
from a private address (checked at connect time) and may not register an http back-channel URL; and whatever
went wrong, the app hears only that its keys could not be fetched, the reason going to the log."""
from __future__ import annotations

import logging
import time
import uuid

import jwt
import pytest
import requests
from joserfc.jwk import ECKey

from oidc.clients.authentication import KEYS_NOT_FETCHED
from relying_parties import registration_tokens
from relying_parties import service as apps
from relying_parties.models import OidcClient, SelfRegistration
from tests.support.jwks_server import JwksServer
from tests.support.oidc import query_of
from tests.support.ports import free_port
from tests.support.trickle_server import TrickleServer

pytestmark = pytest.mark.slow  # servers on sockets, deadlines waited out

REDIRECT = "https://app.example/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FETCH_DEADLINE = 2.0
REQUEST_URI_DEADLINE = 4.0  # oidc.authorization.request_uri_fetch.DEADLINE
SLACK = 5.0  # what a loaded machine adds before the answer is back (before the fix: ~40 s, 1.5 s a byte)
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})


@pytest.fixture
def trickle():
    with TrickleServer() as server:
        yield server


def _assertion(client_id: str, audience: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": client_id, "sub": client_id, "aud": audience, "jti": uuid.uuid4().hex, "iat": now,
                       "exp": now + 60}, KEY.as_pem(private=True), algorithm="ES256", headers={"kid": "k1"})


def token_request(url: str, client_id: str) -> requests.Response:
    """A code redemption by private_key_jwt: the app is authenticated (its keys fetched) before the code is read."""
    return requests.post(url + "/oidc/token", timeout=60, data={
        "grant_type": "authorization_code", "code": "no-such-code", "redirect_uri": REDIRECT, "client_id": client_id,
        "client_assertion": _assertion(client_id, url), "client_assertion_type": ASSERTION_TYPE})


def _register(url: str, ctx, **metadata) -> requests.Response:
    token = registration_tokens.make_token(ctx).token
    return requests.post(url + "/oidc/register", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                         json={"redirect_uris": [REDIRECT], **metadata})


def _self_registered(ctx, **oidc) -> str:
    """An app that registered itself with these URLs, as if the registration's own check had let them by (a
    name whose DNS answered a public address then): the check that counts is the fetch's."""
    registration = SelfRegistration(registered_with="open", token_digest=uuid.uuid4().hex)
    return apps.add_app(ctx, name=f"Self {uuid.uuid4().hex[:6]}", push_url=None, registration=registration,
                        oidc=OidcClient(redirect_uris=(REDIRECT,), **oidc)).app.client_id


def test_a_trickling_jwks_uri_costs_the_token_request_no_more_than_the_deadline(make_server, trickle):
    url, ctx = make_server(host_name="127.0.0.1", oidc_jwks_fetch_timeout=FETCH_DEADLINE)
    answer = _register(url, ctx, token_endpoint_auth_method="private_key_jwt", jwks_uri=trickle.url + "/jwks")
    assert answer.status_code == 201, answer.text
    started = time.monotonic()
    refused = token_request(url, answer.json()["client_id"])
    elapsed = time.monotonic() - started
    assert refused.json() == {"error": "invalid_client", "error_description": KEYS_NOT_FETCHED}, refused.text
    assert refused.status_code in (400, 401) and elapsed < FETCH_DEADLINE + SLACK


def test_a_trickling_request_uri_costs_the_authorization_no_more_than_the_deadline(make_server, trickle):
    url, ctx = make_server()
    request_uri = trickle.url + "/request.jwt"
    answer = _register(url, ctx, request_uris=[request_uri], token_endpoint_auth_method="none")
    assert answer.status_code == 201, answer.text
    started = time.monotonic()
    sent = requests.get(url + "/oidc/authorize", allow_redirects=False, timeout=60, params={
        "client_id": answer.json()["client_id"], "request_uri": request_uri, "redirect_uri": REDIRECT,
        "response_type": "code", "scope": "openid", "state": "s"})
    elapsed = time.monotonic() - started
    assert sent.status_code in (302, 303), sent.text[:300]
    assert query_of(sent.headers["Location"])["error"] == "invalid_request_uri"
    assert elapsed < REQUEST_URI_DEADLINE + SLACK


def test_the_app_hears_only_that_its_keys_could_not_be_fetched_and_the_log_says_why(make_server, caplog):
    """A self-registered app's jwks_uri on 127.0.0.1 (a server that would answer its keys) is refused at connect
    time; an operator's app may use 127.0.0.1, and its server's 400, a refused connection and a hang each give
    the app the same words, the reason in the log alone."""
    url, ctx = make_server(host_name="127.0.0.1", oidc_jwks_fetch_timeout=FETCH_DEADLINE,
                           oidc_fetch_private_addresses=False)
    with JwksServer() as good, JwksServer() as failing, JwksServer() as hanging:
        good.serve(KEY)
        failing.mode, hanging.mode = "bad_request", "hang"
        refused_address = _self_registered(ctx, jwks_uri=good.url, registered_auth_method="private_key_jwt")
        operators = {mode: apps.add_app(ctx, name=f"Op {mode}", push_url=None, oidc=OidcClient(
            redirect_uris=(REDIRECT,), jwks_uri=jwks_uri, registered_auth_method="private_key_jwt")).app.client_id
            for mode, jwks_uri in (("400", failing.url),
                                   ("refused", f"http://127.0.0.1:{free_port()}/jwks"), ("hang", hanging.url))}
        with caplog.at_level(logging.WARNING, logger="oidc.jwks_fetch"):
            for client_id in (refused_address, *operators.values()):
                answer = token_request(url, client_id)
                assert answer.json() == {"error": "invalid_client", "error_description": KEYS_NOT_FETCHED}
                assert good.url not in answer.text and "127.0.0.1" not in answer.text
        assert good.gets == 0                                              # never connected to
        good_app = apps.add_app(ctx, name="Op good", push_url=None, oidc=OidcClient(
            redirect_uris=(REDIRECT,), jwks_uri=good.url, registered_auth_method="private_key_jwt")).app.client_id
        kept = token_request(url, good_app).json()
        assert kept["error"] == "invalid_grant", kept  # the operator's app on 127.0.0.1: its keys were fetched
    logged = {record.getMessage() for record in caplog.records}
    reasons = {refused_address: "127.0.0.1 is not a public address", operators["400"]: "answered 400",
               operators["refused"]: "ConnectionRefusedError", operators["hang"]: "no whole answer"}
    for client_id, reason in reasons.items():
        assert any(client_id in line and reason in line for line in logged), (client_id, reason, logged)


def test_an_app_that_registers_itself_names_no_private_address_nor_an_http_back_channel(make_server):
    url, ctx = make_server(oidc_fetch_private_addresses=False)
    for member, value, extra in (
            ("backchannel_logout_uri", "http://rp.example/logout", {}),
            ("jwks_uri", "https://169.254.169.254/jwks", {"token_endpoint_auth_method": "private_key_jwt"}),
            ("jwks_uri", "http://127.0.0.1:8080/jwks", {"token_endpoint_auth_method": "private_key_jwt"}),
            ("jwks_uri", "https://2130706433/jwks", {"token_endpoint_auth_method": "private_key_jwt"}),
            ("request_uris", "https://[::ffff:10.0.0.1]/r", {}),
            ("backchannel_logout_uri", "https://10.1.2.3/logout", {})):
        body = {**extra, member: [value] if member == "request_uris" else value}
        refused = _register(url, ctx, **body)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client_metadata"), refused.text
        assert refused.json()["error_description"].startswith(member), refused.text
    assert _register(url, ctx, backchannel_logout_uri="https://rp.example/logout").status_code == 201


def test_with_private_addresses_allowed_a_loopback_back_channel_may_be_http_and_no_other(make_server):
    url, ctx = make_server(oidc_fetch_private_addresses=True)
    assert _register(url, ctx, backchannel_logout_uri="http://127.0.0.1:9/logout").status_code == 201
    refused = _register(url, ctx, backchannel_logout_uri="http://rp.example/logout")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_client_metadata"
    assert refused.json()["error_description"].startswith("backchannel_logout_uri")
