"""npm `oidc-client-ts` (unmodified, its browser bundle) in Chromium, as a single-page app on another
origin and a public client of citylogin (SPEC §14): it sends the browser to citylogin's sign-in page,
where the person creates an account on this browser's device, and comes back with a code it redeems
itself (PKCE, no secret) across origins; it reads userinfo and renews with its refresh token. Then the
device is displaced by another device's login: its userinfo call gets 401, its renewal fails, and the
page, opened again, shows signed-out. Its "Sign out" button ends the citylogin session too and comes
back signed out.

No server setting allows the SPA's origin (no CITYLOGIN_CORS_ORIGINS): discovery and the JWKS answer
every origin, and the SPA, registered while citylogin runs, is answered at the token and userinfo
endpoints because its redirect URI is on that origin (SPEC §14 Clients)."""
from __future__ import annotations

import base64
import json
import os
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import expect

from citylogin.cli.main import main
from citylogin.client.api import Client
from tests.browser.pages import DevicePage
from tests.conftest import app_settings, config_env, unique_name
from tests.support.live import PASSWORD
from tests.support.ports import free_port
from tests.support.services import running_process

BUNDLE = Path(__file__).resolve().parents[1] / "interop" / "node_modules" / "oidc-client-ts" / "dist" / "browser" \
    / "oidc-client-ts.min.js"

# The SPA as the oidc-client-ts page of the manual shows it; its two constants set here.
SPA = (Path(__file__).resolve().parents[2] / "examples" / "oidc" / "spa.html").read_text(encoding="utf-8")

# The page's own renewal (what its automatic renewal runs before the access token expires)
RENEW = """async () => Boolean((await renew())?.access_token)"""

USERINFO = """async () => {
  const user = await manager.getUser();
  const metadata = await manager.metadataService.getMetadata();
  const headers = { Authorization: `Bearer ${user.access_token}` };
  return (await fetch(metadata.userinfo_endpoint, { headers })).status;
}"""


