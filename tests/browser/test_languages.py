"""The web UI in Japanese and English (issue items 1 and 3): Chromium with a ja-JP or en-US
locale, the header's language switch, and the rough edges found by trying it."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import unique_name
from tests.support.waiting import wait_until

JA_IN_USE = ("このアカウントは別の場所で使用中です。こちらにログインすると、以前のセッションは自動的に"
             "ログアウトされます。続けますか？")


def _two_devices(url, new_device, *, locale: str, **options):
    """Device A registers and stays on its device list; device B pairs and meets the in-use dialog."""
    a = new_device(url, locale=locale, **options).open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    payload = a.show_pairing_code()
    a.go("devices")
    a.expect_devices_screen()
    b = new_device(url, locale=locale)
    b.pair(payload, user, device_name="Bob phone")
    return a, b, user


def test_japanese_browser_speaks_japanese(make_server, new_device, screenshot):
    url, _ = make_server()
    a = new_device(url, locale="ja-JP").open()
    expect(a.page.locator("html")).to_have_attribute("lang", "ja")
    expect(a.login_form.locator("h1")).to_have_text("ログイン")
    expect(a.page.locator(".tabs:visible button[data-tab='register']")).to_have_text("アカウント作成")
    expect(a.page.locator("#language-ja")).to_have_attribute("aria-pressed", "true")
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    # Focus lands on the screen the person now sees, not on the body.
    expect(a.page.locator("#home-screen .tabs button[data-tab='devices']")).to_be_focused()
    payload = a.show_pairing_code()
    expect(a.page.locator("#pairing-countdown")).to_contain_text("有効期限まで")
    a.go("devices")
    a.expect_devices_screen()

    b = new_device(url, locale="ja-JP")
    b.pair(payload, user, device_name="Bob phone")
    dialog = b.page.locator("#concurrent-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#concurrent-message")).to_have_text(JA_IN_USE)
    expect(dialog.locator("#concurrent-devices")).to_contain_text("Alice laptop")
    expect(dialog.get_by_role("button", name="続ける")).to_be_visible()
    screenshot(b.page, "ja-dialog")
    dialog.get_by_role("button", name="続ける").click()

    expect(a.banner).to_contain_text("別のデバイスでログインされました")
    a.expect_login_screen()
    screenshot(a.page, "ja-banner")

    b.expect_devices_screen()
    expect(b.device("Bob phone")).to_contain_text("このデバイス")
    expect(b.device("Alice laptop")).to_contain_text("登録日時")
    expect(b.page.locator("#device-list time").first).to_have_text(re.compile(r"\d{4}/\d{1,2}/\d{1,2}"))
    screenshot(b.page, "ja-devices")
    account = b.open_account()
    expect(account.locator("h1")).to_have_text("アカウント")
    expect(account.locator("#locale-select")).to_have_value("ja")     # the account took the language it was made in
    expect(account.locator("#codes-left")).to_contain_text("残り 10 個")
    b.page.evaluate("window.scrollTo(0, 0)")
    screenshot(b.page, "ja-account", full_page=True)


def test_removed_device_banner_says_what_happened_and_what_to_do(make_server, new_device, screenshot):
    url, _ = make_server(max_concurrent_devices=2)
    a, b, user = _two_devices(url, new_device, locale="ja-JP")
    b.expect_devices_screen()
    a.refresh_devices()
    a.device("Bob phone").locator("button[data-action='unbind']").click()
    a.page.locator("#confirm-ok").click()

    expect(b.banner).to_contain_text("別のデバイスの操作でアカウントから削除されました")
    b.expect_login_screen()
    expect(b.banner).to_contain_text("もう一度ペアリング")
    expect(b.banner).to_contain_text("復旧コード")
    expect(b.banner.get_by_role("button")).to_have_count(0)       # no "log in again" that cannot work
    assert b.banner.inner_text().count("ペアリング") == 1           # said once
    screenshot(b.page, "ja-banner-removed")

    b.log_in(user)             # its certificate is revoked: the same banner, no second message in the form
    expect(b.login_form).not_to_have_attribute("aria-busy", "true")          # the login has answered
    expect(b.banner).to_contain_text("もう一度ペアリング")
    expect(b.login_form.locator(".error")).to_be_hidden()


def test_english_browser_speaks_english(make_server, new_device):
    url, _ = make_server()
    a = new_device(url, locale="en-US").open()
    expect(a.page.locator("html")).to_have_attribute("lang", "en")
    expect(a.login_form.locator("h1")).to_have_text("Log in")
    a.register(unique_name(), device_name="Alice laptop")
    expect(a.device("Alice laptop")).to_contain_text("This device")
    expect(a.page.locator("#logout-button")).to_have_text("Log out")
    account = a.open_account()
    expect(account.locator("#locale-select")).to_have_value("en")


def _account_locale(ctx, username: str) -> str:
    from accounts import user_service as users
    user_uuid = users.find_uuid_by_username(ctx, username=username)
    assert user_uuid
    return users.get_user(ctx, user_uuid=user_uuid).locale


def _patches(page) -> list[dict]:
    """The PATCH /account calls the page makes from now on (their bodies)."""
    sent: list[dict] = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.method == "PATCH" and r.url.endswith("/account")
            else None)
    return sent


def test_switching_language_changes_the_page_and_asks_before_changing_the_mail(make_server, new_device):
    """Issue 65: the header's switch changes this page only (the session stays, nothing reloads); signed in,
    it asks whether the mail should follow, and the account's language changes only on "yes"."""
    url, ctx = make_server()
    a = new_device(url, locale="en-US").open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    a.page.evaluate("window.notReloaded = true")
    logins = []
    a.page.on("request", lambda r: logins.append(r.url) if re.search(r"/login/", r.url) else None)
    patches = _patches(a.page)
    offer = a.page.locator("#mail-locale")

    a.switch_language("ja")
    expect(a.page.locator("#devices-title")).to_have_text("デバイス")
    expect(a.device("Alice laptop")).to_contain_text("このデバイス")
    expect(offer).to_be_visible()
    expect(offer.locator("#mail-locale-text")).to_have_text("このページを日本語で表示しています。お送りするメールは英語のままです。")
    a.page.locator("#devices-refresh").click()
    a.expect_devices_screen()
    a.open_account()
    expect(a.page.locator("#locale-select")).to_have_value("en")       # the account's language is unchanged
    assert patches == [] and _account_locale(ctx, user) == "en"
    assert a.page.evaluate("window.notReloaded") is True and logins == []

    offer.get_by_role("button", name="メールは英語のまま").click()       # "keep": nothing is sent
    expect(offer).to_be_hidden()
    a.page.reload()                                  # the page keeps the language picked, and asks no more
    a.expect_devices_screen()
    expect(a.page.locator("html")).to_have_attribute("lang", "ja")
    expect(offer).to_be_hidden()
    assert patches == [] and _account_locale(ctx, user) == "en"

    a.switch_language("en")                          # the account's language again: nothing to ask
    expect(offer).to_be_hidden()
    a.switch_language("ja")
    expect(offer).to_be_visible()
    with a.page.expect_response(lambda r: r.url.endswith("/account") and r.request.method == "PATCH") as patch:
        offer.get_by_role("button", name="メールも日本語で受け取る").click()
    assert patch.value.ok and patch.value.json()["locale"] == "ja"
    expect(a.page.locator("#notice-text")).to_have_text("これからお送りするメールは日本語になります。")
    expect(offer).to_be_hidden()
    assert patches == [{"locale": "ja"}] and _account_locale(ctx, user) == "ja"
    a.open_account()
    expect(a.page.locator("#locale-select")).to_have_value("ja")


