"""Access-token checks on every protected request (SPEC §4 "Every protected request verifies the JWT",
§6 "JWT"): forged, foreign, expired and ended tokens are 401 with their code, never 500."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from citylogin.client.api import Client
from common.keys.jwt_keys import JwtKeyRing, SigningKey
from common.keys.ring import JWT, REFRESH, read_ring, rotate
from sessions.service import liveness
from tests.conftest import unique_name
from tests.support.fixtures import app_servers, bearer_problem
from tests.support.live import PASSWORD, FakeClock, on_clock, register_device

SESSION_CLAIMS = ("sub", "sid", "did", "jti")


@pytest.fixture
def logged_in(make_server):
    """(url, ctx, client): a fresh user's first device, logged in, on an app with the default settings."""
    url, ctx = make_server()
    client = register_device(url)
    client.login(PASSWORD)
    return url, ctx, client


# --- building tokens by hand ------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def payload_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def session_claims(token: str) -> dict:
    """The claims naming the session, to be re-signed around it."""
    payload = payload_of(token)
    return {name: payload[name] for name in SESSION_CLAIMS}


def hs256_token(header: dict, payload: dict, secret: bytes) -> str:
    signing_input = f"{b64url_json(header)}.{b64url_json(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def server_ring(ctx, **overrides) -> JwtKeyRing:
    """A key ring over the server's own keys; issuer/audience as the server's unless overridden."""
    settings = ctx.settings
    return JwtKeyRing(server_keys(ctx),
                      issuer=overrides.get("issuer", settings.jwt_issuer),
                      audience=overrides.get("audience", settings.jwt_audience))


def server_keys(ctx) -> list[SigningKey]:
    return read_ring(ctx.key_ring).signing_keys()


def foreign_key(kid: str) -> SigningKey:
    return SigningKey(kid=kid, private_key=Ed25519PrivateKey.generate(), created_at=datetime.now(timezone.utc))


def me(url: str, token: str | None = None, *, by: Client | None = None, **headers: str) -> requests.Response:
    """GET /session/me with `token`: a bound token (issued to `by`) as DPoP with a fresh proof by
    `by`'s key; without `by`, as Bearer: the tokens built by hand here carry no cnf, so they are
    bearer tokens on purpose."""
    if token is not None and by is not None:
        headers["Authorization"] = f"DPoP {token}"
        headers["DPoP"] = by.proof("GET", url + "/session/me", access_token=token)
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(url + "/session/me", headers=headers, timeout=10)


def post_refresh(client: Client, url: str, refresh_token: str) -> requests.Response:
    """A raw refresh of the client's bound session, with a fresh proof by its key."""
    return requests.post(url + "/session/refresh", json={"refresh_token": refresh_token},
                         headers={"DPoP": client.proof("POST", url + "/session/refresh")}, timeout=10)


# --- tokens the server must accept (controls for the forgeries below) ------------------

def test_a_token_signed_with_the_server_keys_is_accepted(logged_in):
    url, ctx, client = logged_in
    token = server_ring(ctx).sign(session_claims(client.access_token), ttl_seconds=900, now=ctx.now())
    response = me(url, token)
    assert response.status_code == 200
    assert response.json()["session_id"] == client.session_id


def test_a_validly_signed_token_naming_another_users_session_is_refused(logged_in):
    url, ctx, client = logged_in
    other = register_device(url)
    other.login(PASSWORD)
    claims = {**session_claims(client.access_token), "sid": other.session_id}
    token = server_ring(ctx).sign(claims, ttl_seconds=900, now=ctx.now())
    assert bearer_problem(me(url, token))[:2] == (401, "invalid_token")


# --- forgeries (SPEC §6) -----------------------------------------------------------------

@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(logged_in, alg):
    url, _, client = logged_in
    header = {"alg": alg, "typ": "at+jwt", "kid": kid_of(client.access_token)}
    token = f"{b64url_json(header)}.{b64url_json(payload_of(client.access_token))}."
    assert bearer_problem(me(url, token))[:2] == (401, "invalid_token")


@pytest.mark.parametrize("secret_form", ["pem", "raw", "jwk_x"])
def test_hs256_keyed_with_the_public_key_is_refused(logged_in, secret_form):
    url, ctx, client = logged_in
    kid = kid_of(client.access_token)
    jwk = next(k for k in requests.get(url + "/.well-known/jwks.json", timeout=10).json()["keys"] if k["kid"] == kid)
    signing_key = next(k for k in server_keys(ctx) if k.kid == kid)
    public_key = signing_key.private_key.public_key()
    secret = {
        "pem": public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "raw": public_key.public_bytes_raw(),
        "jwk_x": jwk["x"].encode(),
    }[secret_form]
    token = hs256_token({"alg": "HS256", "typ": "at+jwt", "kid": kid}, payload_of(client.access_token), secret)
    assert bearer_problem(me(url, token))[:2] == (401, "invalid_token")


