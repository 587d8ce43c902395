"""RP-Initiated Logout (SPEC §14): an app sends the browser to /oidc/logout. An `id_token_hint` citylogin
issued proves the request: the session it names ends at once (userinfo refuses the app's token, the
device's own token is refused) and the browser goes back to the app's registered post-logout URI with
its `state`. An unregistered URI is never followed, a forged or foreign hint is an error page, and
without a hint the web UI asks the person first."""
from __future__ import annotations

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from apps import service as apps
from apps.models import OidcClient
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import signed_in_tokens

REDIRECT = "https://app.example/callback"
AFTER_LOGOUT = "https://app.example/signed-out"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


def _app(ctx):
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(
        redirect_uris=(REDIRECT,), post_logout_redirect_uris=(AFTER_LOGOUT,)))


def _signed_in(url: str, credentials, device) -> dict:
    return signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT)


def _logout(url: str, **params: str) -> requests.Response:
    return requests.get(url + "/oidc/logout", params=params, allow_redirects=False, timeout=10)


def _userinfo(url: str, access_token: str) -> int:
    return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=10).status_code


def test_a_proven_logout_ends_the_session_and_returns_to_the_registered_uri_with_state(provider):
    url, ctx = provider
    credentials = _app(ctx)
    device = register_device(url)
    device.login(PASSWORD)
    tokens = _signed_in(url, credentials, device)

    answer = _logout(url, id_token_hint=tokens["id_token"], post_logout_redirect_uri=AFTER_LOGOUT, state="s-9",
                     client_id=credentials.app.client_id)
    assert answer.status_code in (302, 303), answer.text
    assert answer.headers["Location"] == AFTER_LOGOUT + "?state=s-9"
    assert _userinfo(url, tokens["access_token"]) == 401
    me = device.request("GET", "/session/me")
    assert me.status_code == 401 and me.json()["reason"] == "logged_out"

    # the same hint again (the session is over already): no harm, and still back to the app
    again = _logout(url, id_token_hint=tokens["id_token"], post_logout_redirect_uri=AFTER_LOGOUT)
    assert again.headers["Location"] == AFTER_LOGOUT


def test_an_unregistered_uri_is_never_followed_and_a_bad_hint_is_an_error_page(provider):
    url, ctx = provider
    credentials, other = _app(ctx), _app(ctx)
    device = register_device(url)
    device.login(PASSWORD)
    tokens = _signed_in(url, credentials, device)

    # an open redirect through the logout: the session ends (the hint proves it), the browser stays here
    elsewhere = _logout(url, id_token_hint=tokens["id_token"], post_logout_redirect_uri="https://evil.example/")
    assert elsewhere.headers["Location"] == url + "/#oidc-logout=done"

    device.login(PASSWORD)
    tokens = _signed_in(url, credentials, device)
    header = jwt.get_unverified_header(tokens["id_token"])
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    forged = jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048),
                        algorithm="RS256", headers={"kid": header["kid"]})
    for bad in ({"id_token_hint": forged}, {"id_token_hint": "not.a.jwt"},
                {"id_token_hint": tokens["id_token"], "client_id": other.app.client_id},
                {"id_token_hint": tokens["access_token"]}):
        refused = _logout(url, post_logout_redirect_uri=AFTER_LOGOUT, **bad)
        assert refused.status_code == 400 and "Location" not in refused.headers, (bad, refused.text)
        assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert device.request("GET", "/session/me").status_code == 200


def test_without_a_hint_the_web_ui_asks_first_and_nothing_ends_here(provider):
    url, ctx = provider
    credentials = _app(ctx)
    device = register_device(url)
    device.login(PASSWORD)
    _signed_in(url, credentials, device)
    answer = _logout(url, client_id=credentials.app.client_id, post_logout_redirect_uri=AFTER_LOGOUT)
    assert answer.headers["Location"] == url + "/#oidc-logout"
    assert device.request("GET", "/session/me").status_code == 200
    posted = requests.post(url + "/oidc/logout", data={"client_id": credentials.app.client_id},
                           allow_redirects=False, timeout=10)
    assert posted.headers["Location"] == url + "/#oidc-logout"