def test_the_last_language_picked_is_the_one_kept_however_fast_the_clicks(make_server, new_device):
    """日本語 then EN, the second click before the Japanese catalogue arrived (held here until then): the
    page speaks English, and a reload still does. Once, the late Japanese catalogue won, and was remembered."""
    url, _ = make_server()
    a = new_device(url, locale="en-US").open()
    held, japanese = [], re.compile(r"/locales/ja[.\w]*\.json")
    a.page.route(japanese, lambda route: held.append(route))
    switch = a.page.locator("#language-switch")
    with a.page.expect_request(re.compile(r"/locales/ja")):
        a.page.locator("#language-ja").click()
    expect(switch).to_have_attribute("aria-busy", "true")         # the catalogue is on its way
    wait_until(lambda: a.page.evaluate("1") and held, timeout=30, what="the Japanese catalogue held")
    a.page.locator("#language-en").click()
    expect(a.page.locator("#language-en")).to_have_attribute("aria-pressed", "true")
    with a.page.expect_response(re.compile(r"/locales/ja")):
        held[0].continue_()
    expect(switch).not_to_have_attribute("aria-busy", "true")     # every catalogue asked for has been handled
    expect(a.page.locator("html")).to_have_attribute("lang", "en")
    expect(a.login_form.locator("h1")).to_have_text("Log in")
    a.page.unroute(japanese)
    a.page.reload()
    expect(a.page.locator("#auth-screen")).to_be_visible()
    expect(a.page.locator("html")).to_have_attribute("lang", "en")
    expect(a.page.locator("#language-en")).to_have_attribute("aria-pressed", "true")
    a.switch_language("ja")                                       # and a plain switch still works
    a.page.reload()
    expect(a.page.locator("html")).to_have_attribute("lang", "ja")


