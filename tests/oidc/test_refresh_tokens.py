"""An app's refresh tokens (SPEC §14): given with offline_access (and always to a public client),
rotated on every use, a rotated-out one reused ends the whole session, only the client they were
issued to can use them, and none outlives the citylogin session. Two racers with one refresh token,
on DynamoDB Local through the real server: exactly one gets the successor."""
from __future__ import annotations

import threading

import pytest
import requests

from apps import service as apps
from apps.models import OidcClient
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import code_for

REDIRECT = "https://app.example/callback"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


def _app(ctx, **options):
    return apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), **options))


def _auth(credentials) -> dict:
    if credentials.client_secret:
        return {"auth": (credentials.app.client_id, credentials.client_secret)}
    return {"data_extra": {"client_id": credentials.app.client_id}}


def _post_token(url: str, credentials, data: dict) -> requests.Response:
    auth = _auth(credentials)
    return requests.post(url + "/oidc/token", data={**data, **auth.get("data_extra", {})}, auth=auth.get("auth"),
                         timeout=10)


def _signed_in(url: str, credentials, device, *, scope: str = "openid offline_access") -> dict:
    code, verifier = code_for(url, credentials.app.client_id, device, redirect_uri=REDIRECT, scope=scope)
    issued = _post_token(url, credentials, {"grant_type": "authorization_code", "code": code,
                                            "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert issued.status_code == 200, issued.text
    return issued.json()


def _refresh(url: str, credentials, refresh_token: str) -> requests.Response:
    return _post_token(url, credentials, {"grant_type": "refresh_token", "refresh_token": refresh_token})


def _userinfo(url: str, access_token: str) -> int:
    return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {access_token}"},
                        timeout=10).status_code


def _device(url: str):
    device = register_device(url)
    device.login(PASSWORD)
    return device


def test_offline_access_gives_a_refresh_token_that_rotates_and_a_reused_one_ends_the_session(provider):
    url, ctx = provider
    credentials = _app(ctx)
    device = _device(url)
    first = _signed_in(url, credentials, device)
    assert "refresh_token" in first and "id_token" in first

    second = _refresh(url, credentials, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert second.headers["Cache-Control"] == "no-store"
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"] and rotated["scope"] == "openid offline_access"
    assert _userinfo(url, rotated["access_token"]) == 200
    third = _refresh(url, credentials, rotated["refresh_token"])
    assert third.status_code == 200, third.text

    # The first token again: a copy, or a client that lost track. The whole session ends, everywhere.
    reused = _refresh(url, credentials, first["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert _userinfo(url, third.json()["access_token"]) == 401
    assert device.request("GET", "/session/me").status_code == 401
    assert _refresh(url, credentials, third.json()["refresh_token"]).json()["error"] == "invalid_grant"


def test_without_offline_access_a_confidential_client_gets_none_and_a_public_one_always(provider):
    url, ctx = provider
    device = _device(url)
    assert "refresh_token" not in _signed_in(url, _app(ctx), device, scope="openid")
    public = _app(ctx, public=True)
    tokens = _signed_in(url, public, device, scope="openid")
    assert _refresh(url, public, tokens["refresh_token"]).status_code == 200


def test_only_the_client_it_was_issued_to_can_use_it_and_a_forgery_is_refused(provider):
    url, ctx = provider
    credentials, other = _app(ctx), _app(ctx)
    device = _device(url)
    tokens = _signed_in(url, credentials, device)
    stolen = _refresh(url, other, tokens["refresh_token"])
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    session_id, client_id, grant_id, generation, kid, mac = tokens["refresh_token"].split(".")
    for forged in (f"{session_id}.{client_id}.{grant_id}.{int(generation) + 1}.{kid}.{mac}",
                   f"{session_id}.{other.app.client_id}.{grant_id}.{generation}.{kid}.{mac}",
                   tokens["refresh_token"][:-2] + "xx", "x" * 600, "a.b.c.d.e.f", "", "..."):
        refused = _refresh(url, credentials, forged)
        assert (refused.status_code, refused.json()["error"]) in ((400, "invalid_grant"), (400, "invalid_request"))
    # none of that counted as a use: the real token still rotates, and the session lives
    assert _refresh(url, credentials, tokens["refresh_token"]).status_code == 200
    assert device.request("GET", "/session/me").status_code == 200


def test_a_refresh_token_dies_with_the_session_and_with_a_new_grant(provider):
    url, ctx = provider
    credentials = _app(ctx)
    device = _device(url)
    earlier = _signed_in(url, credentials, device)
    later = _signed_in(url, credentials, device)      # the app signs in again: its earlier grant is replaced
    assert _refresh(url, credentials, earlier["refresh_token"]).json()["error"] == "invalid_grant"
    assert device.request("GET", "/session/me").status_code == 200   # not a reuse: a grant that is gone

    device.logout()
    ended = _refresh(url, credentials, later["refresh_token"])
    assert (ended.status_code, ended.json()["error"]) == (400, "invalid_grant")


def test_two_racers_with_one_refresh_token_one_wins(provider):
    url, ctx = provider
    credentials = _app(ctx)
    device = _device(url)
    tokens = _signed_in(url, credentials, device)
    barrier = threading.Barrier(4)
    answers: list[requests.Response] = []

    def race() -> None:
        barrier.wait()
        answers.append(_refresh(url, credentials, tokens["refresh_token"]))

    racers = [threading.Thread(target=race) for _ in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    winners = [a for a in answers if a.status_code == 200]
    assert len(winners) == 1, [(a.status_code, a.text) for a in answers]
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code != 200)
    assert len({w.json()["refresh_token"] for w in winners}) == 1
