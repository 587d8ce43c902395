"""Browser tests: Debian Chromium driven by Playwright against the all-in-one app on a real socket.

Skipped only when /usr/bin/chromium is missing and CI is unset; under CI a missing Chromium fails."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chromium import chromium_or_skip

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
DESKTOP = {"width": 1100, "height": 760}
_BOTTOM = """Math.ceil(32 + Math.max(...[...document.querySelectorAll('main > :not([hidden]), dialog[open]')]
    .map((node) => node.getBoundingClientRect().bottom), 360))"""


@pytest.fixture(scope="session", autouse=True)
def chromium_path() -> str:
    """Runs first in this folder, so a skip costs no DynamoDB Local start (the browser is
    tests/support/chromium.py's, one per worker)."""
    return chromium_or_skip()


@pytest.fixture
def new_device(browser):
    """new_device(url, **context options) -> a fresh page in its own context: one device each."""
    from tests.browser.pages import DevicePage
    devices: list[DevicePage] = []

    def open_device(url: str, **options) -> DevicePage:
        context = browser.new_context(viewport=options.pop("viewport", DESKTOP), **options)
        devices.append(DevicePage(context.new_page(), url))
        return devices[-1]

    yield open_device
    for device in devices:
        device.page.context.close()
    # Uncaught script errors and Content-Security-Policy violations fail every browser test.
    assert not [e for d in devices for e in d.errors], [d.errors for d in devices]


@pytest.fixture(scope="session")
def screenshot():
    """screenshot(page, name): saves tests/screenshots/<name>.png (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)

    def save(page, name: str, *, full_page: bool = False) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        if full_page:
            page.screenshot(path=str(path), full_page=True)
        else:   # the viewport, cut a little below the content so the images carry no empty half
            page.screenshot(path=str(path), clip={"x": 0, "y": 0, **page.viewport_size,
                                                  "height": min(page.viewport_size["height"], page.evaluate(_BOTTOM))})
        return path

    return save
