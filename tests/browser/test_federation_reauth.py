"""An account made with Google has no password (SPEC §16): in Chromium, its Account page offers "Confirm with
Google" where the forms ask for the password again, and "Set a password". Confirming goes to the upstream (its own
node-oidc-provider process, answering as Google does) for a fresh sign-in, comes back to `/#account` and finishes
what the person started: new recovery codes, then the account's deletion."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.pages import DevicePage
from tests.browser.test_federation import continue_with_google, google, providers, texts  # noqa: F401 (fixtures)
from tests.conftest import unique_name

pytestmark = pytest.mark.slow


def sign_up_with_google(device: DevicePage, upstream, say) -> tuple[str, str]:
    """A new person signs up with Google on this browser: (sub, username)."""
    sub, user = f"g-{unique_name()}", unique_name("fed")
    upstream.next_login(sub=sub, email=f"{user}@example.com", email_verified=True)
    continue_with_google(device, say)
    form = device.page.locator("#federation-form")
    form.locator("#federation-username").fill(user)
    form.locator("button[type=submit]").click()
    device.save_recovery_codes()
    device.expect_devices_screen()
    return sub, user


def test_an_account_made_with_google_confirms_with_google_for_new_codes_and_its_deletion(google, new_device):  # noqa: F811
    url, upstream, _ = google(max_concurrent_devices=1)
    say = texts("en")
    device = new_device(url).open()
    sub, user = sign_up_with_google(device, upstream, say)

    account = device.open_account()
    codes = account.locator("#codes-form")
    confirm = codes.get_by_role("button", name=say("web.federation.confirm_with", name="Google"))
    expect(confirm).to_be_visible()
    expect(codes.locator("#codes-password")).to_be_hidden()                  # no password to ask for
    expect(account.locator("#password-form h2")).to_have_text(say("web.account.password_set_title"))

    upstream.next_login(sub=sub, email=f"{user}@example.com", email_verified=True)
    confirm.click()                                                            # to Google and back to /#account
    new_codes = device.save_recovery_codes()
    assert len(new_codes) == 10
    assert device.page.evaluate("sessionStorage.getItem('citylogin.reauth.pending')") is None

    form = device.open_account().locator("#delete-form")
    form.get_by_label(say("web.account.delete_confirm")).check()
    upstream.next_login(sub=sub, email=f"{user}@example.com", email_verified=True)
    form.get_by_role("button", name=say("web.federation.confirm_with", name="Google")).click()
    device.expect_login_screen()
    expect(device.banner).to_contain_text("deleted")
