"""The web app in Chromium (issue 5): two browser contexts are two devices of one account."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from accounts import user_service as users
from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.client.api import Client
from sessions import service as sessions
from tests.conftest import unique_name
from tests.support.live import PASSWORD, FakeClock
from tests.support.oidc import signed_in_tokens
from tests.support.seats import open_session
from tests.support.waiting import wait_until

IN_USE = "This account is in use on another device."
PHONE = {"width": 375, "height": 740}
REDIRECT = "https://app.example/callback"


def _account_with_pairing_code(url, new_device, *, screenshot=None):
    """Device A registers through the UI and shows a pairing code: (A, username, payload)."""
    a = new_device(url).open()
    if screenshot:
        screenshot(a.page, "login")
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    payload = a.show_pairing_code()
    if screenshot:
        screenshot(a.page, "qr")
    return a, user, payload


def test_continue_logs_the_other_device_out_live(make_server, new_device, screenshot):
    url, _ = make_server()
    a, user, payload = _account_with_pairing_code(url, new_device, screenshot=screenshot)
    a.tab("Devices")
    a.expect_devices_screen()
    b = new_device(url)
    b.pair(payload, user, device_name="Bob phone")

    dialog = b.page.locator("#concurrent-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#concurrent-message")).to_have_text(IN_USE)
    expect(dialog.locator("#concurrent-devices")).to_contain_text("Alice laptop")
    expect(dialog.locator("#concurrent-devices time")).to_have_count(2)     # when it signed in, when last seen
    screenshot(b.page, "dialog")
    dialog.get_by_role("button", name="Continue").click()
    started = time.monotonic()

    expect(a.banner).to_contain_text("Signed in on another device", timeout=3000)
    assert time.monotonic() - started < 3.5
    a.expect_login_screen()
    screenshot(a.page, "banner")
    b.expect_devices_screen()
    expect(b.device("Bob phone")).to_contain_text("This device")


def test_displaced_device_lands_on_login_at_its_next_call(make_server, new_device):
    url, _ = make_server()
    a = new_device(url)
    # An event stream that never answers, so only API answers can end the session.
    held: list = []
    a.page.context.route("**/session/events", lambda route: held.append(route))
    a.open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    payload = a.show_pairing_code()
    a.tab("Devices")
    a.expect_devices_screen()
    b = new_device(url)
    b.pair(payload, user, device_name="Bob phone")
    b.page.locator("#concurrent-dialog").get_by_role("button", name="Continue").click()
    b.expect_devices_screen()

    expect(a.page.locator("#home-screen")).to_be_visible()
    a.page.locator("#devices-refresh").click()
    a.expect_login_screen()
    expect(a.banner).to_contain_text("Signed in on another device")
    expect(a.banner).not_to_contain_text("then logged out")    # what a login here does is the policy's to say
    expect(a.login_form.get_by_label("Username")).to_have_value(user)
    # Logging in again meets the in-use dialog, with the stale banner gone from behind it
    a.log_in(user)
    expect(a.page.locator("#concurrent-dialog")).to_be_visible()
    expect(a.banner).to_be_hidden()
    a.page.locator("#concurrent-dialog").get_by_role("button", name="Cancel").click()
    expect(a.login_form.locator(".note")).to_contain_text("The other device stays signed in")


def test_cancel_keeps_the_other_device_logged_in(make_server, new_device, screenshot):
    url, _ = make_server()
    a, user, payload = _account_with_pairing_code(url, new_device)
    b = new_device(url)
    b.pair(payload, user, device_name="Bob phone")
    dialog = b.page.locator("#concurrent-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()

    expect(dialog).to_be_hidden()
    b.expect_login_screen()
    expect(b.login_form.locator(".note")).to_contain_text("The other device stays signed in")
    a.refresh_devices()
    a.expect_devices_screen()
    expect(a.banner).to_be_hidden()
    expect(a.device("Alice laptop")).to_contain_text("Signed in")
    expect(a.device("Bob phone")).not_to_contain_text("Signed in")
    screenshot(a.page, "devices-after-cancel")


def test_history_tells_a_question_answered_continue_from_a_refusal(make_server, new_device, screenshot):
    """Issue 54: "in use elsewhere — continue?" answered Continue is no refusal (nor red); Cancel stays one."""
    url, ctx = make_server()
    a, user, payload = _account_with_pairing_code(url, new_device)
    b = new_device(url)
    b.pair(payload, user, device_name="Bob phone")
    dialog = b.page.locator("#concurrent-dialog")
    dialog.get_by_role("button", name="Cancel").click()      # asked, and left: a refusal
    expect(dialog).to_be_hidden()
    b.log_in(user)
    dialog.get_by_role("button", name="Continue").click()    # asked again, and continued
    b.expect_devices_screen()
    user_uuid = users.find_uuid_by_username(ctx, username=user)
    wait_until(lambda: sessions.history_page(ctx, user_uuid=user_uuid, limit=10, cursor=None)[0][1].get("continued"),
               what="the question's row marked continued, after the confirm's answer")

    b.go("history")
    rows = b.page.locator("#history-rows tr")
    results = rows.locator("td[data-column='web.history.col_result']")
    expect(results).to_have_text(["Signed in", "Asked: in use elsewhere — continued", "Refused: in use elsewhere",
                                  "Signed in"])
    expect(rows.nth(0)).to_contain_text("Alice laptop")                 # the sign-in logged the laptop out
    assert [rows.nth(i).get_attribute("data-effect") for i in range(4)] == ["good", "neutral", "bad", "good"]
    b.switch_language("ja")
    expect(results).to_have_text(["ログイン成功", "確認: 別の場所で使用中 — 続行", "拒否: 別の場所で使用中",
                                  "ログイン成功"])
    screenshot(b.page, "history_continued_ja")


def test_second_device_pairs_and_both_are_listed(make_server, new_device, screenshot):
    url, _ = make_server(max_concurrent_devices=2)
    a, user, payload = _account_with_pairing_code(url, new_device)
    b = new_device(url)
    b.pair(payload, user, device_name="Bob phone")

    b.expect_devices_screen()
    expect(b.page.locator("#concurrent-dialog")).to_be_hidden()
    expect(b.device_list.locator("li")).to_have_count(2)
    expect(b.device("Bob phone")).to_contain_text("This device")
    expect(b.device("Alice laptop")).to_contain_text("Signed in")
    a.refresh_devices()
    expect(a.device("Bob phone")).to_contain_text("Signed in")
    expect(a.device("Alice laptop")).to_contain_text("This device")
    screenshot(a.page, "devices")


def test_unbound_device_is_sent_to_login(make_server, new_device, screenshot):
    url, _ = make_server(max_concurrent_devices=2)
    a, user, payload = _account_with_pairing_code(url, new_device)
    b = new_device(url)
    b.pair(payload, user, device_name="Bob phone")
    b.expect_devices_screen()

    a.refresh_devices()
    a.device("Bob phone").get_by_role("button", name="Remove").click()
    confirm = a.page.locator("#confirm-dialog")
    expect(confirm).to_contain_text("Remove “Bob phone”?")
    screenshot(a.page, "confirm-remove")
    confirm.get_by_role("button", name="Remove").click()

    expect(b.banner).to_contain_text("This device was removed")
    b.expect_login_screen()
    screenshot(b.page, "banner-removed")
    expect(a.device("Bob phone")).to_contain_text("Removed")
    expect(a.device("Bob phone").get_by_role("button")).to_have_count(0)
    expect(b.banner).to_contain_text("pair it again from a device that is still registered")
    expect(b.banner.get_by_role("button")).to_have_count(0)
    # Its certificate is revoked for good: logging in again shows the same banner, said once.
    b.log_in(user)
    expect(b.login_form).not_to_have_attribute("aria-busy", "true")          # the login has answered
    expect(b.banner).to_contain_text("This device was removed")
    expect(b.login_form.locator(".error")).to_be_hidden()


def test_unbinding_the_last_device_asks_twice(make_server, new_device):
    url, _ = make_server()
    a = new_device(url).open()
    a.register(unique_name(), device_name="Only laptop")
    a.device("Only laptop").get_by_role("button", name="Remove").click()
    confirm = a.page.locator("#confirm-dialog")
    confirm.get_by_role("button", name="Remove").click()
    expect(confirm).to_contain_text("Remove the last device?")
    confirm.get_by_role("button", name="Remove anyway").click()
    a.expect_login_screen()
    expect(a.banner).to_contain_text("This device was removed")


def test_expired_access_token_is_refreshed_silently(make_server, new_device):
    url, ctx = make_server()
    a = new_device(url).open()
    a.register(unique_name(), device_name="Alice laptop")
    refreshes = []
    a.page.on("request", lambda r: refreshes.append(r.url) if r.url.endswith("/session/refresh") else None)
    ctx.clock = clock = FakeClock()
    clock.advance(901)          # past the 900 s access token, well inside the 1800 s idle timeout
    a.page.clock.set_fixed_time(clock.moment)   # the browser's clock too: its DPoP proofs' iat must agree

    a.refresh_devices()
    expect(a.device("Alice laptop")).to_be_visible()
    a.tab("Sessions")
    expect(a.page.locator("#session-rows tr")).to_have_count(1)
    expect(a.page.locator("#home-screen")).to_be_visible()
    assert refreshes, "the expired token should have been refreshed"


def test_rename_sessions_and_history(make_server, new_device, screenshot):
    url, _ = make_server()
    a = new_device(url).open()
    a.register(unique_name(), device_name="Alice laptop")
    expect(a.device("Alice laptop").locator(".badge.kind")).to_have_text("Computer")  # guessed from the browser
    a.device("Alice laptop").get_by_role("button", name="Rename").click()
    rename = a.page.locator("#rename-dialog")
    rename.get_by_label("Device name").fill("Work laptop")
    rename.get_by_label("Kind of device").select_option("tablet")
    rename.get_by_role("button", name="Save").click()
    expect(a.device("Work laptop")).to_be_visible()
    expect(a.device("Work laptop").locator(".badge.kind")).to_have_text("Tablet")
    expect(a.page.locator("#whoami")).to_contain_text("Work laptop")

    a.tab("Sessions")
    expect(a.page.locator("#session-rows")).to_contain_text("This session")
    screenshot(a.page, "sessions")
    a.tab("History")
    expect(a.page.locator("#history-rows tr").first).to_contain_text("Signed in")
    screenshot(a.page, "history")


def test_history_more_button_pages_with_the_cursor(make_server, new_device):
    url, ctx = make_server()
    a = new_device(url).open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    for _ in range(21):                  # one page is 20 rows
        a.page.locator("#logout-button").click()
        a.expect_login_screen()
        a.log_in(user)
        a.expect_devices_screen()
    uuid = users.find_uuid_by_username(ctx, username=user)
    wait_until(lambda: len(sessions.history_page(ctx, user_uuid=uuid, limit=30, cursor=None)[0]) == 22,
               what="the last login's history row, written after its answer")
    a.tab("History")
    expect(a.page.locator("#history-rows tr")).to_have_count(20)
    a.page.get_by_role("button", name="More").click()
    expect(a.page.locator("#history-rows tr")).to_have_count(22)
    expect(a.page.get_by_role("button", name="More")).to_be_hidden()


def test_sessions_list_live_ones_then_ended_ones_page_by_page(make_server, new_device):
    url, ctx = make_server()
    a = new_device(url).open()
    a.register(unique_name(), device_name="Alice laptop")
    with a.page.expect_response(lambda r: "/session/list" in r.url) as listed:
        a.tab("Sessions")
    assert "include_ended=false" in listed.value.url
    own = sessions.session_store(ctx).get(listed.value.json()["sessions"][0]["session_id"])
    for _ in range(22):                  # another device logs in 22 times: 21 ended sessions, 1 live
        open_session(ctx, user_uuid=own.user_uuid, device_id="a-second-device", device_name="Bob phone")
    rows, more = a.page.locator("#session-rows tr"), a.page.locator("#sessions-more")
    a.page.locator("#sessions-refresh").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_class("current")      # "This session" first, though the phone's is newer
    expect(rows.first).to_contain_text("This session")
    expect(rows.nth(1)).to_contain_text("Bob phone")
    expect(more).to_be_hidden()
    expect(a.page.locator("#sessions-show-ended-label")).to_have_text("Show ended sessions")
    a.page.locator("#sessions-show-ended").check()
    expect(rows).to_have_count(20)       # one page
    expect(a.page.locator("#session-rows")).to_contain_text("Ended: logged out")
    more.click()
    expect(rows).to_have_count(23)
    expect(more).to_be_hidden()
    a.page.locator("#sessions-show-ended").uncheck()
    expect(rows).to_have_count(2)
    assert not a.errors, a.errors


def test_an_ended_session_still_names_the_apps_it_held(make_server, new_device):
    """Issue 54: the phone's session signed in to an app, then ended: its row names the app, with no "Sign out"."""
    url, ctx = make_server(max_concurrent_devices=2)
    a, user, payload = _account_with_pairing_code(url, new_device)
    phone = Client(url)
    phone.pair(payload, username=user, password=PASSWORD, device_name="Bob phone")
    phone.login(PASSWORD)
    library = apps.add_app(ctx, name="Shibuya Library", push_url=None, oidc=OidcClient(redirect_uris=(REDIRECT,)))
    signed_in_tokens(url, library, phone, redirect_uri=REDIRECT)
    a.go("sessions")
    live = a.page.locator("#session-rows tr", has_text="Bob phone")
    expect(live.locator(".session-app-name")).to_have_text(["Shibuya Library"])
    expect(live.get_by_role("button", name="Sign out Shibuya Library from this session")).to_be_visible()
    phone.logout()

    a.page.locator("#sessions-show-ended").check()
    ended = a.page.locator("#session-rows tr", has_text="Bob phone")
    expect(ended).to_contain_text("Ended: logged out")
    expect(ended.locator(".session-app-name")).to_have_text(["Shibuya Library"])
    expect(ended).to_contain_text("Apps signed in:")
    expect(ended.locator("button")).to_have_count(0)
    a.switch_language("ja")
    expect(ended).to_contain_text("ログインしたアプリ：")


