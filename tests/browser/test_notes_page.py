"""examples/notes in the browser: its page, served by the notes app on its own origin, imports the web
SDK from citylogin (another origin, allowed by CITYLOGIN_CORS_ORIGINS), registers this browser, logs
in, and writes and reads notes through the app's API, which the citylogin guard protects. Three
processes: `citylogin serve`, the notes app, Chromium."""
from __future__ import annotations

import base64
import os
import sys
from contextlib import ExitStack

import pytest
from click.testing import CliRunner

from citylogin.cli import main
from common.dynamodb_local import free_port
from tests.conftest import config_env, unique_name
from tests.support.live import PASSWORD
from tests.support.notes import add_app, running_notes
from tests.support.services import running_process


@pytest.fixture
def notes_page(base_config):
    """(the notes page's URL (the app in guard mode), citylogin's settings), citylogin allowing its origin."""
    notes_port, citylogin_port = free_port(), free_port()
    citylogin_url = f"http://127.0.0.1:{citylogin_port}"
    env = {**config_env(base_config), "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(citylogin_port),
           "CITYLOGIN_CORS_ORIGINS": f"http://127.0.0.1:{notes_port}", "CITYLOGIN_PUBLIC_URL": citylogin_url,
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    with ExitStack() as stack:
        stack.enter_context(running_process([sys.executable, "-m", "citylogin.cli", "serve"],
                                            port=citylogin_port, env=env, timeout=60))
        credentials = add_app(env, "notes")
        yield stack.enter_context(running_notes(citylogin_url, "guard", port=notes_port, credentials=credentials)), env


def test_the_notes_page_logs_in_through_the_sdk_and_shows_its_notes(browser, notes_page):
    notes_url, citylogin_env = notes_page
    page = browser.new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(notes_url + "/")
        page.wait_for_selector("body[data-state=signed-out]")
        username = unique_name()
        register = page.locator("#register-form")
        register.get_by_label("Username").fill(username)
        register.get_by_label("E-mail").fill(f"{username}@example.com")
        register.get_by_label("Password").fill(PASSWORD)
        register.get_by_role("button", name="Create account").click()
        page.wait_for_selector("body[data-state=signed-in]")
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
