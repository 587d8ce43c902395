"""No e-mail probing through apps (SPEC §14 Userinfo): an app is told an address only once the account
holds it verified. An account that registered with an address another account holds, and one with a
free address it has not verified, look the same at userinfo and in the ID token; a verified one is told."""
from __future__ import annotations

import jwt
import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.client.api import Client
from tests.conftest import unique_name
from tests.support.live import PASSWORD, verify_address
from tests.support.oidc import signed_in_tokens

REDIRECT = "https://notes.example/callback"
EMAIL_SCOPES = "openid profile email"


@pytest.fixture
def provider(make_server):
    url, ctx = make_server(host_name="127.0.0.1")
    credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    return url, ctx, credentials


def _registered(url: str, email: str) -> Client:
    client = Client(url)
    client.register(username=unique_name(), email=email, password=PASSWORD)
    client.login(PASSWORD)
    return client


def _told(url: str, credentials, device: Client) -> tuple[dict, dict]:
    """What the app learns of the device's person: (userinfo, ID token claims)."""
    issued = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT, scope=EMAIL_SCOPES)
    userinfo = requests.get(url + "/oidc/userinfo", timeout=10,
                            headers={"Authorization": "Bearer " + issued["access_token"]})
    assert userinfo.status_code == 200, userinfo.text
    id_token = jwt.decode(issued["id_token"], options={"verify_signature": False})
    return userinfo.json(), id_token


def test_a_held_address_and_a_free_unverified_one_look_the_same_to_an_app(provider):
    url, ctx, credentials = provider
    taken = f"{unique_name('held')}@example.com"
    holder = _registered(url, taken)
    verify_address(ctx, user_uuid=holder.require_key_file().user_uuid)
    second_of_held = _registered(url, taken.upper())  # 201 all the same: the address is not claimed
    free_unverified = _registered(url, f"{unique_name('free')}@example.com")

    told = [_told(url, credentials, device) for device in (second_of_held, free_unverified)]
    for userinfo, id_token in told:
        assert "email" not in userinfo and "email_verified" not in userinfo, userinfo
        assert "email" not in id_token and "email_verified" not in id_token, id_token
    assert [sorted(userinfo) for userinfo, _ in told][0] == [sorted(userinfo) for userinfo, _ in told][1]
    assert [sorted(id_token) for _, id_token in told][0] == [sorted(id_token) for _, id_token in told][1]

    holder_userinfo, holder_id_token = _told(url, credentials, holder)
    assert holder_userinfo["email"] == taken and holder_userinfo["email_verified"] is True
    assert holder_id_token["email"] == taken


def test_an_address_is_told_once_its_owner_verified_it(provider):
    url, ctx, credentials = provider
    address = f"{unique_name('later')}@example.com"
    device = _registered(url, address)
    assert "email" not in _told(url, credentials, device)[0]
    verify_address(ctx, user_uuid=device.require_key_file().user_uuid)
    userinfo, _ = _told(url, credentials, device)
    assert userinfo["email"] == address and userinfo["email_verified"] is True