def test_keyboard_only_login_and_escape_cancels(make_server, new_device):
    url, _ = make_server()
    a, user, payload = _account_with_pairing_code(url, new_device)
    b = new_device(url)
    b.pair(payload, user, device_name="Bob phone")
    dialog = b.page.locator("#concurrent-dialog")
    expect(dialog).to_be_visible()
    b.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    b.expect_login_screen()

    expect(b.login_form.locator(".note")).to_be_visible()      # the login has finished: the form is usable again
    password = b.login_form.get_by_label("Password")
    expect(password).to_be_enabled()
    password.focus()
    expect(password).to_be_focused()
    b.page.keyboard.type("correct horse battery staple")
    expect(password).to_have_value("correct horse battery staple")
    b.page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog.locator("input[name=displace]")).to_be_focused()    # the device that goes by default, chosen
    expect(dialog.locator("input[name=displace]")).to_be_checked()
    b.page.keyboard.press("Enter")        # Continue
    b.expect_devices_screen()


# A new computer, told the truth (issue 54): the password alone never signs in; what makes this browser a device.
NEW_COMPUTER = {
    "en": ("This browser holds no device key for “{user}”. Sign in on a device you already use and add this one, "
           "or use a recovery code.", ["Pair this browser", "Lost all my devices?"]),
    "ja": ("このブラウザーには「{user}」のデバイス鍵がありません。"
           "お使いのデバイスでサインインしてこのブラウザーを追加するか、"
           "復旧コードを使ってください。",
           ["このブラウザーを追加", "すべてのデバイスを紛失しましたか？"]),
}


