"""npm `openid-client` (unmodified, in its own Node process) registers itself with citylogin at its defaults
(`dynamicClientRegistration()`, RFC 7591, with an initial access token an operator made; SPEC §14), then a
person in Chromium signs in through the app it registered: citylogin's sign-in page, the consent an app that
registered itself asks for, and back at the app signed in, its refresh and userinfo working."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import requests
from playwright.sync_api import expect

from common import i18n
from relying_parties import registration_tokens
from relying_parties import service as apps
from tests.conftest import unique_name
from tests.oidc.test_openid_client import APP, INTEROP, require_node_clients
from tests.support.ports import free_port
from tests.support.services import running_process


@contextmanager
def registering_app(issuer: str, port: int, initial_access_token: str) -> Iterator[str]:
    """The Node app, registering itself at its start with the token in its environment (never its command line)."""
    argv = [require_node_clients(), str(APP), "--port", str(port), "--issuer", issuer, "--register"]
    with running_process(argv, port=port, env={"INITIAL_ACCESS_TOKEN": initial_access_token}, cwd=INTEROP) as url:
        yield url


def test_openid_client_registers_itself_and_a_person_signs_in_through_it(make_server, new_device):
    url, ctx = make_server(host_name="127.0.0.1")
    made = registration_tokens.make_token(ctx)
    with registering_app(url, free_port(), made.token) as app:
        registration = requests.get(app + "/registration", timeout=10).json()
        client_id = registration["client_id"]
        assert registration["registration_client_uri"] == f"{url}/oidc/register/{client_id}"
        registered = apps.show_app(ctx, client_id=client_id)
        assert (registered.name, registered.registered_with) == ("Node app", made.record.token_id)
        assert registration_tokens.store(ctx).get(made.record.token_id).uses_left == 0

        device = new_device(url)
        page = device.page
        page.goto(app + "/")
        page.locator("#sign-in").click()
        expect(page.locator("#oidc-for")).to_have_text("Sign in to continue to Node app")
        registered_itself = i18n.text("web.oidc.registered_itself", "en")
        expect(page.locator("#oidc-for-self-registered")).to_have_text(registered_itself)  # SPEC §14
        username = unique_name()
        device.fill_register_form(username, device_name="Laptop browser")
        device.save_recovery_codes()
        consent = page.locator("#consent-dialog")
        expect(consent).to_be_visible()
        expect(consent.locator("#consent-title")).to_contain_text("Node app")
        expect(consent.locator("#consent-title-self-registered")).to_have_text(registered_itself)
        consent.locator("#consent-allow").click()
        page.wait_for_selector("body[data-state=signed-in]")
        expect(page.locator("#who")).to_have_text(username)

        me = page.evaluate("async () => (await fetch('/me')).json()")
        assert me["signed_in"] and me["has_refresh"] and me["claims"]["aud"] == client_id
        refreshed = page.evaluate("async () => (await fetch('/refresh', {method: 'POST'})).json()")
        assert refreshed["rotated"] is True, refreshed
        userinfo = page.evaluate("async () => (await fetch('/userinfo')).json()")
        assert userinfo["status"] == 200 and userinfo["body"]["preferred_username"] == username
