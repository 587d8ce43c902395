"""A new account is signed in before its recovery codes show (issue 65): a person who closes the browser
on the codes screen, never pressing "I have saved them", finds the account signed in when the browser
opens again with the same profile, as the first-run guide says ("you are logged in")."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from accounts import user_service as users
from sessions import service as sessions
from tests.browser.conftest import DESKTOP
from tests.browser.pages import DevicePage
from tests.conftest import unique_name
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow


def test_closing_the_browser_on_the_recovery_codes_leaves_the_person_signed_in(make_server, browser,
                                                                                tmp_path: Path):
    url, ctx = make_server()
    profile = tmp_path / "profile"          # one browser profile on disk, kept across the restart

    def launch() -> BrowserContext:
        return browser.browser_type.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=DESKTOP, locale="en-US")

    username = unique_name()
    first = launch()
    try:
        device = DevicePage(first.pages[0] if first.pages else first.new_page(), url).open()
        device.fill_register_form(username, device_name="Alice laptop")
        expect(device.page.locator("#codes-dialog #codes-list li")).to_have_count(10)
        user_uuid = users.find_uuid_by_username(ctx, username=username)
        assert user_uuid
        live = [s for s in sessions.list_user_sessions(ctx, user_uuid=user_uuid)
                if sessions.session_status(ctx.settings, s, ctx.epoch())[0] == "active"]
        assert len(live) == 1               # the session began before the codes showed
        errors = list(device.errors)
    finally:
        first.close()                       # the browser closed on the codes, "I have saved them" never pressed
    assert not errors, errors

    again = launch()
    try:
        device = DevicePage(again.pages[0] if again.pages else again.new_page(), url)
        device.page.goto(f"{url}/")
        device.expect_devices_screen()
        expect(device.page.locator("#whoami-user")).to_have_text(username)
        expect(device.device("Alice laptop")).to_contain_text("This device")
        expect(device.page.locator("#codes-dialog")).to_be_hidden()
        errors = list(device.errors)
    finally:
        again.close()
    assert not errors, errors