@pytest.mark.parametrize("language", ["en", "ja"])
def test_a_new_computer_is_told_to_add_itself_or_use_a_recovery_code(make_server, new_device, screenshot, language):
    url, _ = make_server()
    a = new_device(url).open()
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    a.log_out()
    a.log_in(user, "wrong password 1")         # another refusal shows no such links
    expect(a.login_form.locator(".error")).to_be_visible()
    expect(a.page.locator("#login-new-device")).to_be_hidden()
    expect(a.login_form.locator("button[data-show=recover]:visible")).to_have_count(1)   # the one below the form

    b = new_device(url, viewport=PHONE).open()
    b.switch_language(language)
    b.log_in(user)                             # the right password, on a browser with no key for the account
    text, links = NEW_COMPUTER[language]
    expect(b.login_form.locator(".error")).to_have_text(text.format(user=user))
    expect(b.page.locator("#login-new-device button")).to_have_text(links)
    lost = b.login_form.locator("button:visible", has_text=links[1])
    expect(lost).to_have_count(1)                # next to the error, not a second time below the form (issue 65)
    b.expect_login_screen()
    screenshot(b.page, f"login_new_computer_{language}")
    b.page.locator("#login-new-device button[data-show=pair]").click()
    expect(b.pair_form).to_be_visible()         # a pairing code from a device already in use
    b.go("login")
    b.page.locator("#login-new-device button[data-show=recover]").click()
    expect(b.recover_form).to_be_visible()
    b.recover(user, a.recovery_codes[0], device_name="New computer")
    b.expect_devices_screen()


