"""Auth.js at its own defaults (SPEC §14 Interoperability): an Express app in its own Node process
(tests/interop/authjs/app.mjs) with @auth/express, unmodified, configured as Auth.js's guide says for a
custom OpenID Connect provider (type "oidc", its AUTH_<ID>_* variables, AUTH_SECRET), signs a person in
through citylogin's web UI in Chromium from Auth.js's own sign-in page, and signs out on its own
sign-out page. Auth.js has no RP-initiated logout, Back-Channel Logout or refresh of its own
(docs/guides/oidc/authjs.md): its sign-out ends only its session, and the next sign-in needs no form."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from tests.browser.pages import DevicePage
from tests.conftest import unique_name
from tests.support.notes import add_app
from tests.support.ports import free_port
from tests.support.relying_parties import INTEROP, require_npm_package, running_citylogin
from tests.support.services import running_process

APP = INTEROP / "authjs" / "app.mjs"
SESSION = "() => JSON.parse(document.body.innerText)"


@dataclass(frozen=True)
class Deployment:
    citylogin: str
    app: str


@pytest.fixture(scope="module")
def deployment(dynamodb_endpoint, tmp_path_factory) -> Deployment:
    require_npm_package("@auth/express")
    port = free_port()
    with running_citylogin(dynamodb_endpoint, tmp_path_factory.mktemp("citylogin"), prefix="rpauthjs") as (url, env):
        app = add_app(env, "authjs", redirect_uris=(f"http://127.0.0.1:{port}/auth/callback/citylogin",))
        auth_env = {"AUTH_SECRET": os.urandom(32).hex(), "AUTH_CITYLOGIN_ID": app["client_id"],
                    "AUTH_CITYLOGIN_SECRET": app["client_secret"], "AUTH_CITYLOGIN_ISSUER": url}
        with running_process(["node", str(APP), str(port)], port=port, env=auth_env, cwd=INTEROP) as app_url:
            yield Deployment(url, app_url)


@pytest.fixture
def device(browser, deployment):
    context = browser.new_context()
    device = DevicePage(context.new_page(), deployment.citylogin)
    yield device
    context.close()
    assert not device.errors, device.errors


def sign_in_from_authjs(device: DevicePage, app_url: str) -> None:
    """Auth.js's own sign-in page: its "Sign in with citylogin" button starts the code flow."""
    device.page.goto(f"{app_url}/auth/signin?callbackUrl={app_url}/")
    device.page.get_by_role("button", name="Sign in with citylogin").click()


def shown_session(device: DevicePage, app_url: str) -> dict:
    device.page.wait_for_url(re.compile(re.escape(app_url) + r"/$"))
    return device.page.evaluate(SESSION)


def test_a_new_account_signs_in_signs_out_and_signs_in_again_without_a_form(device, deployment):
    page = device.page
    page.goto(deployment.app + "/")
    assert page.evaluate(SESSION) == {"signed_in": False, "user": None}

    sign_in_from_authjs(device, deployment.app)
    expect(page.locator("#oidc-for")).to_have_text("Sign in to continue to authjs")
    username = unique_name()
    device.fill_register_form(username, device_name="Laptop browser")
    device.save_recovery_codes()
    device.go_on_without_confirming_the_address()  # its default scope has `email`; it keys people by `sub`
    session = shown_session(device, deployment.app)
    assert session["signed_in"] is True
    assert session["user"]["name"] == username          # Auth.js's profile(): preferred_username

    # Auth.js's sign-out page ends its own session only
    page.goto(deployment.app + "/auth/signout")
    page.get_by_role("button", name="Sign out").click()
    assert shown_session(device, deployment.app) == {"signed_in": False, "user": None}

    # citylogin's session of this browser goes on: the next sign-in comes straight back
    logins: list[str] = []
    page.on("request", lambda request: logins.append(request.url) if "/login/" in request.url
            and not request.url.endswith("/login/challenge") else None)
    sign_in_from_authjs(device, deployment.app)
    assert shown_session(device, deployment.app)["user"]["name"] == username
    assert logins == []
