"""The web SDK from another origin: an app's page, served by its own static server on another port,
imports `<citylogin>/sdk/citylogin.js` and registers this browser, logs in, reads /session/me and hears
its session end on the live stream, all through the SDK, against `citylogin serve` started with
CITYLOGIN_CORS_ORIGINS naming that origin. An origin not named cannot even load the module."""
from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import config_env, unique_name
from tests.support.live import PASSWORD
from tests.support.ports import free_port
from tests.support.services import running_process

APP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>An app on another origin</title></head>
<body><p id="state">loading</p>
<script type="module">
  import { Citylogin, ConcurrentLogin } from "{citylogin}/sdk/citylogin.js";
  window.citylogin = new Citylogin({ baseUrl: "{citylogin}" });
  window.ConcurrentLogin = ConcurrentLogin;
  document.querySelector("#state").textContent = "ready";
</script></body></html>
"""

SIGN_UP_AND_IN = """async ([username, password]) => {
  const issued = await citylogin.register({ username, email: `${username}@example.com`, password,
                                            deviceName: "App page" });
  const ended = [];
  citylogin.onSessionEnded((reason) => ended.push(reason));
  window.ended = ended;
  const result = await citylogin.login({ username, password });
  const me = await citylogin.request("GET", "/session/me");
  const raw = await citylogin.fetch("/session/me");
  return { issued, result, me, concurrent: result instanceof ConcurrentLogin, session: citylogin.session,
           rawStatus: raw.status, rawMe: await raw.json() };
}"""


def static_server(site: Path, port: int):
    return running_process([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                            "--directory", str(site)], port=port, env={})


@pytest.fixture
def app_pages(base_config, tmp_path):
    """(the app page's URL, the same page's URL on an origin not allowed): three processes on three
    ports of 127.0.0.1, citylogin and two static servers."""
    app_port, other_port, citylogin_port = free_port(), free_port(), free_port()
    app_origin, citylogin_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{citylogin_port}"
    site = tmp_path / "site"
    site.mkdir()
    (site / "app.html").write_text(APP_PAGE.replace("{citylogin}", citylogin_url), encoding="utf-8")
    (site / "healthz").write_text("ok")      # what running_process waits for
    env = {**config_env(base_config), "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(citylogin_port),
           "CITYLOGIN_CORS_ORIGINS": app_origin, "CITYLOGIN_PUBLIC_URL": citylogin_url}
    with ExitStack() as stack:
        stack.enter_context(running_process([sys.executable, "-m", "citylogin", "serve"],
                                            port=citylogin_port, env=env, timeout=60))
        stack.enter_context(static_server(site, app_port))
        stack.enter_context(static_server(site, other_port))
        yield f"{app_origin}/app.html", f"http://127.0.0.1:{other_port}/app.html"


def open_app(browser, url: str):
    """(page, uncaught errors, console lines) of `url` in a fresh context, loaded."""
    page = browser.new_context().new_page()
    errors: list[str] = []
    console: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: console.append(message.text))
    page.goto(url, wait_until="load")     # a module script has run, or failed, before "load"
    return page, errors, console


def test_an_app_on_another_origin_registers_logs_in_and_reads_its_session(browser, app_pages):
    app_url, _ = app_pages
    page, errors, _ = open_app(browser, app_url)
    try:
        page.wait_for_function("document.querySelector('#state').textContent === 'ready'")
        username = unique_name()
        done = page.evaluate(SIGN_UP_AND_IN, [username, PASSWORD])

        assert done["issued"]["device_id"] and not done["concurrent"]
        assert done["result"] == {"username": username, "deviceId": done["issued"]["device_id"],
                                  "deviceName": "App page"}
        assert done["me"]["user_uuid"] == done["issued"]["uuid"]
        assert done["me"]["device_id"] == done["issued"]["device_id"]
        assert (done["rawStatus"], done["rawMe"]["session_id"]) == (200, done["me"]["session_id"])
        assert done["session"]["accessToken"].count(".") == 2

        # The account's sessions end: the SDK's live stream (cross-origin too) says why.
        page.evaluate("""() => citylogin.request("POST", "/session/logout_all", { body: { include_current: true } })""")
        page.wait_for_function("window.ended.length === 1")
        assert page.evaluate("window.ended") == ["logged_out"]
        assert page.evaluate("citylogin.session") is None
        assert errors == []
    finally:
        page.context.close()


def test_an_origin_not_allowed_cannot_load_the_sdk(browser, app_pages):
    _, other_url = app_pages
    page, _, console = open_app(browser, other_url)
    try:
        assert page.title() == "An app on another origin"        # the page itself loaded
        assert page.locator("#state").text_content() == "loading"
        assert page.evaluate("typeof window.citylogin") == "undefined"
        deadline = time.monotonic() + 30  # console messages arrive on their own, after "load"
        while not any("CORS" in line and "/sdk/citylogin.js" in line for line in console):
            assert time.monotonic() < deadline, console
            page.wait_for_timeout(50)
    finally:
        page.context.close()
