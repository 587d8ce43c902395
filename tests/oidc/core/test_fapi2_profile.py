"""An app held to the FAPI 2.0 Security Profile (final), `apps add --profile fapi2` (SPEC §14): it signs in
through PAR only, with PKCE S256, `response_type=code`, private_key_jwt whose `aud` is the issuer as a
string, and DPoP proofs of ES256 or EdDSA at every token request; its authorization responses carry
`iss`, its codes live 60 s and its pushed requests 60 s, no redirect is a 307; its refresh token is kept
(not rotated), bound to the client, and a token that lost its answer still works. Each breach gets the
standard's error. The server is the real one on a socket, its DynamoDB the shared DynamoDB Local."""
from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid

import jwt
import pytest
import requests
from joserfc.jwk import ECKey, RSAKey

from relying_parties import service as apps
from relying_parties.models import AppRecord, OidcClient
from citylogin.client.keys import dpop_proof, generate_key
from common.crypto.dpop import key_thumbprint
from oidc.token import codes
from oidc.core.models import Client
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import authorize_url, finish_as_device, pkce_pair, query_of, sign_in_page_request

# Real servers on sockets, one module's many requests: the slow tier (the rules' unit tests are fast).
pytestmark = pytest.mark.slow

REDIRECT = "https://bank.example/cb"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


class Bank:
    """A FAPI 2.0 app: its client_id and the private key of its registered public key."""

    def __init__(self, ctx, key=None, *, name: str = "Bank") -> None:
        self.key = key or ECKey.generate_key("P-256", parameters={"kid": "bank-1"})
        oidc = OidcClient(redirect_uris=(REDIRECT,), jwks=json.dumps({"keys": [self.key.as_dict(private=False)]}),
                          id_token_alg="ES256", profile="fapi2")
        self.credentials = apps.add_app(ctx, name=name, push_url=None, oidc=oidc)
        self.client_id = self.credentials.app.client_id

    def assertion(self, audience: object, *, alg: str | None = None, **claims: object) -> dict[str, str]:
        """The client authentication of one request: a fresh client assertion (60 s) to `audience`."""
        now = int(time.time())
        body = {"iss": self.client_id, "sub": self.client_id, "aud": audience, "jti": uuid.uuid4().hex,
                "iat": now, "nbf": now, "exp": now + 60, **claims}
        alg = alg or ("ES256" if isinstance(self.key, ECKey) else "PS256")
        signed = jwt.encode(body, self.key.as_pem(private=True), algorithm=alg, headers={"kid": self.key.kid})
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": signed}


def _request(bank: Bank, **extra: str) -> tuple[dict[str, str], str]:
    """An authorization request's parameters (PKCE S256, state, nonce), and its code_verifier."""
    verifier, challenge = pkce_pair()
    return {"response_type": "code", "client_id": bank.client_id, "redirect_uri": REDIRECT,
            "scope": "openid offline_access", "state": "st-1", "nonce": "n-1", "code_challenge": challenge,
            "code_challenge_method": "S256", **extra}, verifier


def _push(url: str, bank: Bank, params: dict[str, str], *, auth: dict[str, str] | None = None,
          headers: dict[str, str] | None = None) -> requests.Response:
    body = {**params, **(auth if auth is not None else bank.assertion(url))}
    return requests.post(url + "/oidc/par", data=body, headers=headers or {}, timeout=10)


def _code(url: str, bank: Bank, device) -> tuple[str, str, dict[str, str]]:
    """(a code, its verifier, the callback's parameters): pushed, then the device's browser signs in."""
    params, verifier = _request(bank)
    pushed = _push(url, bank, params)
    assert pushed.status_code == 201, pushed.text
    presented = authorize_url(url, client_id=bank.client_id, request_uri=pushed.json()["request_uri"])
    callback = query_of(finish_as_device(device, sign_in_page_request(presented, browser=device)))
    return callback["code"], verifier, callback


def _token(url: str, bank: Bank, form: dict[str, str], *, dpop_key=None, auth: dict[str, str] | None = None):
    headers = {"DPoP": dpop_proof(dpop_key, method="POST", url=url + "/oidc/token")} if dpop_key else {}
    body = {**form, **(auth if auth is not None else bank.assertion(url))}
    return requests.post(url + "/oidc/token", data=body, headers=headers, timeout=10)


def _redeem(url: str, bank: Bank, code: str, verifier: str, **options) -> requests.Response:
    return _token(url, bank, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                              "code_verifier": verifier}, **options)


def _refresh(url: str, bank: Bank, refresh_token: str, **options) -> requests.Response:
    return _token(url, bank, {"grant_type": "refresh_token", "refresh_token": refresh_token}, **options)


