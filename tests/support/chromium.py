"""The run's one Chromium per worker (Debian's /usr/bin/chromium driven by Playwright), for every test that
drives a browser: the browser tests and the conformance plans' person. One sync Playwright per worker (a
second one started in the same worker fails), so the fixture is session-scoped and registered for the whole
suite (tests/conftest.py's pytest_plugins).

Skipped only when /usr/bin/chromium is missing and CI is unset; under CI a missing Chromium fails."""
from __future__ import annotations

import logging
import os

import pytest

CHROMIUM = "/usr/bin/chromium"
# How long an `expect(...)` waits for what a page shows (Playwright's default: 5 s). A page waits on the
# server, DynamoDB Local and the browser's own crypto, all slow on a busy machine; a passing expect returns
# as soon as it holds, so only a failing one waits this long.
EXPECT_TIMEOUT_MS = 30_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


class PlaywrightTaskNoise(logging.Filter):
    """Drops asyncio's "Task was destroyed but it is pending!" for a task of Playwright's own: a page whose
    test held a request (a route it never answers, on purpose) leaves one, and the garbage collector
    finds it whenever it runs, in whichever later test of the worker, whose log it would then fail."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("Task was destroyed but it is pending!" in message and "/playwright/" in message)


def chromium_or_skip() -> str:
    """/usr/bin/chromium, or the test is skipped (failed under CI) when it is missing."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; CI must run the browser tests (bash scripts/setup.sh --browser)")
    pytest.skip(f"{CHROMIUM} is missing: run `bash scripts/setup.sh --browser` to run the browser tests")


@pytest.fixture(scope="session")
def browser():
    executable = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    logging.getLogger("asyncio").addFilter(PlaywrightTaskNoise())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
