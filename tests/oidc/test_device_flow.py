"""The device authorization grant over HTTP (RFC 8628, SPEC §14): a screen asks, the person approves on a
signed-in device, the screen's next poll gets the tokens of a session of its own, once."""
from __future__ import annotations

import jwt
import pytest
import requests

from tests.support.device_flow import ask, poll, screen_app
from tests.support.live import register_device


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1", device_poll_interval=1)


def _approve(device, user_code: str, *, name: str = "Living-room TV", force: bool = False) -> requests.Response:
    return device.request("POST", "/oidc/device/approve",
                          json={"user_code": user_code, "device_name": name, "force": force})


def test_an_approved_screen_gets_the_tokens_of_its_own_session_once(provider):
    url, ctx = provider
    credentials = screen_app(ctx)
    asked = ask(url, credentials)
    assert asked.status_code == 200, asked.text
    answer = asked.json()
    assert answer["verification_uri"] == url + "/device"
    assert answer["verification_uri_complete"] == f"{url}/device?user_code={answer['user_code']}"
    assert answer["interval"] == 1 and answer["expires_in"] == 600
    pending = poll(url, credentials, answer["device_code"])
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"

    phone = register_device(url)
    phone.login("correct horse battery staple", force=True)
    looked = requests.post(url + "/oidc/device/lookup", json={"user_code": answer["user_code"].lower()}, timeout=30)
    assert looked.status_code == 200, looked.text
    assert looked.json()["client_name"] == "Living-room TV app" and looked.json()["device_class"] == "tv"
    approved = _approve(phone, answer["user_code"].replace("-", ""), force=True)
    assert approved.status_code == 200, approved.text
    screen_session = approved.json()["session_id"]

    issued = poll(url, credentials, answer["device_code"])
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    assert tokens["refresh_token"] and tokens["token_type"] == "Bearer"
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["sid"] == screen_session and claims["sub"] == phone.key_file.user_uuid
    userinfo = requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                            timeout=30)
    assert userinfo.status_code == 200 and userinfo.json()["preferred_username"] == phone.key_file.username
    again = poll(url, credentials, answer["device_code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
