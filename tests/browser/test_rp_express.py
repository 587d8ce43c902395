"""express-openid-connect at its own defaults (SPEC §14 Interoperability): an Express app in its own Node
process (tests/interop/express/app.mjs), the library unmodified and configured as its quickstart says with a
client secret, signs a person in through citylogin's web UI in Chromium. A second configuration turns on
what an app chooses (RP-initiated logout, Back-Channel Logout, offline_access): the app refreshes its
tokens, then its /logout ends citylogin's session, and after a new sign-in it hears by the back channel
that the person signed it out on citylogin's Sessions tab."""
from __future__ import annotations

import re
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.pages import DevicePage
from tests.conftest import unique_name
from tests.support.notes import add_app
from tests.support.ports import free_port
from tests.support.relying_parties import INTEROP, app_view, require_npm_package, running_citylogin
from tests.support.services import running_process
from tests.support.waiting import wait_until

APP = INTEROP / "express" / "app.mjs"


@dataclass(frozen=True)
class Deployment:
    citylogin: str
    quickstart: str           # the library's quickstart with a client secret, nothing else
    features: str             # + idpLogout, backchannelLogout, offline_access


@pytest.fixture(scope="module")
def deployment(dynamodb_endpoint, tmp_path_factory) -> Deployment:
    require_npm_package("express-openid-connect")
    quickstart_port, features_port = free_port(), free_port()
    with ExitStack() as stack:
        citylogin, env = stack.enter_context(running_citylogin(
            dynamodb_endpoint, tmp_path_factory.mktemp("citylogin"), prefix="rpexpress"))
        urls = []
        for name, port, options in (
                ("express-quickstart", quickstart_port, ()),
                ("express", features_port, ("--post-logout-redirect-uri", f"http://127.0.0.1:{features_port}",
                                            "--backchannel-logout-uri",
                                            f"http://127.0.0.1:{features_port}/backchannel-logout"))):
            app = add_app(env, name, redirect_uris=(f"http://127.0.0.1:{port}/callback",), options=options)
            mode = "quickstart" if name.endswith("quickstart") else "features"
            urls.append(stack.enter_context(running_process(
                ["node", str(APP), str(port), citylogin, app["client_id"], app["client_secret"], mode],
                port=port, env={}, cwd=INTEROP)))
        yield Deployment(citylogin, *urls)


@pytest.fixture
def device(browser, deployment):
    context = browser.new_context()
    device = DevicePage(context.new_page(), deployment.citylogin)
    yield device
    context.close()
    assert not device.errors, device.errors


def signed_in_page(device: DevicePage, app_url: str) -> dict:
    """The app's own page, reached after citylogin sent the browser back: what the library made of the sign-in."""
    device.page.wait_for_url(re.compile(re.escape(app_url) + r"/$"))
    return device.page.evaluate("() => JSON.parse(document.body.innerText)")


def register_through(device: DevicePage, app_url: str) -> str:
    """The app's page needs a sign-in: the library sends the browser to citylogin, where a new account is made."""
    device.page.goto(app_url + "/")
    expect(device.page.locator("#oidc-for")).to_be_visible()
    username = unique_name()
    device.fill_register_form(username, device_name="Laptop browser")
    device.save_recovery_codes()
    device.go_on_without_confirming_the_address()  # its default scope has `email`; it keys people by `sub`
    return username


def sent_to_sign_in(device: DevicePage, app_url: str) -> bool:
    """Whether the app, asked with this browser's cookies, sends it to citylogin to sign in."""
    answer = app_view(device.page, app_url + "/")
    return answer.status_code == 302 and "/oidc/authorize?" in answer.headers["Location"]


def logouts_heard(app_url: str) -> int:
    """How many entries the library has put in the app's logout store (one or two per logout token)."""
    return requests.get(app_url + "/logouts-heard", timeout=30).json()["stored"]


def test_the_quickstart_signs_a_new_account_in(device, deployment):
    assert sent_to_sign_in(device, deployment.quickstart)
    username = register_through(device, deployment.quickstart)
    shown = signed_in_page(device, deployment.quickstart)
    assert shown["signed_in"] is True
    assert shown["user"]["preferred_username"] == username
    assert shown["user"]["sub"]
    assert not sent_to_sign_in(device, deployment.quickstart)


def test_refresh_then_rp_initiated_logout_then_back_channel_logout(device, deployment):
    page = device.page
    username = register_through(device, deployment.features)
    assert signed_in_page(device, deployment.features)["user"]["preferred_username"] == username

    page.goto(deployment.features + "/refresh")                # req.oidc.accessToken.refresh()
    refreshed = page.evaluate("() => JSON.parse(document.body.innerText)")
    assert refreshed["refreshed"] is True, refreshed
    assert refreshed["user"]["preferred_username"] == username

    # After the refresh, the app's /logout (idpLogout) sends its ID token as the hint: citylogin's session
    # ends, the browser goes back to the app, which asks for a sign-in again: citylogin's form
    heard = logouts_heard(deployment.features)
    page.goto(deployment.features + "/logout")
    device.expect_login_screen()
    expect(page.locator("#oidc-for")).to_have_text("Sign in to continue to express")
    assert urlsplit(page.url).netloc == urlsplit(deployment.citylogin).netloc
    assert sent_to_sign_in(device, deployment.features)
    # The session's end reaches the app by the back channel too; heard after the next sign-in, the library
    # would take it for a logout of the person (it stores the token's sub) and sign that one out as well
    wait_until(lambda: logouts_heard(deployment.features) > heard or None, timeout=30,
               what="express-openid-connect hearing the first session's logout token")

    # Logged in again there, back at the app; then the person signs the app out of this session on
    # citylogin's Sessions tab, and the back channel tells the app
    device.log_in(username)
    assert signed_in_page(device, deployment.features)["user"]["preferred_username"] == username
    assert not sent_to_sign_in(device, deployment.features)
    page.goto(deployment.citylogin + "/")
    device.expect_devices_screen()
    device.go("sessions")
    page.get_by_role("button", name="Sign out express from this session").click()
    page.locator("#confirm-ok").click()
    wait_until(lambda: sent_to_sign_in(device, deployment.features) or None, timeout=10,
               what="express-openid-connect hearing the logout token")
