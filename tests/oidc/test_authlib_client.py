"""Authlib's own OAuth 2.0 / OpenID Connect client, unmodified, against the provider (SPEC §14): it
reads the discovery document, builds the request with PKCE S256 and a nonce, redeems the code and
checks the ID token (signature from the JWKS, iss, aud, nonce, at_hash) as its Flask integration does,
reads userinfo and refreshes its token (the rotated refresh token replaces the one it held). The same
client in an app of its own process, through Chromium: tests/browser/test_oidc_sign_in.py."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc.jwk import KeySet
from joserfc import jwt as jose_jwt

from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.support.live import PASSWORD, register_device, verify_address
from tests.support.oidc import finish_as_device, sign_in_page_request, sign_out_as_device, sign_out_page_request

REDIRECT = "https://notes.example/callback"


def test_authlibs_client_signs_in_and_checks_the_id_token(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    device = register_device(url)
    verify_address(ctx, user_uuid=device.require_key_file().user_uuid)
    device.login(PASSWORD)
    metadata = requests.get(url + "/.well-known/openid-configuration", timeout=10).json()

    client = OAuth2Session(credentials.app.client_id, credentials.client_secret,
                           scope="openid profile email offline_access", redirect_uri=REDIRECT,
                           code_challenge_method="S256")
    verifier, nonce = generate_token(48), generate_token(20)
    uri, state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier,
                                                 nonce=nonce)
    callback = finish_as_device(device, sign_in_page_request(uri, browser=device))
    token = client.fetch_token(metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier)

    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    decoded = jose_jwt.decode(token["id_token"], keys, algorithms=metadata["id_token_signing_alg_values_supported"])
    claims = CodeIDToken(decoded.claims, decoded.header, params={"nonce": nonce, "access_token": token["access_token"]},
                         options={"iss": {"value": metadata["issuer"]}, "aud": {"value": credentials.app.client_id}})
    claims.validate()
    assert claims["sub"] == device.key_file.user_uuid and claims["preferred_username"] == device.key_file.username
    assert state in callback and f"iss={requests.utils.quote(url, safe='')}" in callback
    userinfo = client.get(metadata["userinfo_endpoint"]).json()
    assert userinfo["sub"] == device.key_file.user_uuid and userinfo["email"].endswith("@example.com")

    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(metadata["token_endpoint"])
    assert refreshed["refresh_token"] != first_refresh and client.token["refresh_token"] == refreshed["refresh_token"]
    assert client.get(metadata["userinfo_endpoint"]).json()["sub"] == device.key_file.user_uuid


def test_the_authlib_example_app_signs_in_refreshes_and_logs_out(make_server):
    """examples/oidc/authlib_app.py, the Authlib page's app as written (in-process, Flask's test client as
    the browser): it signs in with a refresh token (offline_access), the refresh rotates it, and its
    logout sends the browser to citylogin, where the device's proof ends the session and comes back."""
    url, ctx = make_server(host_name="127.0.0.1")
    here = "http://127.0.0.1:8000"
    credentials = apps.add_app(ctx, name="Authlib app", push_url=None, oidc=OidcClient(
        redirect_uris=(f"{here}/callback",), post_logout_redirect_uris=(f"{here}/",)))
    device = register_device(url)
    device.login(PASSWORD)
    example = _load_example("examples/oidc/authlib_app.py")
    browser = example.create_app(url, credentials.app.client_id, credentials.client_secret).test_client()

    login = browser.get("/login", base_url=here)
    assert login.status_code == 302 and "code_challenge_method=S256" in login.location
    callback = finish_as_device(device, sign_in_page_request(login.location, browser=device))
    assert browser.get(callback).status_code == 302
    home = browser.get("/me", base_url=here).get_json()
    assert home["signed_in"] and home["sid"] == device.session_id and home["has_refresh_token"]
    assert home["user"] == device.key_file.username
    page = browser.get("/", base_url=here).get_data(as_text=True)
    assert f'<strong id="who">{device.key_file.username}</strong>' in page and 'id="sign-out"' in page
    refreshed = browser.post("/refresh", base_url=here)
    assert refreshed.status_code == 200 and refreshed.get_json()["rotated"] is True

    logout = browser.post("/logout", base_url=here)
    assert logout.status_code == 302 and logout.location.startswith(url + "/oidc/logout?")
    kept = requests.get(logout.location, allow_redirects=False, timeout=10)
    ended = sign_out_as_device(url, device, sign_out_page_request(kept.headers["Location"]))
    assert ended.status_code == 200 and ended.json() == {"redirect_to": f"{here}/?state=signed-out"}
    assert device.request("GET", "/session/me").status_code == 401
    assert "Sign in with citylogin" in browser.get("/", base_url=here).get_data(as_text=True)
    assert browser.get("/me", base_url=here).get_json() == {"signed_in": False}


def _load_example(path: str):
    spec = importlib.util.spec_from_file_location("authlib_app", Path(__file__).resolve().parents[2] / path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
