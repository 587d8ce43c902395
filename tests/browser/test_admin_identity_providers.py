"""The console's sign-in providers (SPEC §16), in Chromium: an admin adds a provider with its secret (typed,
never shown back), sees it listed with the redirect URI to register, changes it, adds Apple's with its .p8 key
file, and removes one; the page in Japanese names the tab and the columns."""
from __future__ import annotations

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import expect

from accounts.models import Role
from federation import providers
from tests.browser.test_admin_console import act_on_app, open_console, operator

SECRET = "console-secret-" + os.urandom(8).hex()


def test_an_admin_adds_lists_changes_and_removes_a_provider(make_server, new_device, tmp_path):
    url, ctx = make_server(public_url="https://login.example")
    page = open_console(operator(new_device, url, ctx, Role.ADMIN))
    page.locator("#console .tabs button[data-tab=idps]").click()
    panel = page.locator("#idps-panel")
    expect(panel.locator("#idps-none")).to_be_visible()
    form = panel.locator("#idp-form")
    form.get_by_label("Name", exact=True).fill("acme")
    form.get_by_label("Kind").select_option("generic")
    form.get_by_label("Shown as").fill("Acme staff")
    form.get_by_label("Issuer").fill("https://id.acme.example")
    form.get_by_label("Client ID").fill("citylogin")
    form.get_by_label("Client secret").fill(SECRET)
    form.get_by_role("button", name="Add provider").click()
    dialog = page.locator("#action-dialog")
    expect(dialog.locator("#action-message")).to_contain_text("Acme staff")
    dialog.locator("#action-reason").fill("ticket 84: the staff's sign-in")
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()
    row = panel.locator("#idp-rows tr[data-idp=acme]")
    expect(row).to_contain_text("Acme staff")
    expect(row).to_contain_text("https://id.acme.example")
    expect(row).to_contain_text("Offered")
    expect(panel.locator("#idp-redirect")).to_contain_text("https://login.example/federation/acme/callback")
    expect(form.get_by_label("Client secret")).to_have_value("")
    assert SECRET not in page.content()
    assert providers.client_secret(ctx, providers.get_provider(ctx, "acme")) == SECRET

    row.get_by_role("button", name="Change").click()
    expect(form.get_by_label("Name", exact=True)).to_have_value("acme")
    expect(form.get_by_label("Client secret")).to_have_value("")     # never shown back
    form.get_by_label("New accounts with this provider").select_option("deny")
    form.get_by_label("Offer it on the sign-in pages").uncheck()
    form.get_by_role("button", name="Save changes").click()
    dialog.locator("#action-reason").fill("ticket 85: pause")
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("Not offered")
    changed = providers.get_provider(ctx, "acme", include_disabled=True)
    assert (changed.signup, changed.enabled, providers.client_secret(ctx, changed)) == ("deny", False, SECRET)

    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (tmp_path / "AuthKey_KEY1234567.p8").write_bytes(key)
    form.get_by_label("Name", exact=True).fill("apple")
    form.get_by_label("Kind").select_option("apple")
    expect(form.get_by_label("Client secret")).to_be_hidden()
    form.get_by_label("Client ID").fill("com.example.web")
    form.get_by_label("Apple key file (.p8)").set_input_files(str(tmp_path / "AuthKey_KEY1234567.p8"))
    form.get_by_label("Apple team ID").fill("TEAM123456")
    form.get_by_label("Apple key ID").fill("KEY1234567")
    form.get_by_role("button", name="Add provider").click()
    dialog.locator("#action-reason").fill("ticket 86")
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()
    expect(panel.locator("#idp-rows tr[data-idp=apple]")).to_contain_text("https://appleid.apple.com")
    assert providers.client_secret(ctx, providers.get_provider(ctx, "apple")).count(".") == 2

    act_on_app(page, row, "Remove", "ticket 87: gone")
    expect(row).to_have_count(0)
    expect(panel.locator("#idps-done")).to_have_text("Done: Remove (Acme staff).")

    page.locator("#language-ja").click()
    expect(page.locator("#console .tabs button[data-tab=idps]")).to_have_text("サインイン方法")
    expect(panel.locator("#idp-rows tr[data-idp=apple]")).to_contain_text("提供中")
