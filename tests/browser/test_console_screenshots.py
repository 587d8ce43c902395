"""The operators' console as docs/guides/operators.md shows it: an admin finds a person, opens their
page, locks the account behind the dialog that asks why, reads the audit trail and registers an
app. The test checks each screen, then saves it (tests/screenshots/console-*.png).

The guide's pictures are these screenshots. To remake them (Chromium at /usr/bin/chromium):

    DOCS_IMAGES=1 .venv/bin/python -m pytest tests/browser/test_console_screenshots.py -q

which also copies them into docs/images/, each re-encoded smaller when it is over 200 KB."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from accounts import user_service as users
from accounts.models import Role
from citylogin.client.api import Client
from tests.browser.conftest import SCREENSHOTS
from tests.support.live import PASSWORD, add_device

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SHOTS = ("console-search", "console-account", "console-reason", "console-audit", "console-apps")
LARGEST = 200 * 1024


def test_the_console_s_screens_as_the_operators_guide_shows_them(make_server, new_device, screenshot):
    url, ctx = make_server(max_concurrent_devices=3)
    device = new_device(url).open()
    device.register("carol", device_name="Carol's laptop")
    carol = users.find_uuid_by_username(ctx, username="carol")
    assert carol
    users.set_role(ctx, user_uuid=carol, role=Role.ADMIN, granted=True)
    alice = Client(url)
    alice.register(username="alice", email="alice@example.com", password=PASSWORD, device_name="Alice's laptop")
    alice.login(PASSWORD)
    add_device(ctx, alice, name="Alice's phone").login(PASSWORD)

    page = device.page
    page.goto(f"{url}/admin/")
    expect(page.locator("#operator-role")).to_have_text("Admin")
    form = page.locator("#search-form")
    form.locator("#search-value").fill("alice")
    form.locator("button[type=submit]").click()
    expect(form.locator("#search-results button")).to_have_count(1)
    expect(form.locator("#search-results")).to_contain_text("alice")
    screenshot(page, "console-search")

    form.locator("#search-results button").first.click()
    view = page.locator("#account-view")
    expect(view).not_to_have_attribute("aria-busy", "true")
    expect(view.locator("#device-rows tr")).to_have_count(2)
    expect(view.locator("#session-rows tr")).to_have_count(2)
    _part(view, view.locator("#session-rows"), "console-account")

    lock = view.locator("#account-actions button[data-action=lock]")
    lock.click()
    dialog = page.locator("#action-dialog")
    expect(dialog.locator("#action-reason")).to_be_focused()
    dialog.locator("#action-reason").fill("ticket 12: phone stolen")
    screenshot(page, "console-reason")

    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#action-done")).to_have_text("Done: Lock account (alice).")
    trail = view.locator("#audit-rows tr", has_text="ticket 12: phone stolen")
    expect(trail).to_contain_text("Lock account")
    expect(trail).to_contain_text("carol (Admin)")
    expect(trail).to_contain_text("Sessions ended: 2")
    _part(view.locator("h2", has_text="Audit trail"), view.locator("#audit-rows"), "console-audit")

    _register_an_app(page)
    screenshot(page, "console-apps")
    if os.environ.get("DOCS_IMAGES"):
        copy_to_docs()


def _register_an_app(page: Page) -> None:
    """Apps tab: add one app (why: asked by the same dialog) and show its secret, once."""
    page.locator("#console .tabs button[data-tab=apps]").click()
    panel = page.locator("#apps-panel")
    expect(panel).not_to_have_attribute("aria-busy", "true")
    form = panel.locator("#app-form")
    form.get_by_label("Name").fill("Library notes")
    form.get_by_label("Redirect URIs").fill("https://notes.example.com/callback")
    form.get_by_role("button", name="Add app").click()
    dialog = page.locator("#action-dialog")
    dialog.locator("#action-reason").fill("ticket 13: the library's notes app")
    dialog.locator("#action-confirm").click()
    expect(dialog).to_be_hidden()
    expect(panel.locator("#app-rows tr", has_text="Library notes")).to_contain_text("notes.example.com/callback")
    expect(panel.locator("#app-secret")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")


def _part(top: Locator, bottom: Locator, name: str) -> Path:
    """Saves the page from `top` to `bottom` (at most a viewport high) as tests/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page = top.page
    top.evaluate("(node) => node.scrollIntoView()")
    first, last = top.bounding_box(), bottom.bounding_box()
    assert first and last
    size = page.viewport_size
    assert size
    y = max(0, first["y"] - 12)
    height = min(size["height"] - y, last["y"] + last["height"] + 20 - y)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), clip={"x": 0, "y": y, "width": size["width"], "height": height})
    return path


def copy_to_docs() -> None:
    """The screenshots into docs/images/, each over LARGEST re-encoded with a 256-colour palette."""
    from PIL import Image

    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    for name in SHOTS:
        source, target = SCREENSHOTS / f"{name}.png", DOCS_IMAGES / f"{name}.png"
        shutil.copyfile(source, target)
        if target.stat().st_size > LARGEST:
            with Image.open(source) as image:
                image.convert("RGB").quantize(colors=256).save(target, optimize=True)