def _userinfo(url: str, access_token: str, key) -> requests.Response:
    return requests.get(url + "/oidc/userinfo", timeout=10, headers={
        "Authorization": f"DPoP {access_token}",
        "DPoP": dpop_proof(key, method="GET", url=url + "/oidc/userinfo", access_token=access_token)})


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _signed_in(url: str):
    device = register_device(url)
    device.login(PASSWORD)
    return device


def test_a_fapi2_app_signs_in_through_par_and_its_key_and_keeps_its_refresh_token(provider):
    url, ctx = provider
    bank, device = Bank(ctx), _signed_in(url)
    metadata = requests.get(url + "/.well-known/openid-configuration", timeout=10).json()
    assert {"PS256", "ES256", "EdDSA"} <= set(metadata["token_endpoint_auth_signing_alg_values_supported"])
    assert {"ES256", "EdDSA"} <= set(metadata["dpop_signing_alg_values_supported"])
    assert metadata["authorization_response_iss_parameter_supported"] is True

    params, verifier = _request(bank)
    pushed = _push(url, bank, params)
    assert pushed.status_code == 201 and pushed.json()["expires_in"] < 600, pushed.text   # §5.3.2.2-12
    presented = authorize_url(url, client_id=bank.client_id, request_uri=pushed.json()["request_uri"])
    # §5.3.2.2-10/11: the browser goes to the sign-in page by a 303, never a 307 (sign_in_page_request)
    callback = query_of(finish_as_device(device, sign_in_page_request(presented, browser=device)))
    assert callback["iss"] == url and callback["state"] == "st-1"            # §5.3.2.2-7
    ring = ctx.refresh_secrets
    sealed = codes.opened(ring, callback["code"], now=int(time.time()))
    assert sealed is not None and codes.opened(ring, callback["code"], now=sealed.issued_ms // 1000 + 61) is None

    key = generate_key()
    issued = _redeem(url, bank, callback["code"], verifier, dpop_key=key)
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    assert tokens["token_type"] == "DPoP" and _claims(tokens["access_token"])["cnf"] == {"jkt": key_thumbprint(
        key.public_key())}
    assert jwt.get_unverified_header(tokens["id_token"])["alg"] == "ES256"
    assert _userinfo(url, tokens["access_token"], key).json()["sub"] == device.key_file.user_uuid

    # The refresh token is kept (§5.3.2.1-10); bound to the client, not to a DPoP key (RFC 9449 §5): a
    # refresh proving another key gets an access token bound to that one
    other_key = generate_key("ed25519")
    refreshed = _refresh(url, bank, tokens["refresh_token"], dpop_key=other_key)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["refresh_token"] == tokens["refresh_token"]
    access = _claims(refreshed.json()["access_token"])
    assert access["cnf"] == {"jkt": key_thumbprint(other_key.public_key())}
    assert access["jti"] != _claims(tokens["access_token"])["jti"]
    assert _userinfo(url, refreshed.json()["access_token"], other_key).status_code == 200
    # a client that lost that answer retries with the token it holds, long after any reuse grace
    again = _refresh(url, bank, tokens["refresh_token"], dpop_key=key)
    assert again.status_code == 200 and again.json()["refresh_token"] == tokens["refresh_token"], again.text
    assert _userinfo(url, refreshed.json()["access_token"], other_key).status_code == 200   # the grant goes on

    # §5.3.2.2-9: the code works once; used again it gives nothing and revokes what it gave
    replayed = _redeem(url, bank, callback["code"], verifier, dpop_key=key)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert _refresh(url, bank, tokens["refresh_token"], dpop_key=key).json()["error"] == "invalid_grant"


def test_an_authorization_request_without_par_goes_back_with_invalid_request_and_iss(provider):
    url, ctx = provider
    bank = Bank(ctx)
    params, _ = _request(bank)
    direct = requests.get(authorize_url(url, **params), allow_redirects=False, timeout=10)
    assert direct.status_code == 303 and direct.headers["Location"].startswith(REDIRECT)
    answer = query_of(direct.headers["Location"])
    assert (answer["error"], answer["state"], answer["iss"]) == ("invalid_request", "st-1", url)


@pytest.mark.parametrize("change, error", [
    ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),       # §5.3.2.2-5
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"response_type": "code id_token"}, "unsupported_response_type"),                  # §5.3.2.2-1
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"redirect_uri": None}, "invalid_request"),                                        # §5.3.2.2-6
    ({"redirect_uri": "http://bank.example/cb"}, "invalid_request"),
    ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "invalid_request"),
])
def test_a_push_that_breaks_the_profile_is_refused_as_json(provider, change, error):
    url, ctx = provider
    bank = Bank(ctx)
    params, _ = _request(bank)
    params = {name: value for name, value in {**params, **change}.items() if value is not None}
    refused = _push(url, bank, params)
    assert refused.status_code == 400 and refused.json()["error"] == error, refused.text
    assert "Location" not in refused.headers


