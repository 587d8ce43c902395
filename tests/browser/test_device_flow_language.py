"""The language at `/device` (issue 83): one picked on the page stays through the sign-in the approval needs,
a reload of the login screen too, and the mail's language is then asked as on the main page."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from common import i18n
from tests.browser.test_device_flow_page import APP_NAME, LOCALES, PHONE, Provider, screen_asks
from tests.browser.test_languages import _account_locale, _patches
from tests.conftest import unique_name
from tests.support.device_flow import screen_app
from tests.support.live import PASSWORD

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("reload", [False, True], ids=["straight", "reloaded"])
def test_a_language_picked_at_device_stays_through_the_sign_in_and_the_mail_is_asked(make_server, new_device,
                                                                                    reload):
    url, ctx = make_server(host_name="127.0.0.1", max_concurrent_devices=3)
    provider = Provider(url, screen_app(ctx, name=APP_NAME, public=True).app.client_id)
    device = new_device(url, locale=LOCALES["en"], viewport=PHONE)
    page = device.page
    user = unique_name()
    device.open()
    device.register(user, device_name="Phone browser")
    device.log_out()
    screen = screen_asks(provider)
    page.goto(screen.link)
    expect(page.locator("#device-approve-form")).to_be_visible()
    device.switch_language("ja")
    page.locator("#device-approve").click()
    expect(device.login_form).to_be_visible()
    if reload:
        page.reload()
        expect(device.login_form).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    patches = _patches(page)
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("#device-outcome-text")).to_have_text(
        i18n.text("web.device_flow.approved_tv", "ja", name=APP_NAME))
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    offer = page.locator("#mail-locale")
    expect(offer).to_be_visible()
    assert patches == [] and _account_locale(ctx, user) == "en"
    offer.get_by_role("button", name="メールも日本語で受け取る").click()
    expect(page.locator("#notice-text")).to_have_text("これからお送りするメールは日本語になります。")
    assert patches == [{"locale": "ja"}] and _account_locale(ctx, user) == "ja"
