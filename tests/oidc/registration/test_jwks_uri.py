"""Apps whose keys are at a jwks_uri (RFC 7591 §2; SPEC §14): fetched when first needed and kept, fetched again
at once when an assertion names a kid they lack (the app rotated its key) but at most once in the refetch
period, and a jwks_uri that cannot be fetched (an error, a redirect, too large, too slow, no answer) is
invalid_client at the endpoint, never a 500 nor a wait past the fetch's time limit."""
from __future__ import annotations

import time
import uuid
from functools import partial

import jwt
import pytest
import requests
from joserfc.jwk import ECKey, RSAKey

from relying_parties import registration_tokens
from relying_parties import service as apps
from relying_parties.models import OidcClient
from oidc.registration.client_keys import JWKS_LOG, app_key_set, public_jwks_problem, remote_key_sets
from common.outbound.key_sets import KeysUnavailable, RemoteKeySets, fetch_key_set
from tests.support.jwks_server import JwksServer

# Real servers on sockets, one module's many requests: the slow tier (the rules' unit tests are fast).
pytestmark = pytest.mark.slow

REDIRECT = "https://app.example/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def jwks():
    with JwksServer() as server:
        yield server


class Monotonic:
    """A clock for RemoteKeySets that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _keys(clock: Monotonic, *, timeout: float = 5.0) -> RemoteKeySets:
    return RemoteKeySets(cache_seconds=300, refetch_seconds=5, timeout=timeout, problem_of=public_jwks_problem,
                         log=JWKS_LOG, clock=clock)


def test_keys_are_kept_and_fetched_again_for_an_unknown_kid_at_most_once_a_period(jwks):
    first, second = ECKey.generate_key("P-256", parameters={"kid": "k1"}), RSAKey.generate_key(
        2048, parameters={"kid": "k2"})
    jwks.serve(first)
    clock = Monotonic()
    key_set = partial(_keys(clock).key_set, private_allowed=True)
    assert key_set("app_a", jwks.url, kid="k1").get_by_kid("k1") and jwks.gets == 1
    assert key_set("app_a", jwks.url, kid="k1") and key_set("app_a", jwks.url) and jwks.gets == 1

    jwks.serve(first, second)                       # the app rotates: a new kid appears
    assert key_set("app_a", jwks.url, kid="k2") and jwks.gets == 1     # fetched a moment ago: not yet
    clock.now += 5
    assert key_set("app_a", jwks.url, kid="k2").get_by_kid("k2") and jwks.gets == 2
    assert key_set("app_a", jwks.url, kid="k3") and jwks.gets == 2     # tried a moment ago: not again
    clock.now += 5
    key_set("app_a", jwks.url, kid="k3")
    assert jwks.gets == 3                                                    # once the period passed
    key_set("app_b", jwks.url, kid="k1")
    assert jwks.gets == 4                                                    # each app its own
    clock.now += 300
    key_set("app_a", jwks.url, kid="k1")
    assert jwks.gets == 5                                                    # old keys are fetched again


def test_keys_fetched_before_outlive_a_failing_uri_for_a_while_and_no_longer(jwks):
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    jwks.serve(key)
    clock = Monotonic()
    key_set = partial(_keys(clock).key_set, private_allowed=True)
    key_set("app_a", jwks.url)
    jwks.mode = "error"
    clock.now += 301
    assert key_set("app_a", jwks.url).get_by_kid("k1")  # fetched again, failed: the old keys serve
    clock.now += 300 * 12
    with pytest.raises(KeysUnavailable, match="answered 500"):
        key_set("app_a", jwks.url)


@pytest.mark.parametrize(("mode", "reason"), [("error", "answered 500"), ("redirect", "answered 302"),
                                              ("large", "more than"), ("trickle", "no whole answer"),
                                              ("hang", "no whole answer")])
def test_a_uri_that_misbehaves_gives_no_keys(jwks, mode, reason):
    jwks.mode = mode
    with pytest.raises(KeysUnavailable, match=reason):
        fetch_key_set(jwks.url, timeout=1.0, problem_of=public_jwks_problem, private_allowed=True)


@pytest.mark.parametrize("document", [{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, {"keys": []}, ["not", "a set"]])
def test_a_uri_that_answers_no_public_key_set_gives_no_keys(jwks, document):
    jwks.keys = document
    with pytest.raises(KeysUnavailable, match="not a JWK Set"):
        fetch_key_set(jwks.url, timeout=5, problem_of=public_jwks_problem, private_allowed=True)


def test_nothing_else_than_http_is_ever_asked_for_and_unreachable_hosts_give_no_keys():
    with pytest.raises(KeysUnavailable, match="ConnectionRefusedError"):
        fetch_key_set("http://127.0.0.1:9/jwks.json", timeout=2, problem_of=public_jwks_problem, private_allowed=True)
    with pytest.raises(KeysUnavailable):
        fetch_key_set("file:///etc/passwd", timeout=2, problem_of=public_jwks_problem, private_allowed=True)


# --- at the endpoints -------------------------------------------------------------------------------------

def _assertion(key, client_id: str, audience: str) -> str:
    now = int(time.time())
    alg = "ES256" if isinstance(key, ECKey) else "RS256"
    return jwt.encode({"iss": client_id, "sub": client_id, "aud": audience, "jti": uuid.uuid4().hex, "iat": now,
                       "exp": now + 60}, key.as_pem(private=True), algorithm=alg, headers={"kid": key.kid})


def _authenticated(url: str, key, client_id: str) -> requests.Response:
    """The revocation endpoint, which authenticates the app before anything else (200 once it did)."""
    return requests.post(url + "/oidc/revoke", timeout=30, data={
        "token": "whatever", "client_id": client_id, "client_assertion": _assertion(key, client_id, url),
        "client_assertion_type": ASSERTION_TYPE})


def test_an_app_with_a_jwks_uri_authenticates_rotates_its_key_and_is_refused_while_it_cannot_be_read(make_server,
                                                                                                     jwks):
    url, ctx = make_server(host_name="127.0.0.1", oidc_jwks_fetch_timeout=1)
    clock = Monotonic()
    remote_key_sets(ctx).clock = clock  # the refetch period passes when the test says
    first, second, third = (ECKey.generate_key("P-256", parameters={"kid": f"k{i}"}) for i in range(1, 4))
    jwks.serve(first)
    token = registration_tokens.make_token(ctx).token
    answer = requests.post(url + "/oidc/register", headers={"Authorization": f"Bearer {token}"}, timeout=10, json={
        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": jwks.url}).json()
    client_id = answer["client_id"]
    assert answer["token_endpoint_auth_method"] == "private_key_jwt" and answer["jwks_uri"] == jwks.url
    by_secret = requests.post(url + "/oidc/revoke", data={"token": "whatever"}, timeout=10,
                              auth=(client_id, answer["client_secret"]))
    assert by_secret.json()["error"] == "invalid_client"      # it registered its key: the secret is not for this
    assert _authenticated(url, first, client_id).status_code == 200
    jwks.serve(first, second)                                 # rotation: the next assertion's kid is new
    clock.now += 5
    assert _authenticated(url, second, client_id).status_code == 200
    assert jwks.gets == 2

    jwks.mode = "hang"                                        # the app's server stops answering
    clock.now += 5
    refused = _authenticated(url, third, client_id)           # an unknown kid: fetched again, in vain
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client"), refused.text
    assert _authenticated(url, second, client_id).status_code == 200   # the keys read before still serve

    secret_app = apps.add_app(ctx, name="Plain", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    with pytest.raises(KeysUnavailable):
        app_key_set(ctx, secret_app.app)


def test_an_app_whose_jwks_uri_never_answered_is_invalid_client(make_server, jwks):
    url, ctx = make_server(host_name="127.0.0.1")
    jwks.mode = "error"
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    app = apps.add_app(ctx, name="Keyed", push_url=None, oidc=OidcClient(
        redirect_uris=(REDIRECT,), jwks_uri=jwks.url, registered_auth_method="private_key_jwt")).app
    refused = _authenticated(url, key, app.client_id)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client"), refused.text
    assert refused.json()["error_description"] == "The app's keys could not be fetched."  # why is in the log
