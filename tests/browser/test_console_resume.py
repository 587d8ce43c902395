"""The operators' console resumes the device's session in any tab, as the main page does (issue 54): an
operator signed in on `/` opens `/admin/` in a second tab, and after the browser is closed and opened
again with the same profile both the main page and the console go on with the session, no password
asked. Once the session has ended the console says "Sign in first", in English and Japanese."""
from __future__ import annotations

from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from accounts import user_service as users
from accounts.models import Role
from sessions import service as sessions
from tests.browser.conftest import DESKTOP
from tests.browser.pages import DevicePage
from tests.conftest import unique_name
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS


def operator_signed_in(device: DevicePage, ctx) -> str:
    """Registers an account in the browser (signed in at once) and makes it a support operator."""
    username = unique_name("op")
    device.open().register(username, device_name="Operator laptop")
    user_uuid = users.find_uuid_by_username(ctx, username=username)
    assert user_uuid
    users.set_role(ctx, user_uuid=user_uuid, role=Role.SUPPORT, granted=True)
    return username


def expect_console_of(page: Page, username: str) -> None:
    expect(page.locator("#console")).to_be_visible()
    expect(page.locator("#signed-out")).to_be_hidden()
    expect(page.locator("#operator-name")).to_have_text(username)
    expect(page.locator("#operator-role")).to_have_text("Support")


def open_console(context: BrowserContext, url: str) -> Page:
    """`/admin/` typed into a new tab: nothing of another tab's sessionStorage comes with it."""
    page = context.new_page()
    page.goto(f"{url}/admin/")
    return page


def live_sessions(ctx, username: str) -> list:
    user_uuid = users.find_uuid_by_username(ctx, username=username)
    return [s for s in sessions.list_user_sessions(ctx, user_uuid=user_uuid)
            if sessions.session_status(ctx.settings, s, ctx.epoch())[0] == "active"]


def test_the_console_in_a_second_tab_goes_on_with_the_devices_session(make_server, new_device):
    url, ctx = make_server()
    main = new_device(url, locale="en-US")
    username = operator_signed_in(main, ctx)

    console = open_console(main.page.context, url)
    expect_console_of(console, username)
    console.locator("#search-value").fill(username)       # the admin API answers with the lent token
    console.locator("#search-form button[type=submit]").click()
    expect(console.locator("#search-results button")).to_contain_text(username)
    assert len(live_sessions(ctx, username)) == 1           # the same session, not a second login
    main.refresh_devices()                                  # and the main page's goes on beside it

    main.log_out()                    # the session ends: a console opened now says so, in both languages
    ended = open_console(main.page.context, url)
    expect(ended.locator("#signed-out")).to_be_visible()
    expect(ended.locator("#signed-out")).to_contain_text("Sign in first")
    ended.locator("#language-ja").click()
    expect(ended.locator("#signed-out-title")).to_have_text("先にサインインしてください")
    expect(ended.locator("#console")).to_be_hidden()


def test_the_main_page_and_the_console_resume_after_the_browser_restarts(make_server, browser, tmp_path: Path):
    url, ctx = make_server()
    profile = tmp_path / "profile"          # one browser profile on disk, kept across the restart

    def launch() -> BrowserContext:
        return browser.browser_type.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport=DESKTOP, locale="en-US")

    first = launch()
    try:
        main = DevicePage(first.pages[0] if first.pages else first.new_page(), url)
        username = operator_signed_in(main, ctx)
        expect_console_of(open_console(first, url), username)
        errors = list(main.errors)
    finally:
        first.close()
    assert not errors, errors

    again = launch()                        # the browser reopened: no tab holds anything of the session
    try:
        main = DevicePage(again.pages[0] if again.pages else again.new_page(), url)
        main.page.goto(f"{url}/")
        main.expect_devices_screen()
        expect(main.page.locator("#whoami-user")).to_have_text(username)
        console = open_console(again, url)
        expect_console_of(console, username)
        assert len(live_sessions(ctx, username)) == 1
        errors = list(main.errors)
    finally:
        again.close()
    assert not errors, errors