def test_a_language_picked_before_login_stays_on_the_page_and_the_mail_is_asked(make_server, new_device):
    url, ctx = make_server()
    a = new_device(url, locale="en-US").open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    a.log_out()
    a.switch_language("ja")
    expect(a.login_form.locator("h1")).to_have_text("ログイン")
    patches = _patches(a.page)
    a.log_in(user)
    a.expect_devices_screen()
    expect(a.page.locator("html")).to_have_attribute("lang", "ja")     # the page keeps the language picked
    offer = a.page.locator("#mail-locale")
    expect(offer).to_be_visible()
    assert patches == [] and _account_locale(ctx, user) == "en"
    offer.get_by_role("button", name="メールも日本語で受け取る").click()
    expect(a.page.locator("#notice-text")).to_have_text("これからお送りするメールは日本語になります。")
    assert patches == [{"locale": "ja"}] and _account_locale(ctx, user) == "ja"

    a.log_out()                                      # signed out, the offer goes with the session
    expect(offer).to_be_hidden()
    a.switch_language("en")
    a.log_in(user)
    a.expect_devices_screen()
    expect(offer.locator("#mail-locale-text")).to_have_text(
        "This page is now in English. The mail we send you still comes in Japanese.")
    offer.get_by_role("button", name="Keep mail in Japanese").click()
    expect(offer).to_be_hidden()
    assert _account_locale(ctx, user) == "ja"


def test_field_errors_are_human_and_next_to_the_field(make_server, new_device):
    url, _ = make_server()
    a = new_device(url, locale="en-US").open()
    form = a.fill_register_form(unique_name(), device_name="Alice laptop", password="password")
    error = form.locator("#register-password-error")
    expect(error).to_have_text("This password is too common. Choose one that is harder to guess.")
    expect(form.locator("#register-password")).to_be_focused()
    expect(form.locator("#register-password")).to_have_attribute("aria-invalid", "true")
    expect(form.locator(".error")).to_be_hidden()
    expect(form).not_to_contain_text("Value error")

    form = a.fill_register_form("a", device_name="Alice laptop")
    expect(form.locator("#register-username-error")).to_contain_text("3–32 letters")
    expect(error).to_be_hidden()
    form = a.fill_register_form(unique_name(), device_name="Alice laptop", email="nope")
    expect(form.locator("#register-email-error")).to_contain_text("name@example.com")

    a.switch_language("ja")
    form = a.fill_register_form(unique_name(), device_name="Alice laptop", password="short")
    expect(form.locator("#register-password-error")).to_have_text("8〜128文字にしてください。")


def test_sessions_show_the_browser_ended_ones_and_log_out_everywhere(make_server, new_device, screenshot):
    url, _ = make_server()
    a = new_device(url, locale="en-US").open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    a.log_out()
    a.log_in(user)
    a.expect_devices_screen()
    a.go("sessions")
    rows = a.page.locator("#session-rows tr")
    expect(rows).to_have_count(1)                                   # the ended session is hidden at first
    agent = rows.first.locator("td[data-column='web.sessions.col_browser'] span[title]")
    expect(agent).to_have_text("Chrome on Linux")
    assert "Mozilla/5.0" in agent.get_attribute("title")
    toggle = a.page.locator("#sessions-show-ended")
    expect(a.page.locator("#sessions-show-ended-label")).to_have_text("Show ended sessions")
    toggle.check()
    expect(rows).to_have_count(2)
    expect(a.page.locator("#session-rows")).to_contain_text("Ended: logged out")
    screenshot(a.page, "sessions-ended")

    a.page.locator("#sessions-logout-all").click()
    confirm = a.page.locator("#confirm-dialog")
    expect(confirm).to_contain_text("Log out everywhere?")
    a.page.locator("#confirm-ok").click()
    a.expect_login_screen()
    expect(a.banner).to_contain_text("You have logged out everywhere.")
    a.log_in(user)
    a.expect_devices_screen()


def test_a_session_of_the_command_line_is_named_citylogin_cli(make_server, new_device):
    """The CLI's User-Agent names it (issue 54): the Sessions tab says "citylogin CLI on Linux", not
    python-requests, in English and in Japanese."""
    from types import SimpleNamespace

    from accounts import user_service
    from citylogin.client.api import user_agent
    from tests.support.live import PASSWORD, add_device

    url, ctx = make_server(max_concurrent_devices=0)
    a = new_device(url, locale="en-US").open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    owner = user_service.find_user(ctx, username=user)
    first = SimpleNamespace(key_file=SimpleNamespace(user_uuid=owner.user_uuid, base_url=url, username=user))
    cli = add_device(ctx, first, name="terminal")  # type: ignore[arg-type]
    cli.http.headers["User-Agent"] = user_agent("citylogin-cli")
    cli.login(PASSWORD)
    a.go("sessions")
    rows = a.page.locator("#session-rows tr")
    expect(rows).to_have_count(2)
    agents = rows.locator("td[data-column='web.sessions.col_browser'] span[title]")
    expect(agents.filter(has_text="citylogin CLI on Linux")).to_have_count(1)
    assert agents.filter(has_text="python-requests").count() == 0
    a.switch_language("ja")
    expect(agents.filter(has_text="Linux の citylogin CLI")).to_have_count(1)