@pytest.fixture(scope="module")
def spa(dynamodb_endpoint, tmp_path_factory):
    """(the SPA's URL, citylogin's URL): citylogin with no CORS setting, then the SPA registered as a public
    client while it runs, and served on its own origin."""
    if not BUNDLE.exists():
        message = "npm oidc-client-ts is not installed (bash scripts/setup.sh --tests installs it under tests/interop)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    spa_port, citylogin_port = free_port(), free_port()
    spa_origin, citylogin_url = f"http://127.0.0.1:{spa_port}", f"http://127.0.0.1:{citylogin_port}"
    config = app_settings(dynamodb_endpoint, tmp_path_factory.mktemp("citylogin"), unique_name("spa") + "_")
    env = {**config_env(config), "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(citylogin_port),
           "CITYLOGIN_PUBLIC_URL": citylogin_url,
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    with ExitStack() as stack:
        stack.enter_context(running_process([sys.executable, "-m", "citylogin", "serve"],
                                            port=citylogin_port, env=env, timeout=60))
        added = CliRunner().invoke(main, ["apps", "add", "SPA", "--public", "--json",
                                          "--redirect-uri", f"{spa_origin}/spa.html",
                                          "--post-logout-redirect-uri", f"{spa_origin}/spa.html"], env=env)
        assert added.exit_code == 0, added.output
        client_id = json.loads(added.stdout)["client_id"]
        site = tmp_path_factory.mktemp("site")
        shutil.copy(BUNDLE, site / BUNDLE.name)
        page = SPA.replace('"http://localhost:5000"', json.dumps(citylogin_url))
        (site / "spa.html").write_text(page.replace('"YOUR_CLIENT_ID"', json.dumps(client_id)), encoding="utf-8")
        (site / "healthz").write_text("ok")
        stack.enter_context(running_process([sys.executable, "-m", "http.server", str(spa_port), "--bind",
                                             "127.0.0.1", "--directory", str(site)], port=spa_port, env={}))
        yield f"{spa_origin}/spa.html", citylogin_url


def signs_up(device: DevicePage, spa_url: str) -> str:
    page = device.page
    page.goto(spa_url)
    expect(page.locator("#state")).to_have_text("signed-out")
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    page.get_by_role("button", name="Sign in with citylogin").click()
    expect(page.locator("#oidc-for")).to_have_text("Sign in to continue to SPA")
    username = unique_name()
    device.fill_register_form(username, device_name="SPA browser")
    device.save_recovery_codes()
    page.wait_for_url(spa_url)
    expect(page.locator("#state")).to_have_text(f"signed-in {username}")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return username


def test_oidc_client_ts_signs_in_a_spa_renews_and_shows_signed_out_once_displaced(browser, spa):
    spa_url, citylogin_url = spa
    context = browser.new_context()
    device = DevicePage(context.new_page(), citylogin_url)
    page = device.page
    try:
        username = signs_up(device, spa_url)
        assert page.evaluate(USERINFO) == 200
        assert page.evaluate(RENEW) is True
        expect(page.locator("#state")).to_have_text(f"signed-in {username}")
        page.reload()                                        # kept, and still good
        expect(page.locator("#state")).to_have_text(f"signed-in {username}")

        # Another device of the account takes the seat (one device at a time)
        page.goto(citylogin_url + "/")
        device.expect_devices_screen()
        other = Client(citylogin_url)
        other.pair(device.show_pairing_code(), username=username, password=PASSWORD)
        other.login(PASSWORD, force=True)
        page.goto(spa_url)                                   # what it kept is refused: it renews, is refused
        expect(page.locator("body")).to_have_attribute("data-state", "signed-out")
        expect(page.locator("#state")).to_have_text("signed-out")
        expect(page.locator("#notice")).to_have_text("Your citylogin session has ended (invalid_grant). Sign in again.")
        expect(page.get_by_role("button", name="Sign in with citylogin")).to_be_visible()
        assert page.evaluate("async () => await manager.getUser()") is None
        page.reload()
        expect(page.locator("#state")).to_have_text("signed-out")
        assert not device.errors, device.errors
    finally:
        context.close()


def test_a_renewal_refused_while_the_page_is_open_shows_signed_out(browser, spa):
    """The session ends while the page is open (the person logs out in citylogin's own tab): the page's
    next renewal is refused and it shows signed-out at once."""
    spa_url, citylogin_url = spa
    context = browser.new_context()
    device = DevicePage(context.new_page(), citylogin_url)
    try:
        signs_up(device, spa_url)
        citylogin_tab = DevicePage(context.new_page(), citylogin_url)
        citylogin_tab.page.goto(citylogin_url + "/")
        citylogin_tab.expect_devices_screen()                # a new tab resumes the device's session
        citylogin_tab.log_out()
        assert device.page.evaluate(RENEW) is False
        expect(device.page.locator("#state")).to_have_text("signed-out")
        expect(device.page.locator("#notice")).to_have_text(
            "Your citylogin session has ended (invalid_grant). Sign in again.")
        assert not device.errors, device.errors
    finally:
        context.close()


def test_sign_out_ends_the_citylogin_session_and_comes_back_signed_out(browser, spa):
    spa_url, citylogin_url = spa
    context = browser.new_context()
    device = DevicePage(context.new_page(), citylogin_url)
    page = device.page
    try:
        signs_up(device, spa_url)
        page.get_by_role("button", name="Sign out").click()  # the device key proves the session: no question
        page.wait_for_url(spa_url)
        expect(page.locator("#state")).to_have_text("signed-out")
        expect(page.locator("#notice")).to_have_text("Signed out of this page and citylogin.")
        assert page.evaluate("async () => await manager.getUser()") is None
        page.goto(citylogin_url + "/")
        device.expect_login_screen()                         # the citylogin session ended too
        assert not device.errors, device.errors
    finally:
        context.close()