def test_a_fapi2_app_authenticates_with_its_key_alone(provider):
    """§5.3.2.1-6: private_key_jwt, never the secret every app holds for introspection, nor no client
    authentication at all (§5.3.2.2-4)."""
    url, ctx = provider
    bank = Bank(ctx)
    params, _ = _request(bank)
    with_secret = requests.post(url + "/oidc/par", data=params, timeout=10,
                                auth=(bank.client_id, bank.credentials.client_secret))
    assert with_secret.status_code == 401 and with_secret.json()["error"] == "invalid_client"
    anonymous = _push(url, bank, params, auth={})
    assert anonymous.status_code in (400, 401) and anonymous.json()["error"] == "invalid_client"


@pytest.mark.parametrize("audience", ["/oidc/par", "/oidc/token", ["", "/oidc/token"], [""], "/", "", "HTTP"],
                         ids=["par-endpoint", "token-endpoint", "array-with-issuer", "array-of-issuer",
                              "trailing-slash", "no-issuer", "other-case"])
def test_a_client_assertion_is_for_the_issuer_as_a_string(provider, audience):
    """§5.3.2.1-8 (final): the PAR and token endpoints' URLs and arrays, the issuer among them, are refused
    (the suite's fapi2-security-profile-final-par-test-*-as-audience-fails); the issuer itself counts."""
    url, ctx = provider
    bank = Bank(ctx)

    def written(value: str) -> str:
        return url.upper() if value == "HTTP" else (url if value == "" and audience != "" else url + value)
    aud = [written(value) for value in audience] if isinstance(audience, list) else written(audience)
    if audience == "":
        aud = "https://another.example"
    params, _ = _request(bank)
    refused = _push(url, bank, params, auth=bank.assertion(aud))
    assert refused.status_code in (400, 401) and refused.json()["error"] == "invalid_client", (aud, refused.text)
    assert _push(url, bank, params, auth=bank.assertion(url)).status_code == 201


def test_other_apps_keep_the_audiences_rfc_7523_allows(provider):
    """Only a FAPI 2.0 app is held to the issuer: an app with keys alone still names the PAR endpoint."""
    url, ctx = provider
    key = ECKey.generate_key("P-256", parameters={"kid": "k"})
    plain = apps.add_app(ctx, name="Plain", push_url=None, oidc=OidcClient(
        redirect_uris=(REDIRECT,), jwks=json.dumps({"keys": [key.as_dict(private=False)]})))
    bank = Bank(ctx, key)
    bank.client_id = plain.app.client_id
    params, _ = _request(bank)
    assert _push(url, bank, params, auth=bank.assertion(url + "/oidc/par")).status_code == 201


def test_a_client_assertions_times_are_held_to_the_profiles_clock_skew(provider):
    """§5.3.2.1-14: iat and nbf 8 s ahead are accepted, over 60 s ahead refused (the suite's par-ensure-jwt-
    client-assertions-nbf-*); an exp 5 minutes past is refused at the token endpoint."""
    url, ctx = provider
    bank, device = Bank(ctx), _signed_in(url)
    now = int(time.time())
    params, _ = _request(bank)
    ahead = _push(url, bank, params, auth=bank.assertion(url, iat=now + 8, nbf=now + 8))
    assert ahead.status_code == 201, ahead.text
    too_far = _push(url, bank, params, auth=bank.assertion(url, iat=now + 62, nbf=now + 62, exp=now + 122))
    assert too_far.status_code in (400, 401) and too_far.json()["error"] == "invalid_client", too_far.text

    code, verifier, _ = _code(url, bank, device)
    expired = _redeem(url, bank, code, verifier, dpop_key=generate_key(), auth=bank.assertion(url, exp=now - 300))
    assert expired.status_code in (400, 401) and expired.json()["error"] in ("invalid_client", "invalid_request")
    assert _redeem(url, bank, code, verifier, dpop_key=generate_key()).status_code == 200   # the code was left


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_an_rs256_client_assertion_is_refused_and_ps256_counts(provider):
    """§5.4-1 (the suite's ensure-signed-client-assertion-with-RS256-fails): the same RSA key signing RS256
    authenticates nobody; PS256 does."""
    url, ctx = provider
    bank, device = Bank(ctx, RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})), _signed_in(url)
    code, verifier, _ = _code(url, bank, device)
    refused = _redeem(url, bank, code, verifier, dpop_key=generate_key(), auth=bank.assertion(url, alg="RS256"))
    assert refused.status_code in (400, 401) and refused.json()["error"] == "invalid_client", refused.text
    assert _redeem(url, bank, code, verifier, dpop_key=generate_key(), auth=bank.assertion(url, alg="PS256")) \
        .status_code == 200


