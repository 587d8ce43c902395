"""One spelling per token, over HTTP (SPEC §14): an app's access token and citylogin's own, with padding
added or their signature's last character re-spelled to the same bytes, are refused by userinfo,
introspection and /session/me, while the issued text is accepted (the property tests, for citylogin's
decoder and the guard's: tests/common/keys/test_jwt_one_spelling.py)."""
from __future__ import annotations

import pytest
import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.common.keys.test_jwt_one_spelling import _same_bytes_other_spelling
from tests.support.live import PASSWORD, register_device
from tests.support.oidc import signed_in_tokens

REDIRECT = "https://app.example/callback"


def _spellings(token: str) -> list[str]:
    """Texts a lenient base64 decoder reads as the issued token's bytes."""
    standard = next((token.replace(a, b, 1) for a, b in (("_", "/"), ("-", "+")) if a in token), token + "===")
    return [token + "==", token + "=", _same_bytes_other_spelling(token, 2), standard]


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1")


def test_an_apps_access_token_has_one_spelling_at_userinfo_and_introspection(provider):
    url, ctx = provider
    credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    device = register_device(url)
    device.login(PASSWORD)
    token = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT)["access_token"]

    def userinfo(text: str) -> int:
        return requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {text}"},
                            timeout=10).status_code

    def active(text: str) -> bool:
        return requests.post(url + "/session/introspect", data={"token": text}, timeout=10,
                             auth=(credentials.app.client_id, credentials.client_secret)).json()["active"]

    assert userinfo(token) == 200 and active(token) is True
    for spelled in _spellings(token):
        assert userinfo(spelled) == 401, spelled[-6:]
        assert active(spelled) is False, spelled[-6:]


def test_citylogins_own_access_token_has_one_spelling_at_session_me(provider):
    url, _ = provider
    device = register_device(url)
    device.login(PASSWORD)
    issued = device.access_token
    assert issued is not None and device.request("GET", "/session/me").status_code == 200
    for spelled in _spellings(issued):
        device.access_token = spelled  # its DPoP proof is made for this very text (ath)
        answer = device.request("GET", "/session/me")
        assert answer.status_code == 401 and answer.json()["code"] == "invalid_token", (spelled[-6:], answer.text)
    device.access_token = issued
    assert device.request("GET", "/session/me").status_code == 200
