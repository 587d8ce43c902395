"""Accounts brought by `citylogin accounts import` (SPEC §17) in Chromium, in English and Japanese: the console's
account page says where one came from and when, and whether its password is still the source's hash or was
upgraded to citylogin's own."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from tests.browser.test_admin_console import find, open_console, operator
from tests.conftest import unique_name
from tests.support.imported_accounts import put_imported_account
from tests.support.live import PASSWORD

CONSOLE_TEXTS = {
    "en": {"source": "Source", "keycloak": re.compile(r"^Imported from Keycloak, Mar 3, 2025$"),
           "csv": re.compile(r"^Imported from a CSV file, Mar 3, 2025$"),
           "kept": "Imported hash (not upgraded yet)", "upgraded": "Upgraded to citylogin's own"},
    "ja": {"source": "移行元", "keycloak": re.compile(r"^Keycloak から取り込み \(2025/0?3/0?3\)$"),
           "csv": re.compile(r"^CSV ファイルから取り込み \(2025/0?3/0?3\)$"),
           "kept": "取り込んだハッシュ (未更新)", "upgraded": "citylogin のハッシュに更新済み"},
}


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
    upgraded = put_imported_account(ctx, username=f"{name}u", email=f"{name}u@example.com", source="csv",
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
