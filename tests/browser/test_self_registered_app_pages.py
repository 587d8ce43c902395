"""An app that registered itself is said to have done so on the person's `/device` approval page (SPEC §14), in
English and Japanese at a phone's and a laptop's width, until an operator marks it verified; an operator's own
app is never marked. In Chromium against the all-in-one app on a socket."""
from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from common import i18n
from relying_parties import registration_tokens
from relying_parties import service as apps
from tests.browser.pages import DevicePage
from tests.conftest import unique_name
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
VIEWPORTS = {"390": {"width": 390, "height": 844}, "1280": {"width": 1280, "height": 800}}
LOCALES = {"en": "en-US", "ja": "ja-JP"}


def _registered_screen_app(url: str, ctx) -> str:
    made = registration_tokens.make_token(ctx, uses=1)
    answer = requests.post(url + "/oidc/register", timeout=10, headers={"Authorization": f"Bearer {made.token}"},
                           json={"client_name": "Rebus TV", "grant_types": [DEVICE_GRANT],
                                 "token_endpoint_auth_method": "none"})
    assert answer.status_code == 201, answer.text
    return answer.json()["client_id"]


def _user_code(url: str, client_id: str) -> str:
    answer = requests.post(url + "/oidc/device_authorization", data={"client_id": client_id, "scope": "openid"},
                           timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["user_code"]


def _shown(device, url: str, user_code: str) -> None:
    page = device.page
    page.goto(url + "/device")
    page.locator("#device-code").fill(user_code)
    page.keyboard.press("Enter")
    expect(page.locator("#device-approve-form")).to_be_visible()


@pytest.mark.parametrize(("locale", "width"), [("en", "1280"), ("ja", "390")])
def test_the_approval_page_says_an_app_registered_itself_until_an_operator_verifies_it(make_server, new_device,
                                                                                        screenshot, locale, width):
    url, ctx = make_server(host_name="127.0.0.1")
    client_id = _registered_screen_app(url, ctx)
    device = new_device(url, locale=LOCALES[locale], viewport=VIEWPORTS[width])
    device.open()
    device.register(unique_name(), device_name="Phone browser")

    _shown(device, url, _user_code(url, client_id))
    note = device.page.locator("#device-app-self-registered")
    expect(note).to_have_text(i18n.text("web.oidc.registered_itself", locale))
    expect(note).to_be_visible()
    screenshot(device.page, f"device-self-registered-{width}-{locale}")

    apps.update_app(ctx, client_id=client_id, verified=True, changed=frozenset({"verified"}))
    wait_until(lambda: requests.post(url + "/oidc/device/lookup", json={"user_code": _user_code(url, client_id)},
                                     timeout=10).json()["registered_itself"] is False, timeout=30)
    other_tab = DevicePage(device.page.context.new_page(), url)  # a tab of its own: no code remembered
    _shown(other_tab, url, _user_code(url, client_id))
    expect(other_tab.page.locator("#device-app")).to_contain_text("Rebus TV")
    expect(other_tab.page.locator("#device-app-self-registered")).to_be_hidden()
