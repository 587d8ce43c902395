"""One browser context driving the web app like a person: a device in the browser tests."""
from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.support.live import PASSWORD

TIMEOUT_MS = 10_000


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
        self.page.locator(".tabs:visible").get_by_role("button", name=name, exact=True).click()

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
        expect(self.page.locator("#devices-panel")).to_be_visible()
        expect(self.device_list.locator("li").first).to_be_visible()

    def expect_login_screen(self) -> None:
        expect(self.login_form).to_be_visible()
        expect(self.page.locator("#home-screen")).to_be_hidden()

    # --- flows -------------------------------------------------------------------------

    def register(self, username: str, *, device_name: str, password: str = PASSWORD) -> None:
        self.tab("Create account")
        form = self.page.locator("#register-form")
        form.get_by_label("Username").fill(username)
        form.get_by_label("E-mail").fill(f"{username}@example.com")
        form.get_by_label("Password").fill(password)
        form.get_by_label("Device name").fill(device_name)
        form.get_by_role("button", name="Create account").click()
        self.save_recovery_codes()
        self.expect_devices_screen()

    def save_recovery_codes(self) -> list[str]:
        """Reads the ten codes the codes dialog shows once, then closes it with "I have saved them"."""
        dialog = self.page.locator("#codes-dialog")
        expect(dialog).to_be_visible()
        expect(dialog.locator("#codes-list li")).to_have_count(10)
        codes = dialog.locator("#codes-list code").all_inner_texts()
        self.recovery_codes = codes
        dialog.get_by_role("button", name="I have saved them").click()
        expect(dialog).to_be_hidden()
        return codes

    def log_in(self, username: str, password: str = PASSWORD) -> None:
        self.tab("Log in")
        self.login_form.get_by_label("Username").fill(username)
        self.login_form.get_by_label("Password").fill(password)
        self.login_form.get_by_role("button", name="Log in").click()

    def log_out(self) -> None:
        self.page.locator("#logout-button").click()
        self.expect_login_screen()

    def recover(self, username: str, code: str, *, device_name: str, password: str = PASSWORD,
                unbind_others: bool = False) -> None:
        """"Lost all my devices?" on the login screen, with one recovery code."""
        self.tab("Log in")
        self.login_form.get_by_role("button", name="Lost all my devices?").click()
        form = self.recover_form
        form.get_by_label("Username").fill(username)
        form.get_by_label("Password").fill(password)
        form.get_by_label("Recovery code").fill(code)
        form.get_by_label("Device name").fill(device_name)
        form.get_by_label("Remove my other devices").set_checked(unbind_others)
        form.get_by_role("button", name="Recover and log in").click()

    @property
    def recover_form(self) -> Locator:
        return self.page.locator("#recover-form")

    @property
    def account_panel(self) -> Locator:
        return self.page.locator("#account-panel")

    def open_account(self) -> Locator:
        self.tab("Account")
        expect(self.account_panel).to_be_visible()
        expect(self.page.locator("#account-username")).not_to_have_text("—")
        return self.account_panel

    def change_password(self, current: str, new: str, *, log_out_others: bool = True) -> Locator:
        """Fills and sends the Account page's password form; returns the form."""
        form = self.open_account().locator("#password-form")
        form.get_by_label("Current password").fill(current)
        form.get_by_label("New password").fill(new)
        form.get_by_label("Log out my other devices").set_checked(log_out_others)
        form.get_by_role("button", name="Change password").click()
        return form

    def show_pairing_code(self) -> str:
        self.tab("Add a device")
        self.page.get_by_role("button", name="Show a pairing code").click()
        payload = self.page.locator("#add-device-panel").get_by_label("Pairing code")
        expect(payload).not_to_have_value("")
        expect(self.page.locator("#pairing-qr")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
        return payload.input_value()

    def pair(self, payload: str, username: str, *, device_name: str, password: str = PASSWORD,
             via_link: bool = True) -> None:
        """Pairs this browser: opens the `/#pair=` link (prefilled form) or pastes the payload."""
        form = self.page.locator("#pair-form")
        if via_link:
            self.open(f"#pair={payload}")
            expect(form).to_be_visible()
            expect(form.get_by_label("Pairing code")).to_have_value(payload)
        else:
            self.tab("Pair this browser")
            form.get_by_label("Pairing code").fill(payload)
        form.get_by_label("Username").fill(username)
        form.get_by_label("Password").fill(password)
        form.get_by_label("Device name").fill(device_name)
        form.get_by_role("button", name="Pair and log in").click()

    def refresh_devices(self) -> None:
        """Reloads the device list: opening the Devices tab loads it, or its Refresh button."""
        if self.page.locator("#devices-panel").is_hidden():
            self.tab("Devices")
        else:
            self.page.locator("#devices-refresh").click()

