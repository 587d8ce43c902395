"""Remembered consent (SPEC §14): an app added with --consent asks once per person and scopes; the
answer is kept, listed on the Account page and withdrawn there (the app's tokens of the person's live
sessions stop working); prompt=consent asks again, prompt=none never skips it; deletion erases it."""
from __future__ import annotations

import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from oidc.app_grants.consents import ConsentStore
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import query_of, waiting_request

REDIRECT = "https://diary.example/callback"


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


@pytest.fixture
def diary(provider):
    _, ctx = provider
    return apps.add_app(ctx, name="Diary", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,), consent=True))


def _request(url: str, client_id: str, *, browser, scope: str = "openid profile", **extra: str) -> tuple[str, str]:
    return waiting_request(url, client_id, redirect_uri=REDIRECT, browser=browser, scope=scope, state="st", **extra)


def _complete(device, request_id: str, *, consent: bool = False) -> requests.Response:
    return device.request("POST", "/oidc/authorize/complete", json={"request": request_id, "consent": consent})


def _tokens(url: str, diary, device, *, scope: str = "openid profile offline_access") -> dict:
    request_id, verifier = _request(url, diary.app.client_id, browser=device, scope=scope)
    finished = _complete(device, request_id, consent=True)
    assert finished.status_code == 200, finished.text
    code = query_of(finished.json()["redirect_to"])["code"]
    issued = requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": code,
                                                      "redirect_uri": REDIRECT, "code_verifier": verifier},
                           auth=(diary.app.client_id, diary.client_secret), timeout=10)
    assert issued.status_code == 200, issued.text
    return issued.json()


def test_consent_is_asked_once_then_remembered_for_the_same_or_fewer_scopes(provider, diary):
    url, _ = provider
    device = register_device(url)
    device.login(PASSWORD)
    request_id, _ = _request(url, diary.app.client_id, browser=device)
    asked = _complete(device, request_id)
    assert asked.status_code == 403 and asked.json()["code"] == "consent_required"
    allowed = _complete(device, request_id, consent=True)
    assert allowed.status_code == 200 and "code" in query_of(allowed.json()["redirect_to"])

    listed = device.get_json("/account/consents")["consents"]
    assert [(c["client_id"], c["client_name"], c["scopes"]) for c in listed] == \
        [(diary.app.client_id, "Diary", ["openid", "profile"])]

    for scope in ("openid profile", "openid"):         # remembered: straight back to the app
        request_id, _ = _request(url, diary.app.client_id, browser=device, scope=scope)
        again = _complete(device, request_id)
        assert again.status_code == 200 and "code" in query_of(again.json()["redirect_to"])

    request_id, _ = _request(url, diary.app.client_id, browser=device, scope="openid profile email")  # more: asked
    assert _complete(device, request_id).json()["code"] == "consent_required"
    assert _complete(device, request_id, consent=True).status_code == 200
    assert device.get_json("/account/consents")["consents"][0]["scopes"] == ["email", "openid", "profile"]


def test_prompt_consent_always_asks_and_prompt_none_never_skips_consent(provider, diary):
    url, _ = provider
    device = register_device(url)
    device.login(PASSWORD)
    request_id, _ = _request(url, diary.app.client_id, browser=device, prompt="none")
    silent = _complete(device, request_id)
    assert silent.status_code == 200
    assert query_of(silent.json()["redirect_to"]) == {"error": "consent_required", "state": "st", "iss": url}

    request_id, _ = _request(url, diary.app.client_id, browser=device)
    assert _complete(device, request_id, consent=True).status_code == 200
    request_id, _ = _request(url, diary.app.client_id, browser=device, prompt="consent")
    assert _complete(device, request_id).json()["code"] == "consent_required"
    request_id, _ = _request(url, diary.app.client_id, browser=device, prompt="none")  # remembered: no page
    assert "code" in query_of(_complete(device, request_id).json()["redirect_to"])


def test_withdrawing_consent_stops_the_apps_tokens_and_asks_again(provider, diary):
    url, _ = provider
    device = register_device(url)
    device.login(PASSWORD)
    tokens = _tokens(url, diary, device)
    assert requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                        timeout=10).status_code == 200

    stranger = register_device(url)
    stranger.login(PASSWORD)
    assert stranger.request("DELETE", f"/account/consents/{diary.app.client_id}").json()["code"] == \
        "consent_not_found"                             # one person cannot withdraw another's
    assert stranger.get_json("/account/consents") == {"consents": []}

    withdrawn = device.request("DELETE", f"/account/consents/{diary.app.client_id}")
    assert withdrawn.status_code == 204
    assert device.get_json("/account/consents") == {"consents": []}
    assert requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                        timeout=10).status_code == 401
    renewed = requests.post(url + "/oidc/token", data={"grant_type": "refresh_token",
                                                       "refresh_token": tokens["refresh_token"]},
                            auth=(diary.app.client_id, diary.client_secret), timeout=10)
    assert renewed.status_code == 400 and renewed.json()["error"] == "invalid_grant"
    assert device.me()["session_id"]                    # the person's own session goes on

    request_id, _ = _request(url, diary.app.client_id, browser=device)
    assert _complete(device, request_id).json()["code"] == "consent_required"
    gone = device.request("DELETE", f"/account/consents/{diary.app.client_id}")
    assert gone.status_code == 404 and gone.json()["code"] == "consent_not_found"


def test_deleting_the_account_erases_its_consents(provider, diary):
    url, ctx = provider
    device = register_device(url)
    device.login(PASSWORD)
    _tokens(url, diary, device)
    store = ConsentStore(ctx.dynamodb, ctx.tables.oidc_consents)
    user_uuid = device.key_file.user_uuid
    assert len(store.of_user(user_uuid)) == 1
    device.delete_account(PASSWORD)
    assert store.of_user(user_uuid) == []
