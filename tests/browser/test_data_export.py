"""A person's data export in Chromium: "Download my data" on the Account page saves one JSON file of
everything stored about them (its name from the day, its content their account, devices and sessions),
in English and Japanese, at 390 and 1280 px; an operator's "Export data" on the console saves the one
made for the person, and the audit trail names it with its reason."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from accounts import user_service as users
from accounts.models import Role
from flows import data_export
from tests.browser.test_admin_console import act, action, audit_row, find, open_console, operator
from tests.conftest import unique_name
from tests.support.live import PASSWORD, register_device

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 800}
LABELS = {"en": "Download my data", "ja": "データをダウンロード"}
PRINTABLE = {"en": "Download a printable copy", "ja": "印刷用のコピーをダウンロード"}
FILE_NAME = re.compile(r"citylogin-data-\d{4}-\d{2}-\d{2}\.json")


def saved(page, button, tmp_path) -> dict:
    """Clicks `button`, waits for the file the browser saves, and reads it."""
    with page.expect_download() as download:
        button.click()
    assert FILE_NAME.fullmatch(download.value.suggested_filename), download.value.suggested_filename
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    return json.loads(path.read_text())


@pytest.mark.parametrize(("locale", "viewport"), [("en", WIDE), ("ja", PHONE)])
def test_download_my_data_saves_the_persons_export(make_server, new_device, tmp_path, screenshot, locale, viewport):
    url, ctx = make_server()
    device = new_device(url, viewport=viewport, accept_downloads=True).open()
    username = unique_name()
    if locale != "en":         # before registering: the account is made in the page's language
        device.switch_language(locale)
    device.register(username, device_name="Alice laptop")
    panel = device.open_account()
    form = panel.locator("#export-form")
    button = form.get_by_role("button", name=LABELS[locale], exact=True)
    button.scroll_into_view_if_needed()
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box  # fits the screen

    data = saved(device.page, button, tmp_path)
    user_uuid = users.find_uuid_by_username(ctx, username=username)
    assert data["format"] == "citylogin-export/1" and data["user_uuid"] == user_uuid
    assert data["users"][0]["username"] == username and data["users"][0]["locale"] == locale
    assert [d["device_name"] for d in data["devices"] if d["device_id"] != "#registered"] == ["Alice laptop"]
    assert [s["status"] for s in data["sessions"]] == ["active"]
    assert "password_hash" not in json.dumps(data)
    expect(form.locator(".error")).to_be_hidden()
    screenshot(device.page, f"data_export_{locale}_{viewport['width']}")


SEE = {"en": "See my data", "ja": "データを見る"}
TITLES = {"en": "Your devices", "ja": "あなたのデバイス"}
ZONES = {"en": "Europe/Paris", "ja": "Asia/Tokyo"}
# What overflows the screen sideways (the page, or any element past its right edge)
OVERFLOW = """() => {
  const wide = [...document.querySelectorAll("#my-data-panel *")].filter((el) => el.getClientRects().length
    && el.getBoundingClientRect().right > innerWidth + 0.5);
  return { page: document.documentElement.scrollWidth, screen: innerWidth,
           wide: wide.slice(0, 3).map((el) => `${el.tagName}.${el.className}: ${el.textContent.slice(0, 40)}`) };
}"""


@pytest.mark.parametrize("locale", ["en", "ja"])
@pytest.mark.parametrize("viewport", [PHONE, WIDE], ids=["390", "1280"])
def test_see_my_data_shows_the_readable_copy(make_server, new_device, tmp_path, screenshot, locale, viewport):
    url, ctx = make_server()
    device = new_device(url, viewport=viewport, accept_downloads=True, timezone_id=ZONES[locale]).open()
    device.register(unique_name(), device_name="<b>Alice</b>'s laptop")  # typed markup stays text
    if locale != "en":
        device.switch_language(locale)
    panel = device.open_account()
    panel.get_by_role("button", name=SEE[locale], exact=True).click()
    page = device.page.locator("#my-data-panel")
    expect(page).to_be_visible()
    expect(page).not_to_have_attribute("aria-busy", "true")
    copy = page.locator("#my-data")
    expect(copy.locator("section[data-source=devices] h2")).to_have_text(TITLES[locale])
    devices = copy.locator("section[data-source=devices]")
    expect(devices.locator("h3").filter(has_text="Alice")).to_have_text("<b>Alice</b>'s laptop")
    expect(copy).to_contain_text(ZONES[locale])                       # the browser's zone, said
    expect(copy.locator("section")).to_have_count(len(data_export.SECTIONS))  # each, the mail we send too
    text = copy.inner_text()
    # no key's parts, no epoch (a digit run inside an id, a UUID's "-1184030446b4", is no epoch)
    internal = r"live#|audit#|#registered|username#|(?<![0-9A-Za-z_-])1\d{9}(?![0-9A-Za-z_])"
    assert not re.search(internal, text), text[:500]
    wide = device.page.evaluate(OVERFLOW)
    assert wide["page"] <= wide["screen"] and not wide["wide"], wide
    screenshot(device.page, f"data_export_readable_{locale}_{viewport['width']}")

    with device.page.expect_download() as download:
        page.get_by_role("button", name=PRINTABLE[locale], exact=True).click()
    assert re.fullmatch(r"citylogin-data-\d{4}-\d{2}-\d{2}\.html", download.value.suggested_filename)
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    saved_page = path.read_text()
    assert f'<html lang="{locale}">' in saved_page and ZONES[locale] in saved_page
    assert "&lt;b&gt;Alice&lt;/b&gt;" in saved_page and "<b>Alice" not in saved_page
    page.locator("#my-data-back").click()
    expect(panel).to_be_visible()


def test_an_operator_exports_a_persons_data_from_the_console(make_server, new_device, tmp_path):
    url, ctx = make_server()
    support = operator(new_device, url, ctx, Role.SUPPORT)
    page = open_console(support)
    target = register_device(url)
    target.login(PASSWORD)
    view = find(page, target.key_file.username)

    button = action(view, "export")
    expect(button).to_have_text("Export data")
    with page.expect_download() as download:
        act(page, button, "ticket 21: access request")
    assert FILE_NAME.fullmatch(download.value.suggested_filename)
    path = tmp_path / "export.json"
    download.value.save_as(path)
    data = json.loads(path.read_text())
    assert data["user_uuid"] == target.key_file.user_uuid
    assert data["users"][0]["username"] == target.key_file.username
    expect(page.locator("#action-done")).to_be_focused()
    expect(audit_row(view, "ticket 21: access request")).to_contain_text("Export data")
    expect(audit_row(view, "ticket 21: access request")).to_contain_text("Items exported:")
