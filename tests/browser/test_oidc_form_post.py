"""response_mode=form_post and the /oidc error pages in Chromium (SPEC §14): an app in its own process
asks for form_post; the person registers in citylogin's web UI and the browser POSTs the code to the
app (never in an address), which redeems it; a refusal comes back the same way. A request with no
trusted way back, and a logout that does not check out, show a page in the person's language whose
"go back" and home link work, all within the pages' Content-Security-Policy (a violation fails)."""
from __future__ import annotations

import base64
import os
import re
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from tests.conftest import config_env, unique_name
from tests.support.notes import add_app
from tests.support.ports import free_port
from tests.support.services import running_process

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Servers:
    citylogin: str
    app: str


@pytest.fixture(scope="module")
def servers(dynamodb_endpoint, tmp_path_factory) -> Servers:
    citylogin_port, app_port = free_port(), free_port()
    citylogin_url = f"http://127.0.0.1:{citylogin_port}"
    env = {**config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "table_prefix": unique_name("formpost") + "_",
                         "data_dir": tmp_path_factory.mktemp("citylogin"), "log_level": "WARNING"}),
           "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(citylogin_port), "CITYLOGIN_PUBLIC_URL": citylogin_url,
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    with ExitStack() as stack:
        stack.enter_context(running_process([sys.executable, "-m", "citylogin", "serve"],
                                            port=citylogin_port, env=env, timeout=60))
        app = add_app(env, "forms", redirect_uris=(f"http://127.0.0.1:{app_port}/callback",))
        argv = [sys.executable, "-m", "tests.support.form_post_app", str(app_port), citylogin_url, app["client_id"],
                app["client_secret"]]
        app_url = stack.enter_context(running_process(argv, port=app_port, env={"PYTHONPATH": str(ROOT)}, cwd=ROOT))
        yield Servers(citylogin_url, app_url)


def _received(servers: Servers) -> list[dict]:
    return requests.get(servers.app + "/received", timeout=30).json()


def test_the_code_reaches_the_app_as_a_post_after_the_person_registers(new_device, servers):
    device = new_device(servers.citylogin)
    page = device.page
    addresses: list[str] = []
    page.on("request", lambda request: addresses.append(request.url) if request.is_navigation_request() else None)
    page.goto(servers.app + "/start")
    expect(page.locator("#oidc-for")).to_have_text("Sign in to continue to forms")
    username = unique_name()
    device.fill_register_form(username, device_name="Form browser")
    device.save_recovery_codes()
    page.wait_for_url(servers.app + "/callback")
    page.wait_for_selector("body[data-state=signed-in]")
    expect(page.locator("#who")).to_have_text(username)
    arrived = _received(servers)[-1]
    assert arrived == {"method": "POST", "content_type": "application/x-www-form-urlencoded", "query": "",
                       "fields": ["code", "state", "iss"], "error": None, "signed_in": username, "id_token": True}
    assert not [address for address in addresses if "code=" in urlsplit(address).query], addresses


def test_declining_reaches_the_app_as_a_post(new_device, servers):
    page = new_device(servers.citylogin).page
    page.goto(servers.app + "/start")
    page.locator("#oidc-cancel").click()
    page.wait_for_url(servers.app + "/callback")
    expect(page.locator("#who")).to_have_text("access_denied")
    assert _received(servers)[-1]["fields"] == ["error", "state", "iss"]


def test_an_authorize_error_is_a_page_in_japanese_that_goes_back(new_device, servers):
    page = new_device(servers.citylogin, locale="ja-JP").page
    page.goto(servers.app + "/received")
    unknown = {"response_type": "code", "client_id": "no-such-app", "redirect_uri": servers.app + "/callback",
               "scope": "openid"}
    response = page.goto(f"{servers.citylogin}/oidc/authorize?{urlencode(unknown)}")
    assert response is not None and response.status == 400
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.locator("h1")).to_have_text("このサインインは続けられません")
    back = page.locator("#oidc-back")
    expect(back).to_have_text("前のページに戻る")
    back.click()                                     # the page's own script file: no inline script
    page.wait_for_url(servers.app + "/received")


def test_a_logout_error_is_a_page_in_english_with_a_way_home(new_device, servers):
    device = new_device(servers.citylogin, locale="en-GB")
    page = device.page
    response = page.goto(f"{servers.citylogin}/oidc/logout?{urlencode({'id_token_hint': 'not.a.jwt'})}")
    assert response is not None and response.status == 400
    expect(page.locator("h1")).to_have_text("This sign-out cannot go on")
    assert "not.a.jwt" not in page.content()
    page.get_by_role("link", name="citylogin home").click()
    page.wait_for_url(re.compile(re.escape(servers.citylogin) + r"/$"))
    expect(page.locator("#auth-screen")).to_be_visible()
