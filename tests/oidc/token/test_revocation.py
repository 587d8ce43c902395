"""RFC 7009 revocation (SPEC §14): an app gives back its refresh or access token and the grant ends —
its refresh tokens at the token endpoint, its access tokens at userinfo and introspection — while the
citylogin session and other apps' grants on it live on. Another client's token cannot be revoked, and
anything unknown is a 200 that changes nothing."""
from __future__ import annotations

import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import signed_in_tokens

REDIRECT = "https://app.example/callback"


def _app(ctx):
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))


def _auth(credentials) -> tuple[str, str]:
    return credentials.app.client_id, credentials.client_secret


def _signed_in(url: str, credentials, device) -> dict:
    return signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope="openid offline_access")


def _revoke(url: str, credentials, token: str, **extra: str) -> requests.Response:
    return requests.post(url + "/oidc/revoke", data={"token": token, **extra}, auth=_auth(credentials), timeout=10)


def _userinfo(url: str, access_token: str) -> int:
    return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=10).status_code


def _introspected(url: str, credentials, token: str) -> bool:
    return requests.post(url + "/session/introspect", data={"token": token}, auth=_auth(credentials),
                         timeout=10).json()["active"]


def test_revoking_a_refresh_token_ends_the_apps_grant_and_nothing_else(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    notes, diary = _app(ctx), _app(ctx)
    device = register_device(url)
    device.login(PASSWORD)
    tokens, others = _signed_in(url, notes, device), _signed_in(url, diary, device)
    assert _introspected(url, notes, tokens["access_token"])

    revoked = _revoke(url, notes, tokens["refresh_token"], token_type_hint="refresh_token")
    assert revoked.status_code == 200, revoked.text
    refreshed = requests.post(url + "/oidc/token", data={"grant_type": "refresh_token",
                                                         "refresh_token": tokens["refresh_token"]},
                              auth=_auth(notes), timeout=10)
    assert (refreshed.status_code, refreshed.json()["error"]) == (400, "invalid_grant")
    assert _userinfo(url, tokens["access_token"]) == 401
    assert not _introspected(url, notes, tokens["access_token"])
    # the person's citylogin session and the other app's grant on it live on
    assert device.request("GET", "/session/me").status_code == 200
    assert _userinfo(url, others["access_token"]) == 200


def test_revoking_an_access_token_ends_the_grant_and_another_clients_token_is_refused(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    notes, other = _app(ctx), _app(ctx)
    device = register_device(url)
    device.login(PASSWORD)
    tokens = _signed_in(url, notes, device)

    stolen = _revoke(url, other, tokens["access_token"])
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    assert _userinfo(url, tokens["access_token"]) == 200

    for nothing in ("not-a-token", tokens["access_token"][:-3] + "xyz", device.access_token):
        assert _revoke(url, notes, nothing).status_code == 200   # RFC 7009 §2.2: nothing to do, still 200
    assert _userinfo(url, tokens["access_token"]) == 200
    assert device.request("GET", "/session/me").status_code == 200

    assert _revoke(url, notes, tokens["access_token"], token_type_hint="access_token").status_code == 200
    assert _userinfo(url, tokens["access_token"]) == 401
    refreshed = requests.post(url + "/oidc/token", data={"grant_type": "refresh_token",
                                                         "refresh_token": tokens["refresh_token"]},
                              auth=_auth(notes), timeout=10)
    assert refreshed.json()["error"] == "invalid_grant"

    unauthenticated = requests.post(url + "/oidc/revoke", data={"token": tokens["access_token"]}, timeout=10)
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"] == "invalid_client"
    assert requests.post(url + "/oidc/revoke", data={}, auth=_auth(notes), timeout=10).json()["error"] == \
        "invalid_request"
    assert _revoke(url, notes, "x", token_type_hint="id_token").json()["error"] == "unsupported_token_type"
