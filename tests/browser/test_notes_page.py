"""examples/notes in the browser: its page, served by the notes app on its own origin, imports the web
SDK from citylogin (another origin, allowed by CITYLOGIN_CORS_ORIGINS), registers this browser, logs
in, and writes and reads notes through the app's API, which the citylogin guard protects. Three
processes: `citylogin serve`, the notes app, Chromium."""
from __future__ import annotations

import base64
import os
import sys
from contextlib import ExitStack, closing

import pytest
from click.testing import CliRunner
from playwright.sync_api import expect

from citylogin.cli.main import main
from tests.conftest import config_env, unique_name
from tests.support.live import PASSWORD, register_device
from tests.support.notes import add_app, notes_api, running_notes
from tests.support.ports import free_port
from tests.support.services import running_process
from tests.support.waiting import wait_until


# One key-encryption key for the module: its tests share its tables, and so the key ring sealed under it.
KEY_ENCRYPTION_KEY = base64.b64encode(os.urandom(32)).decode()


def beside_notes(base_config) -> tuple[int, int, str, dict[str, str]]:
    """(the notes app's port, citylogin's port, citylogin's URL, citylogin's settings allowing the app's origin)."""
    notes_port, citylogin_port = free_port(), free_port()
    citylogin_url = f"http://127.0.0.1:{citylogin_port}"
    return notes_port, citylogin_port, citylogin_url, {
        **config_env(base_config), "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(citylogin_port),
        "CITYLOGIN_CORS_ORIGINS": f"http://127.0.0.1:{notes_port}", "CITYLOGIN_PUBLIC_URL": citylogin_url,
        "CITYLOGIN_KEY_ENCRYPTION_KEY": KEY_ENCRYPTION_KEY}


@pytest.fixture
def notes_page(base_config):
    """(the notes page's URL (the app in guard mode), citylogin's settings), citylogin allowing its origin."""
    notes_port, citylogin_port, citylogin_url, env = beside_notes(base_config)
    with ExitStack() as stack:
        stack.enter_context(running_process([sys.executable, "-m", "citylogin", "serve"],
                                            port=citylogin_port, env=env, timeout=60))
        credentials = add_app(env, "notes")
        yield stack.enter_context(running_notes(citylogin_url, "guard", port=notes_port, credentials=credentials)), env


def register_on_the_page(page) -> str:
    """A new account made on the notes page's own form, signed in there; its username."""
    username = unique_name()
    register = page.locator("#register-form")
    register.get_by_label("Username").fill(username)
    register.get_by_label("E-mail").fill(f"{username}@example.com")
    register.get_by_label("Password").fill(PASSWORD)
    register.get_by_role("button", name="Create account").click()
    page.wait_for_selector("body[data-state=signed-in]")
    return username


def test_the_notes_page_logs_in_through_the_sdk_and_shows_its_notes(browser, notes_page):
    notes_url, citylogin_env = notes_page
    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(notes_url + "/")
        page.wait_for_selector("body[data-state=signed-out]")
        username = register_on_the_page(page)
        assert page.locator("#who").text_content() == f"{username} (Notes page)"
        assert page.locator("#notes li").count() == 0

        page.get_by_label("New note").fill("buy milk")
        page.get_by_role("button", name="Add").click()
        page.wait_for_selector("#notes li:has-text('buy milk')")

        page.reload()          # the session survives (the SDK keeps it in sessionStorage); the notes are the app's
        page.wait_for_selector("body[data-state=signed-in]")
        page.wait_for_selector("#notes li:has-text('buy milk')")

        page.get_by_role("button", name="Log out").click()
        page.wait_for_selector("body[data-state=signed-out]")
        login = page.locator("#login-form")
        assert login.get_by_label("Username").input_value() == username     # the SDK's last used device
        login.get_by_label("Password").fill(PASSWORD)
        login.get_by_role("button", name="Log in").click()
        page.wait_for_selector("#notes li:has-text('buy milk')")

        # The session ends elsewhere (an operator here): the page hears it and asks to log in again.
        result = CliRunner().invoke(main, ["admin", "revoke-sessions", username, "--reason", "test"], env=citylogin_env)
        assert result.exit_code == 0, result.output
        page.wait_for_selector("body[data-state=signed-out]")
        assert "(admin)" in page.locator("#status").text_content()
        assert errors == []
    finally:
        page.context.close()


def test_with_citylogin_down_the_notes_page_keeps_the_person_signed_in_and_says_why_it_cannot_check(browser,
                                                                                                     base_config):
    """The guard answers 503 (session_unverifiable, Retry-After) while citylogin cannot be reached: the page
    says so and stays signed in, where a 401 would have signed the person out during an outage."""
    notes_port, citylogin_port, citylogin_url, env = beside_notes(base_config)
    with ExitStack() as notes_stack:
        citylogin = notes_stack.enter_context(ExitStack())
        citylogin.enter_context(running_process([sys.executable, "-m", "citylogin", "serve"],
                                                port=citylogin_port, env=env, timeout=60))
        notes_url = notes_stack.enter_context(running_notes(citylogin_url, "guard", port=notes_port,
                                                            credentials=add_app(env, "notes")))
        probe = register_device(citylogin_url)              # another account's live token, asked from outside
        probe.login(PASSWORD)
        page = notes_stack.enter_context(closing(browser.new_context())).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(notes_url + "/")
        page.wait_for_selector("body[data-state=signed-out]")
        register_on_the_page(page)
        page.get_by_label("New note").fill("before the outage")
        page.get_by_role("button", name="Add").click()
        page.wait_for_selector("#notes li:has-text('before the outage')")

        citylogin.close()                                    # citylogin stops; the notes app goes on
        unverifiable = wait_until(lambda: [r for r in [notes_api(notes_url, probe)] if r.status_code == 503],
                                  timeout=60, what="the guard's feed stale, citylogin unreachable: 503")[0]
        assert unverifiable.headers["Retry-After"] == "5" and unverifiable.json()["code"] == "session_unverifiable"
        page.get_by_label("New note").fill("during the outage")
        page.get_by_role("button", name="Add").click()
        expect(page.locator("#status")).to_have_text(
            "citylogin cannot be reached just now, so your sign-in cannot be checked. "
            "You are still signed in: try again in 5 s.")
        expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
        expect(page.locator("#notes li")).to_have_count(1)
        assert errors == []
