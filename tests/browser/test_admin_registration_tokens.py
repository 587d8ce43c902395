"""The console's initial access tokens (SPEC §14, §15), in Chromium: an admin makes one with its expiry and
number of registrations and a reason; the token is shown once and never listed; the list says how many uses
are left as apps register themselves with it, and the app list marks those apps; a revoked token registers
nothing more."""
from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from accounts.models import Role
from relying_parties import registration_tokens
from tests.browser.test_admin_console import act_on_app, open_console, operator


def _register(url: str, token: str) -> requests.Response:
    return requests.post(url + "/oidc/register", json={"redirect_uris": ["https://rp.example/callback"],
                                                       "client_name": "Rebus"},
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_an_admin_makes_a_token_sees_its_uses_and_revokes_it(make_server, new_device):
    url, ctx = make_server()
    admin = open_console(operator(new_device, url, ctx, Role.ADMIN))
    admin.locator("#console .tabs button[data-tab=apps]").click()
    section = admin.locator("#tokens-section")
    expect(section.locator("#tokens-none")).to_be_visible()
    form = section.locator("#token-form")
    form.get_by_label("Valid for").select_option("604800")
    dialog = admin.locator("#action-dialog")
    form.get_by_label("Apps it may register").fill("1")
    form.get_by_role("button", name="Make token").click()
    expect(dialog.locator("#action-message")).to_contain_text("up to 1 app until")  # issue 83: one, other
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    form.get_by_label("Apps it may register").fill("2")
    form.get_by_role("button", name="Make token").click()
    expect(dialog.locator("#action-message")).to_contain_text("up to 2 apps until")
    dialog.locator("#action-reason").fill("ticket 30: the partner's pilot")
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()
    shown = section.locator("#token-made-value")
    expect(shown).to_have_text(re.compile(r"^[0-9a-f]{16}\.\S{43}$"))
    expect(section.locator("#token-made")).to_be_focused()
    token = shown.inner_text()
    token_id = token.partition(".")[0]
    row = section.locator("#token-rows tr", has_text=token_id)
    expect(row).to_contain_text("2 of 2")
    assert token not in section.locator("#token-rows").inner_text()      # shown once, never listed
    assert registration_tokens.store(ctx).get(token_id).expires_epoch - int(ctx.now().timestamp()) in range(
        604790, 604801)

    assert _register(url, token).status_code == 201
    admin.locator("#apps-reload").click()
    expect(row).to_contain_text("1 of 2")
    expect(admin.locator("#app-rows tr", has_text="Rebus")).to_contain_text("registered itself")

    act_on_app(admin, row, "Revoke", "ticket 31: the pilot ended")
    expect(row).to_have_count(0)
    expect(section.locator("#tokens-done")).to_have_text(f"Done: Revoke ({token_id}).")
    assert _register(url, token).status_code == 401
