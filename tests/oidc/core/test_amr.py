"""The ID token's `amr` says how the citylogin session's login was made (SPEC §14, RFC 8176): the device
key always (`hwk`), with the password (`pwd`) or a passkey (`pop`, `user`), also when the login went
through the in-use dialog's confirm."""
from __future__ import annotations

import jwt
import pytest

from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.client.errors import ConcurrentLoginRequired
from tests.accounts.test_passkeys import PUBLIC_URL, add_passkey, assertion
from tests.support.live import PASSWORD, add_device, register_device
from tests.support.oidc import signed_in_tokens
from tests.support.soft_authenticator import SoftAuthenticator

REDIRECT = "https://app.example/callback"


def _amr(url: str, credentials, device) -> list[str]:
    id_token = signed_in_tokens(url, credentials, device, redirect_uri=REDIRECT)["id_token"]
    return jwt.decode(id_token, options={"verify_signature": False})["amr"]


@pytest.mark.parametrize("through_confirm", [False, True], ids=["login", "confirmed"])
def test_amr_is_the_password_or_the_passkey_with_the_device_key(make_server, through_confirm):
    url, ctx = make_server(public_url=PUBLIC_URL, max_concurrent_devices=1)
    credentials = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    device = register_device(url)
    device.login(PASSWORD)
    assert _amr(url, credentials, device) == ["hwk", "pwd"]

    authenticator = SoftAuthenticator(PUBLIC_URL)
    add_passkey(device, authenticator)
    device.logout()
    if through_confirm:
        add_device(ctx, device, name="Phone").login(PASSWORD)
        with pytest.raises(ConcurrentLoginRequired) as asked:
            device.login(passkey=assertion(device, authenticator))
        device.confirm(asked.value.confirm_token)
    else:
        device.login(passkey=assertion(device, authenticator))
    assert _amr(url, credentials, device) == ["hwk", "pop", "user"]
