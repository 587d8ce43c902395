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
        self.expect_devices_screen()

    def log_in(self, username: str, password: str = PASSWORD) -> None:
        self.tab("Log in")
        self.login_form.get_by_label("Username").fill(username)
        self.login_form.get_by_label("Password").fill(password)
        self.login_form.get_by_role("button", name="Log in").click()

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

