"""npm `openid-client` (unmodified, under the machine's Node) runs its own device authorization grant
(RFC 8628) at its defaults, in its own process (tests/interop/openid_client_device.mjs), against a
`citylogin serve` polling at 1 s: `initiateDeviceAuthorization`, then `pollDeviceAuthorizationGrant`. The
test reads the user code and its link off the script's output; a person who uses citylogin in Chromium
opens the link (the screen's QR code), sees the code and the app on the `/device` page, names the screen
and approves; the script gets its tokens (an ID token openid-client checked, a refresh token) and reads
userinfo. A denial ends its polling."""
from __future__ import annotations

import base64
import json
import os
import re
from typing import Iterator

import pytest
from click.testing import CliRunner
from playwright.sync_api import expect

from citylogin.cli.main import main
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env, unique_name
from tests.browser.pages import DevicePage
from tests.oidc.test_openid_client import INTEROP, require_node_clients
from tests.support.device_screen import LONG_SECRET, USER_CODE, Screen, approve, deny
from tests.support.live import PASSWORD, register_device
from tests.support.notes import add_app
from tests.support.services import running_service

SCRIPT = INTEROP / "openid_client_device.mjs"
LINK = re.compile(r"\(or open (\S+)\)")


@pytest.fixture(scope="module")
def citylogin(dynamodb_endpoint, tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("dev") + "_",
                         "data_dir": tmp_path_factory.mktemp("citylogin"), "log_level": "WARNING",
                         **FAST_ARGON2, **RAISED_LIMITS, "max_concurrent_devices": 2,
                         "device_poll_interval": 1}),    # openid-client polls at what citylogin says
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    initialized = CliRunner().invoke(main, ["init"], env=env)
    assert initialized.exit_code == 0, initialized.output
    app = add_app(env, "openid-client screen", options=("--device-flow", "--public"))
    with running_service("citylogin", env, args=("serve",)) as url:
        yield url, app


def start_script(url: str, client_id: str) -> Screen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")} | {"CLIENT_ID": client_id}
    return Screen([require_node_clients(), str(SCRIPT), "--issuer", url], env=env, cwd=INTEROP)


def test_openid_clients_device_flow_gets_tokens_and_userinfo_once_approved_in_chromium(citylogin, browser):
    url, app = citylogin
    screen = start_script(url, app["client_id"])
    person = DevicePage(browser.new_context(viewport={"width": 390, "height": 844}).new_page(), url)
    try:
        code = screen.wait_for(USER_CODE).group(1)
        assert f"Open {url}/device and enter the code: {code}" in screen.stdout
        link = screen.wait_for(LINK).group(1)
        assert link == f"{url}/device?user_code={code}"

        username = unique_name("tv")
        person.open().register(username, device_name="phone")    # a person who uses citylogin on this phone
        person.page.goto(link)                                   # the screen's QR code
        form = person.page.locator("#device-approve-form")
        expect(form).to_be_visible()
        expect(person.page.locator("#device-shown-code")).to_have_text(code)
        expect(person.page.locator("#device-app")).to_contain_text("openid-client screen")
        assert "user_code" not in person.page.url                # taken out of the address bar
        form.locator("#device-name").fill("Living-room TV")
        form.locator("#device-approve").click()
        expect(person.page.locator("#device-outcome")).to_be_visible()
        expect(person.page.locator("#device-outcome-text")).to_contain_text("Living-room TV")
        done = screen.finish()
    finally:
        screen.close()
        person.page.context.close()
    assert not person.errors, person.errors
    assert done.status == 0, (done.stdout, done.stderr)
    signed_in = json.loads(done.stdout.strip().splitlines()[-1])
    assert signed_in.pop("token_type").lower() == "bearer"
    assert signed_in.pop("sub")
    assert signed_in == {"signed_in": username, "scope": "openid profile offline_access", "has_refresh_token": True}
    assert not LONG_SECRET.search(done.stdout + done.stderr)


def test_openid_clients_device_flow_gets_tokens_approved_through_the_api(citylogin):
    """The same flow, the person's device approving through citylogin's JSON API (the page's own call)."""
    url, app = citylogin
    phone = register_device(url)
    phone.login(PASSWORD)
    screen = start_script(url, app["client_id"])
    try:
        code = screen.wait_for(USER_CODE).group(1)
        approved = approve(phone, code)
        assert approved.status_code == 200, approved.text
        done = screen.finish()
    finally:
        screen.close()
    assert done.status == 0, (done.stdout, done.stderr)
    signed_in = json.loads(done.stdout.strip().splitlines()[-1])
    assert signed_in["signed_in"] == phone.key_file.username and signed_in["sub"] == phone.key_file.user_uuid


def test_openid_clients_polling_ends_on_a_denial(citylogin):
    url, app = citylogin
    screen = start_script(url, app["client_id"])
    try:
        code = screen.wait_for(USER_CODE).group(1)
        assert deny(url, code).status_code == 200
        done = screen.finish()
    finally:
        screen.close()
    assert done.status == 3 and "denied" in done.stderr, (done.stdout, done.stderr)