@pytest.mark.parametrize("issuer, audience", [("evil", None), (None, "evil"), ("evil", "evil")])
def test_wrong_issuer_or_audience_is_refused(logged_in, issuer, audience):
    url, ctx, client = logged_in
    overrides = {k: v for k, v in (("issuer", issuer), ("audience", audience)) if v}
    token = server_ring(ctx, **overrides).sign(session_claims(client.access_token), ttl_seconds=900, now=ctx.now())
    assert bearer_problem(me(url, token))[:2] == (401, "invalid_token")


def test_unknown_kid_is_refused(logged_in):
    url, ctx, client = logged_in
    ring = JwtKeyRing([foreign_key("20990101T000000000000Z-deadbeef")],
                      issuer=ctx.settings.jwt_issuer, audience=ctx.settings.jwt_audience)
    token = ring.sign(session_claims(client.access_token), ttl_seconds=900, now=ctx.now())
    assert bearer_problem(me(url, token))[:2] == (401, "invalid_token")


def test_known_kid_over_a_foreign_signature_is_refused(logged_in):
    url, ctx, client = logged_in
    ring = JwtKeyRing([foreign_key(kid_of(client.access_token))],
                      issuer=ctx.settings.jwt_issuer, audience=ctx.settings.jwt_audience)
    token = ring.sign(session_claims(client.access_token), ttl_seconds=900, now=ctx.now())
    assert bearer_problem(me(url, token))[:2] == (401, "invalid_token")


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer abc"},
    {"Authorization": "Bearer a.b.c"},
    {"Authorization": "Bearer " + b64url(b"[]") + ".e30.c2ln"},
    {"Authorization": "Bearer " + b64url_json({"alg": "EdDSA", "typ": "at+jwt", "kid": 7}) + ".e30.c2ln"},
    {"Authorization": "Bearer " + "x" * 4000},
], ids=["absent", "basic", "bearer-space", "bearer-only", "garbage", "three-garbage-parts",
        "header-not-object", "kid-not-string", "long"])
def test_missing_or_malformed_authorization_is_invalid_token(make_server, headers):
    url, _ = make_server()
    assert bearer_problem(requests.get(url + "/session/me", headers=headers, timeout=10))[:2] \
        == (401, "invalid_token")


# --- time and the session's end ----------------------------------------------------------

def test_expired_access_token_is_token_expired_and_the_client_refreshes(make_server):
    url, ctx = make_server()
    ctx.clock = clock = FakeClock()
    client = register_device(url)
    on_clock(clock, client)
    client.login(PASSWORD)
    expired = client.access_token
    clock.advance(ctx.settings.access_token_ttl + 1)  # the session itself is still within its idle timeout
    assert bearer_problem(me(url, expired, by=client))[:2] == (401, "token_expired")
    response = client.request("GET", "/session/me")
    assert response.status_code == 200
    assert client.access_token != expired
    assert response.json()["session_id"] == client.session_id


def test_token_of_a_logged_out_session_is_session_revoked(logged_in):
    url, _, client = logged_in
    token = client.access_token
    client.logout()
    assert bearer_problem(me(url, token, by=client)) == (401, "session_revoked", "logged_out")


def test_idle_session_is_revoked_with_idle_timeout(make_server):
    # An access token that outlives the idle timeout, so the session check is what refuses it.
    url, ctx = make_server(access_token_ttl=7200)
    ctx.clock = clock = FakeClock()
    client = register_device(url)
    on_clock(clock, client)
    client.login(PASSWORD)
    clock.advance(liveness(ctx.settings).idle_timeout + liveness(ctx.settings).touch_every + 1)
    assert bearer_problem(me(url, client.access_token, by=client)) == (401, "session_revoked", "idle_timeout")


def test_idle_session_cannot_be_refreshed_back_to_life(make_server):
    url, ctx = make_server()  # default: the access token (900 s) expires before the idle timeout (1800 s)
    ctx.clock = clock = FakeClock()
    client = register_device(url)
    on_clock(clock, client)
    client.login(PASSWORD)
    clock.advance(liveness(ctx.settings).idle_timeout + liveness(ctx.settings).touch_every + 1)
    # The client sees token_expired, refreshes, and the refresh says why the session is over.
    response = client.request("GET", "/session/me")
    assert bearer_problem(response) == (401, "session_revoked", "idle_timeout")


