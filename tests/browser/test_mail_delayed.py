"""The pages say when mail is late (issue 65 item 2) in Chromium: while the mail service refuses every
try, "Resend verification" on the Account page and "Forgot password?" (for an address no account has:
the answer tells nothing of the address) say the mail is delayed instead of "on its way"."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.conftest import unique_name


class Down:
    """A mail service that is down: every try refused, inline (the test owns each try)."""

    def send(self, message) -> None:
        raise ConnectionRefusedError(111, "Connection refused")


def test_the_pages_say_the_mail_is_delayed_while_it_cannot_go(make_server, new_device):
    url, ctx = make_server()
    ctx.notifier.backend = Down()
    a = new_device(url).open()
    a.register(unique_name(), device_name="Alice laptop")  # its welcome and verification mails fail
    account = a.open_account()
    account.get_by_role("button", name="Resend verification").click()
    expect(account.locator("#account-resend-note")).to_contain_text("the mail is delayed")

    a.log_out()
    a.login_form.get_by_role("button", name="Forgot password?").click()
    forgot = a.page.locator("#forgot-form")
    forgot.get_by_label("E-mail").fill(f"{unique_name()}@example.com")  # no account has it
    forgot.get_by_role("button", name="Send the link").click()
    expect(forgot.locator(".note")).to_contain_text("The mail is delayed at the moment")
