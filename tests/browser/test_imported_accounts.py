"""Accounts brought by `citylogin accounts import` (SPEC §17) in Chromium, in English and Japanese:

- A person whose account was imported (no device yet) follows "First time on citylogin? We'll e-mail you a code" on
  the login form: the username, then the mailed code with the password and this browser's name; a wrong code and a
  wrong password are refused in words; the right ones make this browser the account's first device (its key and
  certificate kept, as after registering: a later log in with the password alone works) and sign it in.
- On another browser the same way is refused once the account has a device, pointing to pairing and the recovery
  code, and no second code is mailed; wrong passwords there pause it (too_many_attempts).
- The console's account page says where an imported account came from and when, and whether its password is still
  the source's hash or was upgraded to citylogin's own."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from common import i18n
from tests.browser.pages import DevicePage
from tests.browser.test_admin_console import find, open_console, operator
from tests.conftest import unique_name
from tests.support.imported_accounts import put_imported_account
from tests.support.live import PASSWORD, settle_background
from tests.support.mailbox import Mailbox

LOCALES = {"en": "en-US", "ja": "ja-JP"}
MAX_FAILURES = 3
CONSOLE_TEXTS = {
    "en": {"source": "Source", "keycloak": re.compile(r"^Imported from Keycloak, Mar 3, 2025$"),
           "csv": re.compile(r"^Imported from a CSV file, Mar 3, 2025$"),
           "kept": "Imported hash (not upgraded yet)", "upgraded": "Upgraded to citylogin's own"},
    "ja": {"source": "移行元", "keycloak": re.compile(r"^Keycloak から取り込み \(2025/0?3/0?3\)$"),
           "csv": re.compile(r"^CSV ファイルから取り込み \(2025/0?3/0?3\)$"),
           "kept": "取り込んだハッシュ (未更新)", "upgraded": "citylogin のハッシュに更新済み"},
}


def texts(language: str):
    return lambda key, **params: i18n.text(key, language, **params)


def ask_for_a_code(device: DevicePage, username: str, say) -> None:
    """"First time on citylogin?" below the login form, then the username sent: the code step shows."""
    device.go("login")
    link = device.login_form.locator("#login-first-time")
    expect(link).to_have_text(say("web.enrol.first_time"))
    link.click()
    form = device.page.locator("#enrol-form")
    expect(form.locator("h1")).to_have_text(say("web.enrol.title"))
    form.locator("#enrol-username").fill(username)
    form.locator("button[type=submit]").click()
    expect(form.locator("#enrol-sent")).to_have_text(say("web.enrol.sent", username=username))
    expect(form.locator("#enrol-code")).to_be_focused()


def send_code(device: DevicePage, code: str, *, password: str = PASSWORD, device_name: str | None = None) -> None:
    form = device.page.locator("#enrol-form")
    form.locator("#enrol-code").fill(code)
    form.locator("#enrol-password").fill(password)
    if device_name is not None:
        form.locator("#enrol-device").fill(device_name)
    form.locator("button[type=submit]").click()


def refused_with(device: DevicePage, text: str) -> None:
    form = device.page.locator("#enrol-form")
    expect(form).not_to_have_attribute("aria-busy", "true")
    expect(form.locator(".error")).to_have_text(text)
    expect(device.page.locator("#home-screen")).to_be_hidden()


@pytest.mark.parametrize("language", ["en", "ja"])
def test_an_imported_person_sets_up_a_first_browser_with_a_mailed_code_and_is_signed_in(
        make_server, new_device, screenshot, language):
    url, ctx = make_server(login_max_failures=MAX_FAILURES)
    ctx.notifier.backend = mailbox = Mailbox()
    say = texts(language)
    name = unique_name("imp")
    email = f"{name}@example.com"
    put_imported_account(ctx, username=name, email=email, locale=language, password_hash=ctx.passwords.hash(PASSWORD))

    laptop = new_device(url, locale=LOCALES[language]).open()
    laptop.switch_language(language)
    ask_for_a_code(laptop, name, say)
    code = mailbox.code("enrol_code", email)
    send_code(laptop, "000000" if code != "000000" else "111111", device_name="Imported laptop")
    refused_with(laptop, say("web.error.invalid_email_code"))
    send_code(laptop, code, password="not the password 1")
    refused_with(laptop, say("web.error.invalid_credentials"))
    screenshot(laptop.page, f"enrol-code-{language}")
    send_code(laptop, code)
    laptop.expect_devices_screen()
    expect(laptop.page.locator("#whoami-user")).to_have_text(name)
    expect(laptop.device("Imported laptop")).to_contain_text(say("web.devices.this_device"))
    laptop.log_out()                                   # the key and certificate stay: the password alone signs in
    laptop.log_in(name)
    laptop.expect_devices_screen()

    phone = new_device(url, locale=LOCALES[language]).open()
    phone.switch_language(language)
    ask_for_a_code(phone, name, say)
    settle_background(ctx)
    assert mailbox.count("enrol_code", email) == 1     # the account has a device: no code for it
    send_code(phone, code, device_name="Imported phone")
    refused_with(phone, say("web.error.device_exists"))
    other_ways = phone.page.locator("#enrol-other-ways")
    other_ways.get_by_role("button", name=say("web.auth.tab_pair")).click()
    expect(phone.pair_form).to_be_visible()

    ask_for_a_code(phone, name, say)                   # wrong passwords pause this way in as they pause a log in
    for _ in range(MAX_FAILURES):
        send_code(phone, code, password="not the password 1")
        expect(phone.page.locator("#enrol-form")).not_to_have_attribute("aria-busy", "true")
    send_code(phone, code, password="not the password 1")
    refused_with(phone, say("web.error.too_many_attempts"))
    expect(other_ways).to_be_hidden()


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_console_says_where_an_imported_account_came_from_and_whether_its_password_is_upgraded(
        make_server, new_device, language):
    url, ctx = make_server()
    page = open_console(operator(new_device, url, ctx, Role.VIEWER))
    page.locator(f"#language-{language}").click()
    expect(page.locator("html")).to_have_attribute("lang", language)
    texts = CONSOLE_TEXTS[language]
    name = unique_name()
    kept = put_imported_account(ctx, username=name, email=f"{name}@example.com")
    other = unique_name("up")  # neither name is the start of the other: each search finds its own alone
    upgraded = put_imported_account(ctx, username=other, email=f"{other}@example.com", source="csv",
                                    password_hash=ctx.passwords.hash(PASSWORD))

    view = find(page, kept.username)
    profile = view.locator("#profile")
    expect(profile.locator("dt", has_text=texts["source"])).to_be_visible()
    expect(profile.locator("#profile-imported")).to_have_text(texts["keycloak"])
    expect(profile.locator("#profile-password")).to_have_text(texts["kept"])

    view = find(page, upgraded.username)
    expect(view.locator("#account-name")).to_have_text(upgraded.username)
    expect(profile.locator("#profile-imported")).to_have_text(texts["csv"])
    expect(profile.locator("#profile-password")).to_have_text(texts["upgraded"])

    view = find(page, page.locator("#operator-name").inner_text())       # an account made here: no such lines
    expect(view.locator("#account-name")).to_have_text(page.locator("#operator-name").inner_text())
    expect(profile.locator("#profile-imported")).to_have_count(0)
    expect(profile.locator("#profile-password")).to_have_count(0)


def test_a_person_whose_username_was_their_address_types_it_and_the_mail_gives_the_username(make_server, new_device):
    # A Keycloak realm that used addresses as usernames: the import made the local part the username.
    url, ctx = make_server()
    ctx.notifier.backend = mailbox = Mailbox()
    say = texts("en")
    name = unique_name("imp")
    email = f"{name}@example.com"
    put_imported_account(ctx, username=name, email=email, password_hash=ctx.passwords.hash(PASSWORD))
    laptop = new_device(url, locale="en-US").open()
    laptop.go("login")
    laptop.login_form.locator("#login-first-time").click()
    form = laptop.page.locator("#enrol-form")
    form.locator("#enrol-username").fill(email)
    form.locator("button[type=submit]").click()
    expect(form.locator("#enrol-named")).to_be_focused()
    expect(form.locator("label[for=enrol-named]")).to_have_text(say("web.enrol.username_in_mail"))
    assert name in mailbox.body("enrol_code", email)
    form.locator("#enrol-named").fill(name)
    send_code(laptop, mailbox.code("enrol_code", email))
    laptop.expect_devices_screen()
    expect(laptop.page.locator("#whoami-user")).to_have_text(name)
