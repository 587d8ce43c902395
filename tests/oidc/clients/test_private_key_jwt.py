"""Apps that authenticate with a key (private_key_jwt, RFC 7523; SPEC §14): Authlib's unmodified client
signs its assertions; a replayed, foreign, HMAC-forged, mis-addressed or long-lived assertion, or the
secret of a key-registered app, authenticates nobody; one assertion raced by several requests on
DynamoDB Local authenticates one. `apps add --jwks` takes public keys only."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from click.testing import CliRunner
from joserfc.jwk import ECKey, RSAKey

from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.cli.main import main
from tests.conftest import unique_name
from tests.support.fixtures import cli_environment
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import code_for

REDIRECT = "https://app.example/callback"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


def _keyed_app(ctx, key):
    oidc = OidcClient(redirect_uris=(REDIRECT,), jwks=json.dumps({"keys": [key.as_dict(private=False)]}))
    return apps.add_app(ctx, name="Keyed", push_url=None, oidc=oidc)


def _assertion(key, client_id: str, audience: str, *, alg: str = "ES256", lifetime: int = 60, **claims) -> str:
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": audience, "jti": uuid.uuid4().hex, "iat": now,
            "exp": now + lifetime, **claims}
    return jwt.encode(body, key.as_pem(private=True), algorithm=alg, headers={"kid": key.kid})


def _hmac_forged(secret: bytes, claims: dict) -> str:
    """An HS256 JWT keyed with the app's public key's bytes: what an "alg confusion" forger sends."""
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _redeem(url: str, client_id: str, code: str, verifier: str, assertion: str) -> requests.Response:
    return requests.post(url + "/oidc/token", timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
        "client_id": client_id, "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})


def test_authlibs_client_redeems_a_code_with_its_private_key(provider):
    url, ctx = provider
    key = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    credentials = _keyed_app(ctx, key)
    metadata = requests.get(url + "/.well-known/openid-configuration", timeout=10).json()
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    assert "HS256" not in metadata["token_endpoint_auth_signing_alg_values_supported"]
    device = register_device(url)
    device.login(PASSWORD)
    code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT)
    session = OAuth2Session(credentials.app.client_id, key.as_pem(private=True),
                            token_endpoint_auth_method=PrivateKeyJWT(metadata["token_endpoint"]))
    token = session.fetch_token(metadata["token_endpoint"], grant_type="authorization_code", code=code,
                                redirect_uri=REDIRECT, code_verifier=verifier)
    assert token["id_token"] and jwt.decode(token["access_token"], options={"verify_signature": False})["sid"] == \
        device.session_id


def test_an_assertion_counts_once_and_only_from_the_registered_key(provider):
    url, ctx = provider
    key, other = (ECKey.generate_key("P-256", parameters={"kid": "k1"}) for _ in range(2))   # one kid, two keys
    credentials = _keyed_app(ctx, key)
    client_id, token_endpoint = credentials.app.client_id, url + "/oidc/token"
    device = register_device(url)
    device.login(PASSWORD)

    def refused(assertion: str) -> None:
        code, verifier = code_for(url, client_id, device, redirect_uri=REDIRECT)
        answer = _redeem(url, client_id, code, verifier, assertion)
        assert answer.status_code in (400, 401) and answer.json()["error"] == "invalid_client", answer.text

    refused(_assertion(other, client_id, token_endpoint))                    # not the app's key
    refused(_assertion(key, client_id, url + "/elsewhere"))                  # addressed to another server
    refused(_assertion(key, client_id, token_endpoint, lifetime=86400))      # lives too long
    refused(_assertion(key, client_id, token_endpoint, iss="app_someone"))   # iss is not the client
    refused(_hmac_forged(key.as_pem(private=False), {"iss": client_id, "sub": client_id, "aud": token_endpoint,
                                                     "jti": "j", "exp": int(time.time()) + 60}))   # alg confusion
    refused("not.a.jwt")
    code, verifier = code_for(url, client_id, device, redirect_uri=REDIRECT)
    plain = requests.post(token_endpoint, auth=(client_id, credentials.client_secret), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert plain.json()["error"] == "invalid_client"                         # its secret is not for this

    assertion = _assertion(key, client_id, url)                              # the issuer as audience
    code, verifier = code_for(url, client_id, device, redirect_uri=REDIRECT)
    assert _redeem(url, client_id, code, verifier, assertion).status_code == 200
    refused(assertion)                                                       # spent


def test_one_assertion_raced_at_the_revocation_endpoint_authenticates_one_request(provider):
    url, ctx = provider
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    client_id = _keyed_app(ctx, key).app.client_id
    assertion = _assertion(key, client_id, url + "/oidc/revoke")
    barrier, statuses = threading.Barrier(8), []

    def revoke() -> None:
        barrier.wait()
        answer = requests.post(url + "/oidc/revoke", timeout=30, data={
            "token": "whatever", "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=revoke) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [400] * 7, statuses   # invalid_client (RFC 6749 §5.2: no Basic, no 401)


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_apps_add_takes_a_jwks_file_of_public_keys_only(make_server, base_config, tmp_path):
    # Own tables: the module's key ring is sealed under the data directory's key-encryption key.
    kek, config = base64.b64encode(os.urandom(32)).decode(), {**base_config, "table_prefix": unique_name("jwks") + "_"}
    make_server(key_encryption_key=kek, table_prefix=config["table_prefix"])
    env = cli_environment(config, kek=kek, data_dir=str(tmp_path))
    key = ECKey.generate_key("P-256", parameters={"kid": "k1"})

    def add(jwks: dict | str, *more: str):
        path = tmp_path / f"{uuid.uuid4().hex}.json"
        path.write_text(jwks if isinstance(jwks, str) else json.dumps(jwks))
        return CliRunner().invoke(main, ["apps", "add", "Keyed", "--redirect-uri", REDIRECT, "--jwks", str(path),
                                         "--json", *more], env=env)

    added = add({"keys": [key.as_dict(private=False)]})
    assert added.exit_code == 0, added.output
    shown = json.loads(added.stdout)
    assert shown["token_endpoint_auth_method"] == "private_key_jwt" and shown["jwks"]["keys"][0]["kid"] == "k1"
    for bad, why in (({"keys": [key.as_dict(private=True)]}, "private"),
                     ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "kty"),
                     ({"keys": [RSAKey.generate_key(1024).as_dict(private=False)]}, "2048"),
                     ({"keys": []}, "1 to"), ("{", "json")):
        refused = add(bad)
        assert refused.exit_code != 0 and why in refused.output.lower() and "Traceback" not in refused.output
    assert "--public" in add({"keys": [key.as_dict(private=False)]}, "--public").output
