"""One browser context driving the web app like a person: a device in the browser tests."""
from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.support.live import PASSWORD

TIMEOUT_MS = 30_000  # an action waits this long for its element (a busy machine is slow, not wrong)
# Chromium's virtual authenticator (CDP WebAuthn domain) as a platform authenticator that verifies
# the person and answers every prompt at once.
PLATFORM_AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                          "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}


class VirtualAuthenticator:
    """A virtual authenticator in one page of a device: its passkeys are what the page made."""

    def __init__(self, page: Page, **options: bool) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable")
        added = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {**PLATFORM_AUTHENTICATOR, **options}})
        self.id = added["authenticatorId"]

    def credentials(self) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"]


class DevicePage:
    def __init__(self, page: Page, url: str) -> None:
        self.page, self.url = page, url
        self.errors: list[str] = []
        self.recovery_codes: list[str] = []     # the codes shown after the last registration
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._note_policy_violation)
        page.set_default_timeout(TIMEOUT_MS)

    def _note_policy_violation(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.errors.append(message.text)

    # --- screens -----------------------------------------------------------------------

    def open(self, fragment: str = "") -> "DevicePage":
        self.page.goto(f"{self.url}/{fragment}")
        expect(self.page.locator("#auth-screen")).to_be_visible()
        return self

    def tab(self, name: str) -> None:
        """Clicks a tab by its English name (the tests that read the English UI)."""
        self.page.locator(".tabs:visible").get_by_role("button", name=name, exact=True).click()

    def go(self, tab: str) -> None:
        """Clicks a tab by its data-tab, in any language: login, register, pair, devices, sessions, ..."""
        self.page.locator(f".tabs:visible button[data-tab='{tab}']").click()

    def switch_language(self, locale: str) -> None:
        """The header's EN / 日本語 switch."""
        self.page.locator(f"#language-{locale}").click()
        expect(self.page.locator("html")).to_have_attribute("lang", locale)

    @property
    def login_form(self) -> Locator:
        return self.page.locator("#login-form")

    @property
    def device_list(self) -> Locator:
        return self.page.locator("#device-list")

    @property
    def banner(self) -> Locator:
        return self.page.locator("#banner")

    def device(self, name: str) -> Locator:
        return self.device_list.locator("li", has=self.page.locator(".device-name", has_text=name))

    def expect_devices_screen(self) -> None:
        """The device list is shown and its latest read drawn (the panel is aria-busy until then)."""
        expect(self.page.locator("#devices-panel")).to_be_visible()
        expect(self.page.locator("#devices-panel")).not_to_have_attribute("aria-busy", "true")
        expect(self.device_list.locator("li").first).to_be_visible()

    def expect_login_screen(self) -> None:
        expect(self.login_form).to_be_visible()
        expect(self.page.locator("#home-screen")).to_be_hidden()

    # --- flows -------------------------------------------------------------------------

    def register(self, username: str, *, device_name: str, password: str = PASSWORD) -> None:
        self.fill_register_form(username, device_name=device_name, password=password)
        self.save_recovery_codes()
        self.expect_devices_screen()

    def fill_register_form(self, username: str, *, device_name: str, password: str = PASSWORD,
                           email: str | None = None) -> Locator:
        """Fills "Create account" and sends it; returns the form."""
        self.go("register")
        form = self.page.locator("#register-form")
        form.locator("#register-username").fill(username)
        form.locator("#register-email").fill(email if email is not None else f"{username}@example.com")
        form.locator("#register-password").fill(password)
        form.locator("#register-device").fill(device_name)
        form.locator("button[type=submit]").click()
        return form

    def go_on_without_confirming_the_address(self) -> None:
        """A new account's sign-in for an app that asked for `email`: the address question (the app is told
        only a verified address) answered "Continue without it", as for an app that keys people by `sub`."""
        dialog = self.page.locator("#verify-first-dialog")
        expect(dialog).to_be_visible()
        dialog.get_by_role("button", name="Continue without it").click()

    def save_recovery_codes(self) -> list[str]:
        """Reads the ten codes the codes dialog shows once, then closes it with "I have saved them"."""
        dialog = self.page.locator("#codes-dialog")
        expect(dialog).to_be_visible()
        expect(dialog.locator("#codes-list li")).to_have_count(10)
        codes = dialog.locator("#codes-list code").all_inner_texts()
        self.recovery_codes = codes
        dialog.locator("#codes-saved").click()
        expect(dialog).to_be_hidden()
        if self.account_panel.is_visible():      # new codes from the Account panel: it reads the account again
            self.expect_account_drawn()
        return codes

    def log_in(self, username: str, password: str = PASSWORD) -> None:
        self.go("login")
        self.login_form.locator("#login-username").fill(username)
        self.login_form.locator("#login-password").fill(password)
        self.login_form.locator("button[type=submit]").click()

    def log_out(self) -> None:
        self.page.locator("#logout-button").click()
        self.expect_login_screen()

    def recover(self, username: str, code: str, *, device_name: str, password: str = PASSWORD,
                unbind_others: bool = False) -> None:
        """"Lost all my devices?" on the login screen, with one recovery code."""
        self.go("login")
        self.login_form.locator("button[data-show='recover']:visible").first.click()   # or the new computer's link
        form = self.recover_form
        form.locator("#recover-username").fill(username)
        form.locator("#recover-password").fill(password)
        form.locator("#recover-code").fill(code)
        form.locator("#recover-device").fill(device_name)
        form.locator("#recover-unbind").set_checked(unbind_others)
        form.locator("button[type=submit]").click()

    @property
    def recover_form(self) -> Locator:
        return self.page.locator("#recover-form")

    @property
    def account_panel(self) -> Locator:
        return self.page.locator("#account-panel")

    def open_account(self) -> Locator:
        self.go("account")
        expect(self.account_panel).to_be_visible()
        self.expect_account_drawn()
        return self.account_panel

    def expect_account_drawn(self) -> None:
        """Waits until the Account panel has read the account and its passkeys (it is aria-busy until then)."""
        expect(self.account_panel).not_to_have_attribute("aria-busy", "true")
        expect(self.page.locator("#account-username")).not_to_have_text("—")
        expect(self.page.locator("#passkey-list")).not_to_have_attribute("aria-busy", "true")

    def change_password(self, current: str, new: str, *, log_out_others: bool = True) -> Locator:
        """Fills and sends the Account page's password form; returns the form."""
        form = self.open_account().locator("#password-form")
        form.locator("#password-current").fill(current)
        form.locator("#password-new").fill(new)
        form.locator("#password-logout-others").set_checked(log_out_others)
        form.locator("button[type=submit]").click()
        return form

    @property
    def passkeys_form(self) -> Locator:
        return self.page.locator("#passkeys-form")

    def passkey(self, name: str) -> Locator:
        return self.passkeys_form.locator("#passkey-list li", has=self.page.locator(".device-name", has_text=name))

    def add_passkey(self, *, password: str | None = PASSWORD) -> None:
        """Account → "Add a passkey", confirmed with the password (or, password None, a passkey)."""
        self.open_account()
        self.passkeys_form.locator("button[type=submit]").click()
        self.confirm_it_is_me(password=password)

    def confirm_it_is_me(self, *, password: str | None = PASSWORD) -> Locator:
        """Answers the dialog that asks for the password or a passkey first; returns the dialog."""
        dialog = self.page.locator("#reauth-dialog")
        expect(dialog).to_be_visible()
        if password is None:
            dialog.locator("button[value=passkey]").click()
        else:
            dialog.locator("#reauth-password").fill(password)
            dialog.locator("button[value=password]").click()
        expect(dialog).to_be_hidden()
        return dialog

    def log_in_with_passkey(self, username: str = "") -> None:
        """"Sign in with a passkey" on the login form, with `username` typed (empty: any passkey)."""
        self.go("login")
        self.login_form.locator("#login-username").fill(username)
        self.login_form.locator("#login-passkey").click()

    def show_pairing_link(self) -> str:
        """"Add a device" → show a code: the link the QR code holds (`<public URL>/#pair=<payload>`)."""
        self.go("add-device")
        self.page.locator("#pairing-create").click()
        link = self.page.locator("#pairing-payload")
        expect(link).to_have_value(re.compile(r"/#pair=[A-Za-z0-9_-]+$"))
        expect(self.page.locator("#pairing-qr")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
        return link.input_value()

    def show_pairing_code(self) -> str:
        """The bare payload of the link "Add a device" shows."""
        return self.show_pairing_link().split("#pair=", 1)[1]

    @property
    def pair_form(self) -> Locator:
        return self.page.locator("#pair-form")

    def open_pairing_link(self, link: str) -> Locator:
        """Opens a pairing link as a phone's camera app would: the pair form, its code filled in."""
        self.page.goto(link)
        expect(self.pair_form).to_be_visible()
        expect(self.pair_form.locator("#pair-code")).to_have_value(link.split("#pair=", 1)[1])
        return self.pair_form

    def pair(self, payload: str, username: str, *, device_name: str, password: str = PASSWORD,
             via_link: bool = True) -> None:
        """Pairs this browser: opens the `/#pair=` link (prefilled form) or pastes the payload."""
        if via_link:
            self.open_pairing_link(f"{self.url}/#pair={payload}")
        else:
            self.go("pair")
            self.pair_form.locator("#pair-code").fill(payload)
        self.send_pair_form(username, device_name=device_name, password=password)

    def send_pair_form(self, username: str, *, device_name: str, password: str = PASSWORD) -> None:
        """Fills the pair form's credentials and device name (the code is already in it) and sends it."""
        form = self.pair_form
        form.locator("#pair-username").fill(username)
        form.locator("#pair-password").fill(password)
        form.locator("#pair-device").fill(device_name)
        form.locator("button[type=submit]").click()

    def refresh_devices(self) -> None:
        """Reloads the device list: opening the Devices tab loads it, or its Refresh button."""
        if self.page.locator("#devices-panel").is_hidden():
            self.go("devices")
        else:
            self.page.locator("#devices-refresh").click()
        self.expect_devices_screen()

