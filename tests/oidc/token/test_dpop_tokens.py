"""DPoP for apps (SPEC §14 by §12's rules, RFC 9449): a proof at the token endpoint binds the access
token (cnf.jkt, token_type DPoP) and the refresh token to the app's key; userinfo then wants that key's
proof; a refresh without it, or with another key, gets nothing; a code bound by dpop_jkt (or by the
proof at PAR) is redeemed with that key only; a proof is spent once; --require-dpop apps get no token
without one."""
from __future__ import annotations

import jwt
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.client.keys import dpop_proof, generate_key
from common.crypto.dpop import key_thumbprint as public_key_thumbprint
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import authorize_url, code_for, finish_as_device, pkce_pair, query_of, sign_in_page_request

REDIRECT = "https://app.example/callback"


def key_thumbprint(private_key) -> str:
    return public_key_thumbprint(private_key.public_key())


def _app(ctx, **options):
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), **options))


def _code(url: str, credentials, device, **extra: str) -> tuple[str, str]:
    return code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope="openid offline_access",
                    **extra)


def _token(url: str, credentials, data: dict, key=None, proof: str | None = None) -> requests.Response:
    headers = {}
    if key is not None or proof is not None:
        headers["DPoP"] = proof or dpop_proof(key, method="POST", url=url + "/oidc/token")
    return requests.post(url + "/oidc/token", data=data, headers=headers,
                         auth=(credentials.app.client_id, credentials.client_secret), timeout=10)


def _redeem(url: str, credentials, code: str, verifier: str, key=None) -> requests.Response:
    return _token(url, credentials, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                     "code_verifier": verifier}, key)


def _userinfo(url: str, access_token: str, key=None, scheme: str = "DPoP") -> requests.Response:
    headers = {"Authorization": f"{scheme} {access_token}"}
    if key is not None:
        headers["DPoP"] = dpop_proof(key, method="GET", url=url + "/oidc/userinfo", access_token=access_token)
    return requests.get(url + "/oidc/userinfo", headers=headers, timeout=10)


def _device(url: str):
    device = register_device(url)
    device.login(PASSWORD)
    return device


def test_a_proof_at_the_token_endpoint_binds_both_tokens_to_the_apps_key(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = _app(ctx)
    device = _device(url)
    key, other_key = generate_key(), generate_key("ed25519")
    issued = _redeem(url, credentials, *_code(url, credentials, device), key=key)
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    assert tokens["token_type"] == "DPoP"
    assert jwt.decode(tokens["access_token"], options={"verify_signature": False})["cnf"] == \
        {"jkt": key_thumbprint(key)}

    assert _userinfo(url, tokens["access_token"], key).status_code == 200
    assert _userinfo(url, tokens["access_token"], scheme="Bearer").status_code == 401      # copied without the key
    assert _userinfo(url, tokens["access_token"], other_key).status_code == 401
    introspected = requests.post(url + "/session/introspect", data={"token": tokens["access_token"]},
                                 auth=(credentials.app.client_id, credentials.client_secret), timeout=10).json()
    assert introspected["token_type"] == "DPoP" and introspected["cnf"] == {"jkt": key_thumbprint(key)}

    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    without = _token(url, credentials, refresh)
    assert (without.status_code, without.json()["error"]) == (400, "invalid_dpop_proof")
    stolen = _token(url, credentials, refresh, other_key)
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    refreshed = _token(url, credentials, refresh, key)          # the refused tries rotated nothing
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["token_type"] == "DPoP"
    assert device.request("GET", "/session/me").status_code == 200


def test_a_code_bound_by_dpop_jkt_needs_that_key_and_a_proof_counts_once(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = _app(ctx)
    device = _device(url)
    key, other_key = generate_key(), generate_key()
    code, verifier = _code(url, credentials, device, dpop_jkt=key_thumbprint(key))
    assert _redeem(url, credentials, code, verifier).json()["error"] == "invalid_dpop_proof"
    code, verifier = _code(url, credentials, device, dpop_jkt=key_thumbprint(key))
    assert _redeem(url, credentials, code, verifier, other_key).json()["error"] == "invalid_grant"
    code, verifier = _code(url, credentials, device, dpop_jkt=key_thumbprint(key))
    proof = dpop_proof(key, method="POST", url=url + "/oidc/token")
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    assert _token(url, credentials, data, proof=proof).status_code == 200
    replayed = _token(url, credentials, {**data, "code": "x" * 43}, proof=proof)
    assert (replayed.status_code, replayed.json()["error"]) == (400, "invalid_dpop_proof")
    for bad in ("not-a-proof", dpop_proof(key, method="GET", url=url + "/oidc/token"),
                dpop_proof(key, method="POST", url=url + "/oidc/userinfo"),
                dpop_proof(key, method="POST", url=url + "/oidc/token", now=0)):
        refused = _token(url, credentials, data, proof=bad)
        assert refused.status_code == 400 and refused.json()["error"] in ("invalid_dpop_proof", "use_dpop_nonce")

    malformed = requests.get(authorize_url(url, response_type="code", client_id=credentials.app.client_id,
                                           redirect_uri=REDIRECT, scope="openid", code_challenge=pkce_pair()[1],
                                           code_challenge_method="S256", dpop_jkt="not a thumbprint"),
                             allow_redirects=False, timeout=10)
    assert query_of(malformed.headers["Location"])["error"] == "invalid_request"


def test_a_proof_at_par_binds_the_code_and_require_dpop_refuses_bearer(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = _app(ctx, require_dpop=True)
    device = _device(url)
    key = generate_key()
    verifier, challenge = pkce_pair()
    pushed = requests.post(url + "/oidc/par", data={
        "response_type": "code", "client_id": credentials.app.client_id, "redirect_uri": REDIRECT, "scope": "openid",
        "code_challenge": challenge, "code_challenge_method": "S256"},
        headers={"DPoP": dpop_proof(key, method="POST", url=url + "/oidc/par")},
        auth=(credentials.app.client_id, credentials.client_secret), timeout=10)
    assert pushed.status_code == 201, pushed.text
    presented = authorize_url(url, client_id=credentials.app.client_id, request_uri=pushed.json()["request_uri"])
    code = query_of(finish_as_device(device, sign_in_page_request(presented, browser=device)))["code"]
    assert _redeem(url, credentials, code, verifier, generate_key()).json()["error"] == "invalid_grant"

    code, verifier = _code(url, credentials, device)
    bearer = _redeem(url, credentials, code, verifier)
    assert (bearer.status_code, bearer.json()["error"]) == (400, "invalid_dpop_proof")
    code, verifier = _code(url, credentials, device)
    assert _redeem(url, credentials, code, verifier, key).json()["token_type"] == "DPoP"