@pytest.mark.parametrize("screen", ["Devices", "Sessions", "History", "Add a device", "Account"])
def test_phone_width_has_no_sideways_scroll(make_server, new_device, screenshot, screen):
    url, _ = make_server()
    a = new_device(url, viewport=PHONE).open()
    a.register(unique_name(), device_name="Alice phone")
    a.tab(screen)
    if screen == "Add a device":
        a.show_pairing_code()
    try:  # the live event stream is one request that never ends: idle may not come on a loaded machine
        a.page.wait_for_load_state("networkidle", timeout=5000)
    except PlaywrightTimeout:
        pass  # five seconds after the tab opened, its content has long been laid out
    width = a.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{screen} is {width}px wide at 375px"
    screenshot(a.page, f"phone-{screen.lower().replace(' ', '-')}", full_page=True)


def test_insecure_origin_shows_a_clear_message(make_server, new_device, screenshot):
    url, _ = make_server()
    device = new_device(url)
    # An origin that is neither HTTPS nor localhost, served by the real app through Playwright.
    device.page.context.route("http://citylogin.test/**", lambda route: route.fulfill(
        response=route.fetch(url=route.request.url.replace("http://citylogin.test", url))))
    device.page.goto("http://citylogin.test/")
    expect(device.page.locator("#insecure")).to_be_visible()
    expect(device.page.locator("#insecure")).to_contain_text("secure connection")
    expect(device.page.locator("#auth-screen")).to_be_hidden()
    screenshot(device.page, "insecure")


def test_page_headers(make_server):
    import requests
    url, _ = make_server()
    index = requests.get(f"{url}/", timeout=10)
    assert index.status_code == 200 and index.headers["Content-Type"].startswith("text/html")
    policy = index.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    script = requests.get(f"{url}/web/app.js", timeout=10)
    assert script.status_code == 200 and re.search("javascript", script.headers["Content-Type"])
    assert script.headers["X-Content-Type-Options"] == "nosniff"
