"""Passkeys in Chromium (issue 21), with Chromium's virtual authenticator: one added on the Account
page after the password, a login with it on the same device (whose key still proves the device)
through the in-use dialog, an account action and the passkey's removal confirmed by the passkey
itself, and the texts in Japanese. The app is served at http://localhost:<port>, its public URL:
a browser refuses an IP address as the relying party."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.pages import VirtualAuthenticator
from tests.conftest import unique_name

IN_USE = "This account is in use on another device."


def test_a_passkey_signs_in_in_place_of_the_password(make_server, new_device, screenshot):
    url, _ = make_server(host_name="localhost", max_concurrent_devices=1)
    a = new_device(url).open()
    authenticator = VirtualAuthenticator(a.page)
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    a.open_account()
    expect(a.passkeys_form.locator("#passkey-list li")).to_have_count(0)
    expect(a.account_panel.locator("[data-passkey]:visible")).to_have_count(0)     # no passkey to confirm with
    a.passkeys_form.get_by_role("button", name="Add a passkey").click()
    dialog = a.page.locator("#reauth-dialog")
    expect(dialog.locator("h2")).to_have_text("Add a passkey")
    expect(dialog.get_by_role("button", name="Use a passkey")).to_be_hidden()     # none yet to use
    dialog.get_by_label("Password").fill("not my password")
    screenshot(a.page, "passkey-confirm")
    dialog.get_by_role("button", name="Confirm", exact=True).click()
    expect(a.passkeys_form.locator(".error")).to_contain_text("Wrong")
    assert authenticator.credentials() == []
    a.add_passkey()
    expect(a.passkeys_form.locator(".note")).to_contain_text("“Chrome on Linux” was added")
    row = a.passkey("Chrome on Linux")
    expect(row).to_contain_text("On one device only")
    expect(row.locator("time")).to_have_count(1)                    # made now; never used to sign in yet
    [credential] = authenticator.credentials()
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"
    expect(a.account_panel.locator("[data-passkey]:visible")).to_have_count(4)
    a.page.evaluate("window.scrollTo(0, 0)")
    screenshot(a.page, "passkeys", full_page=True)
    payload = a.show_pairing_code()
    a.log_out()

    b = new_device(url)                       # another device of the account takes the one seat
    b.pair(payload, user, device_name="Bob phone")
    b.expect_devices_screen()

    a.log_in_with_passkey(user)
    in_use = a.page.locator("#concurrent-dialog")
    expect(in_use).to_be_visible()
    expect(in_use.locator("#concurrent-message")).to_have_text(IN_USE)
    expect(in_use.locator("#concurrent-devices")).to_contain_text("Bob phone")
    screenshot(a.page, "passkey-in-use")
    in_use.get_by_role("button", name="Continue").click()
    a.expect_devices_screen()
    expect(a.device("Alice laptop")).to_contain_text("This device")
    expect(b.banner).to_contain_text("Signed in on another device")
    b.expect_login_screen()
    assert authenticator.credentials()[0]["signCount"] >= 1

    a.open_account()
    expect(a.passkeys_form.locator("#passkey-list li time")).to_have_count(2)      # now used once
    codes = a.account_panel.locator("#codes-form")
    codes.get_by_role("button", name="Confirm with a passkey instead").click()
    assert len(a.save_recovery_codes()) == 10         # and the panel read again: a click meanwhile may miss

    row.get_by_role("button", name="Remove").click()
    expect(a.page.locator("#reauth-dialog h2")).to_contain_text("Remove the passkey")
    a.confirm_it_is_me(password=None)
    expect(a.passkeys_form.locator("#passkey-list li")).to_have_count(0)
    expect(a.account_panel.locator("[data-passkey]:visible")).to_have_count(0)

    a.log_out()                               # the passkey is gone: the browser has none to offer for it
    a.log_in_with_passkey(user)
    expect(a.login_form.locator(".error")).to_contain_text("This passkey was not accepted")
    a.expect_login_screen()


def test_a_passkey_without_a_username_finds_the_device_key_of_its_account(make_server, new_device, screenshot):
    url, _ = make_server(host_name="localhost")
    a = new_device(url).open()
    VirtualAuthenticator(a.page)
    user = unique_name()
    a.register(user, device_name="Alice laptop")
    a.add_passkey()
    expect(a.passkeys_form.locator("#passkey-list li")).to_have_count(1)
    a.passkeys_form.locator("#passkey-list li").get_by_role("button", name="Rename").click()
    a.page.locator("#passkey-name").fill("Laptop fingerprint")
    a.page.locator("#passkey-name-dialog").get_by_role("button", name="Save").click()
    expect(a.passkey("Laptop fingerprint")).to_be_visible()
    a.log_out()

    a.go("login")
    screenshot(a.page, "passkey-login")
    a.log_in_with_passkey()                   # no username typed: the passkey says whose account it is
    a.expect_devices_screen()
    expect(a.page.locator("#whoami-text")).to_contain_text(user)


def test_passkey_texts_are_in_japanese(make_server, new_device, screenshot):
    url, _ = make_server(host_name="localhost")
    a = new_device(url, locale="ja-JP").open()
    VirtualAuthenticator(a.page, defaultBackupEligibility=True, defaultBackupState=True)   # a synced passkey
    expect(a.login_form.locator("#login-passkey")).to_have_text("パスキーでログイン")
    a.register(unique_name(), device_name="Alice laptop")
    a.open_account()
    expect(a.passkeys_form.locator("h2")).to_have_text("パスキー")
    a.passkeys_form.get_by_role("button", name="パスキーを追加").click()
    dialog = a.page.locator("#reauth-dialog")
    expect(dialog.locator("h2")).to_have_text("パスキーを追加")
    expect(dialog.get_by_role("button", name="確認")).to_be_visible()
    expect(dialog.get_by_label("パスワード")).to_be_visible()
    screenshot(a.page, "ja-passkey-confirm")
    a.confirm_it_is_me()
    expect(a.passkeys_form.locator(".note")).to_contain_text("を追加しました")
    expect(a.passkeys_form.locator("#passkey-list li")).to_contain_text("同期済み")
    a.passkeys_form.get_by_role("button", name="パスキーを追加").click()
    expect(dialog.get_by_role("button", name="パスキーを使う")).to_be_visible()
    dialog.get_by_role("button", name="キャンセル").click()
    expect(a.account_panel.locator("#codes-form [data-passkey]")).to_have_text("代わりにパスキーで確認")
    a.page.evaluate("window.scrollTo(0, 0)")
    screenshot(a.page, "ja-passkeys", full_page=True)