def test_every_token_request_needs_a_dpop_proof_of_es256_or_eddsa(provider):
    """§5.3.2.1-4/5 and §5.4: without a proof, invalid_dpop_proof (the suite's ensure-holder-of-key-required
    and the refresh module accept it); an ML-DSA-87 proof, which citylogin's own sessions take, is no
    algorithm of FAPI 2.0's, at the token and the PAR endpoints. A refused attempt leaves the code."""
    url, ctx = provider
    bank, device = Bank(ctx), _signed_in(url)
    code, verifier, _ = _code(url, bank, device)
    bare = _redeem(url, bank, code, verifier)
    assert bare.status_code == 400 and bare.json()["error"] == "invalid_dpop_proof", bare.text
    post_quantum = _redeem(url, bank, code, verifier, dpop_key=generate_key("ml-dsa-87"))
    assert post_quantum.status_code == 400 and post_quantum.json()["error"] == "invalid_dpop_proof"
    issued = _redeem(url, bank, code, verifier, dpop_key=generate_key())
    assert issued.status_code == 200, issued.text
    refresh_token = issued.json()["refresh_token"]
    unproven = _refresh(url, bank, refresh_token)
    assert unproven.status_code == 400 and unproven.json()["error"] == "invalid_dpop_proof"

    params, _ = _request(bank)
    proof = dpop_proof(generate_key("ml-dsa-87"), method="POST", url=url + "/oidc/par")
    pushed = _push(url, bank, params, headers={"DPoP": proof})
    assert pushed.status_code == 400 and pushed.json()["error"] == "invalid_dpop_proof", pushed.text


def test_the_kept_refresh_token_is_the_clients_alone_and_parallel_uses_all_count(provider):
    """RFC 6749 §6 and RFC 9449 §5: the token refreshes only with its own client's authentication (not
    another FAPI 2.0 app's, not none); used by eight threads at once on DynamoDB Local, every use gets
    its own access token and the same refresh token, and the grant is not ended as a reuse."""
    url, ctx = provider
    bank, other, device = Bank(ctx), Bank(ctx, name="Other bank"), _signed_in(url)
    code, verifier, _ = _code(url, bank, device)
    refresh_token = _redeem(url, bank, code, verifier, dpop_key=generate_key()).json()["refresh_token"]
    foreign = _refresh(url, other, refresh_token, dpop_key=generate_key())
    assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_grant", foreign.text
    anonymous = _refresh(url, bank, refresh_token, dpop_key=generate_key(), auth={"client_id": bank.client_id})
    assert anonymous.status_code in (400, 401) and anonymous.json()["error"] == "invalid_client", anonymous.text

    barrier, answers = threading.Barrier(8), []

    def use() -> None:
        key = generate_key()
        barrier.wait()
        answers.append(_refresh(url, bank, refresh_token, dpop_key=key))
    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [answer.status_code for answer in answers] == [200] * 8, [answer.text for answer in answers]
    assert {answer.json()["refresh_token"] for answer in answers} == {refresh_token}
    assert len({_claims(answer.json()["access_token"])["jti"] for answer in answers}) == 8
    assert _refresh(url, bank, refresh_token, dpop_key=generate_key()).status_code == 200


def test_the_token_endpoint_answers_no_cors_to_a_fapi2_apps_origin(provider):
    """A FAPI 2.0 app is confidential: its pages never call the token endpoint (citylogin answers CORS to
    public clients' origins alone)."""
    url, ctx = provider
    Bank(ctx)
    preflight = requests.options(url + "/oidc/token", timeout=10, headers={
        "Origin": "https://bank.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_a_fapi2_app_gets_no_client_credentials_grant():
    """Its admin API tokens would be Bearer tokens (§5.3.2.1-4): refused at use, whatever was stored."""
    record = AppRecord(client_id="app_x", name="x", secret_digest="d", created_at="2025-01-01T00:00:00Z",
                       created_epoch=0, redirect_uris=[REDIRECT], admin_role="admin", profile="fapi2")
    assert not Client(app=record).check_grant_type("client_credentials")
    assert Client(app=dataclasses.replace(record, profile=None)).check_grant_type("client_credentials")