def test_active_session_ends_at_its_max_lifetime(make_server):
    url, ctx = make_server(session_idle_timeout=2000, session_max_lifetime=3600, access_token_ttl=86400)
    ctx.clock = clock = FakeClock()
    client = register_device(url)
    on_clock(clock, client)
    client.login(PASSWORD)
    clock.advance(1800)
    assert me(url, client.access_token, by=client).status_code == 200  # activity: the idle timer starts again
    clock.advance(1801)  # 3601 s after login, 1801 s after the last request
    # The token ends with its session (SPEC §11: an app checking tokens locally must not accept it).
    assert bearer_problem(me(url, client.access_token, by=client)) == (401, "token_expired", None)
    refused = post_refresh(client, url, client.refresh_token)
    assert bearer_problem(refused) == (401, "session_revoked", "max_lifetime")


# --- keys --------------------------------------------------------------------------------

def test_jwks_lists_the_signing_key_and_verifies_issued_tokens(logged_in):
    url, ctx, client = logged_in
    response = requests.get(url + "/.well-known/jwks.json", timeout=10)
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert kid_of(client.access_token) in [k["kid"] for k in keys]
    # Ed25519 signs access tokens; RSA and P-256 keys sign only OpenID Connect ID tokens.
    assert {(k["kty"], k.get("crv"), k["alg"]) for k in keys} == {
        ("OKP", "Ed25519", "EdDSA"), ("RSA", None, "RS256"), ("EC", "P-256", "ES256")}
    for key in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()  # public halves only
    jwk = next(k for k in keys if k["kid"] == kid_of(client.access_token))
    claims = jwt.decode(client.access_token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"],
                        audience=ctx.settings.jwt_audience, issuer=ctx.settings.jwt_issuer)
    assert claims["sid"] == client.session_id


def test_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(base_config, tmp_path):
    # Own key ring: the rotation must not change the keys other tests sign with. A new key signs
    # once it is a reload interval old (every process has read it by then): 1 s here.
    with app_servers({**base_config, "data_dir": str(tmp_path), "table_prefix": unique_name("rot") + "_",
                      "key_ring_reload_seconds": 1}) as start:
        url, ctx = start()
        client = register_device(url)
        client.login(PASSWORD)
        old_token = client.access_token
        old_kid = kid_of(old_token)

        new_kid = next(e.kid for e in rotate(ctx.key_ring) if e.kind == JWT)
        new_key = next(k for k in server_keys(ctx) if k.kid == new_kid)
        assert new_key.kid != old_kid
        assert me(url, old_token, by=client).status_code == 200

        # A token from another process that already signs with the new key: this app must reload
        # its keys for the unknown kid (at most once a second, hence the pause).
        time.sleep(1.1)
        newer = JwtKeyRing([new_key], issuer=ctx.settings.jwt_issuer, audience=ctx.settings.jwt_audience)
        assert me(url, newer.sign(session_claims(old_token), ttl_seconds=900, now=ctx.now())).status_code == 200
        old_app_kids = {k["kid"] for k in requests.get(url + "/.well-known/jwks.json", timeout=10).json()["keys"]}
        assert {old_kid, new_key.kid} <= old_app_kids

        # A process started after the rotation verifies the old key and, once the new key is a
        # reload interval old, signs with it (tokens carry whole seconds: allow one more).
        time.sleep(1.0)
        url2, _ = start()
        assert me(url2, old_token, by=client).status_code == 200
        kids = {k["kid"] for k in requests.get(url2 + "/.well-known/jwks.json", timeout=10).json()["keys"]}
        assert {old_kid, new_key.kid} <= kids
        second = Client(url2, key_file=client.key_file)
        second.login(PASSWORD)
        assert kid_of(second.access_token) == new_key.kid
        assert me(url, second.access_token, by=second).status_code == 200


def test_a_refresh_secret_rotation_logs_nobody_out_and_keeps_the_grace_twin(base_config, tmp_path):
    with app_servers({**base_config, "data_dir": str(tmp_path), "table_prefix": unique_name("grace") + "_",
                      "key_ring_reload_seconds": 0.5}) as start:
        url, ctx = start()
        client = register_device(url)
        client.login(PASSWORD)
        first = client.refresh_token
        second = client.refresh()["refresh_token"]
        new_kid = next(e.kid for e in rotate(ctx.key_ring) if e.kind == REFRESH)
        time.sleep(0.6)
        # Within the grace window the rotated-out token gets the same successor, made with the old secret.
        twin = post_refresh(client, url, first)
        assert twin.status_code == 200 and twin.json()["refresh_token"] == second
        third = client.refresh()["refresh_token"]
        assert third.split(".")[2] == new_kid != second.split(".")[2]
        assert me(url, client.access_token, by=client).status_code == 200
