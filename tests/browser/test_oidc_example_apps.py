"""The server-side example apps of the OpenID Connect guides, as a person uses them in Chromium: the
openid-client "whole app" (tests/interop/openid_client_app.mjs, under Node) and the Authlib app
(examples/oidc/authlib_app.py), each in its own process against a real `citylogin serve`, started as
their pages say (the port an argument, the secret from the environment or a file, never the command
line). Two visitors (two browser contexts, two citylogin accounts) each see their own sign-in at `/`;
one signs out with the page's button, which ends the citylogin session too (RP-initiated logout), and
the other stays signed in."""
from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from tests.browser.pages import DevicePage
from tests.conftest import app_settings, config_env, unique_name
from tests.support.notes import REPOSITORY, add_app
from tests.support.ports import free_port
from tests.support.services import running_process
from tests.support.waiting import wait_until

INTEROP = REPOSITORY / "tests" / "interop"
NODE_APP = INTEROP / "openid_client_app.mjs"
AUTHLIB_APP = REPOSITORY / "examples" / "oidc" / "authlib_app.py"
# What the node app knows of this visitor's sign-in, asked from its page with the visitor's cookie.
SIGNED_IN = """async () => (await (await fetch("/state")).json()).signed_in"""


@dataclass(frozen=True)
class ExampleApps:
    citylogin: str
    node: str          # the openid-client app
    authlib: str       # the Authlib app


def require_node() -> str:
    node = shutil.which("node")
    if node and (INTEROP / "node_modules" / "openid-client" / "package.json").exists():
        return node
    pytest.fail("node and npm openid-client are needed "
                "(bash scripts/setup.sh --tests installs them under tests/interop)")


@pytest.fixture(scope="module")
def example_apps(dynamodb_endpoint, tmp_path_factory) -> ExampleApps:
    citylogin_port, node_port, authlib_port = free_port(), free_port(), free_port()
    citylogin_url = f"http://127.0.0.1:{citylogin_port}"
    config = app_settings(dynamodb_endpoint, tmp_path_factory.mktemp("citylogin"), unique_name("examples") + "_")
    config["ssf_push_interval"] = 1.0  # the default, which the suite's settings turn off: back-channel logouts go
    env = {**config_env(config),
           "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(citylogin_port), "CITYLOGIN_PUBLIC_URL": citylogin_url,
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    with ExitStack() as stack:
        stack.enter_context(running_process([sys.executable, "-m", "citylogin", "serve"],
                                            port=citylogin_port, env=env, timeout=60))
        node_url, authlib_url = f"http://127.0.0.1:{node_port}", f"http://127.0.0.1:{authlib_port}"
        node = add_app(env, "Node app", redirect_uris=(f"{node_url}/callback",),
                       options=("--post-logout-redirect-uri", f"{node_url}/",
                                "--backchannel-logout-uri", f"{node_url}/backchannel-logout"))
        authlib = add_app(env, "Authlib app", redirect_uris=(f"{authlib_url}/callback",),
                          options=("--post-logout-redirect-uri", f"{authlib_url}/"))
        # openid-client: the secret in the environment; Authlib: in a file the environment names
        node_argv = [require_node(), str(NODE_APP), "--port", str(node_port), "--issuer", citylogin_url]
        stack.enter_context(running_process(node_argv, port=node_port, cwd=INTEROP, env={
            "CLIENT_ID": node["client_id"], "CLIENT_SECRET": node["client_secret"]}))
        secret_file = tmp_path_factory.mktemp("authlib") / "client-secret"
        secret_file.write_text(authlib["client_secret"] + "\n")
        authlib_argv = [sys.executable, str(AUTHLIB_APP), "--port", str(authlib_port)]
        stack.enter_context(running_process(authlib_argv, port=authlib_port, cwd=REPOSITORY, env={
            "CITYLOGIN_URL": citylogin_url, "CLIENT_ID": authlib["client_id"], "CLIENT_SECRET_FILE": str(secret_file)}))
        for argv, credentials in ((node_argv, node), (authlib_argv, authlib)):
            assert not any(credentials["client_secret"] in arg for arg in argv)
        yield ExampleApps(citylogin_url, node_url, authlib_url)


@pytest.fixture
def visitors(browser, example_apps):
    """Two people, each in a browser context of their own (cookies, citylogin's device key)."""
    contexts = [browser.new_context(), browser.new_context()]
    pages = [DevicePage(context.new_page(), example_apps.citylogin) for context in contexts]
    yield pages
    for context in contexts:
        context.close()
    for page in pages:
        assert not page.errors, page.errors


def signs_up_through(visitor: DevicePage, app_url: str, *, asks_email: bool = False) -> str:
    """From the app's page: "Sign in with citylogin", a new account on citylogin's page, back at the
    app's page signed in. Returns the username. An app that asks for `email` (the Authlib app) is told
    only a confirmed address: the new account goes on without it."""
    page = visitor.page
    page.goto(app_url + "/")
    expect(page.locator("body")).to_have_attribute("data-state", "signed-out")
    page.get_by_role("link", name="Sign in with citylogin").click()
    username = unique_name()
    visitor.fill_register_form(username, device_name="Visitor's browser")
    visitor.save_recovery_codes()
    if asks_email:
        visitor.go_on_without_confirming_the_address()
    expect_signed_in(visitor, app_url, username)
    return username


def expect_signed_in(visitor: DevicePage, app_url: str, username: str) -> None:
    page = visitor.page
    page.wait_for_url(re.compile(re.escape(app_url) + r"/$"))
    expect(page.locator("body")).to_have_attribute("data-state", "signed-in")
    expect(page.locator("#who")).to_have_text(username)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.mark.parametrize("app", ["node", "authlib"], ids=["openid-client", "authlib"])
def test_two_visitors_each_see_their_own_sign_in_and_one_signs_out_of_the_app_and_citylogin(visitors, example_apps,
                                                                                         app, screenshot):
    app_url = getattr(example_apps, app)
    ada, bob = visitors
    ada_name = signs_up_through(ada, app_url, asks_email=app == "authlib")
    bob_name = signs_up_through(bob, app_url, asks_email=app == "authlib")
    ada.page.reload()                                       # each visitor's cookie names their own sign-in
    expect_signed_in(ada, app_url, ada_name)
    bob.page.reload()
    expect_signed_in(bob, app_url, bob_name)
    screenshot(ada.page, f"example-{app}-signed-in")

    ada.page.get_by_role("button", name="Sign out").click()  # the device key proves the session: no question
    ada.page.wait_for_url(re.compile(re.escape(app_url) + r"/\?"))
    expect(ada.page.locator("body")).to_have_attribute("data-state", "signed-out")
    expect(ada.page.locator("#status")).to_have_text("Signed out of this app and citylogin.")
    expect(ada.page.get_by_role("link", name="Sign in with citylogin")).to_be_visible()
    ada.page.goto(app_url + "/")
    expect(ada.page.locator("body")).to_have_attribute("data-state", "signed-out")
    ada.page.goto(example_apps.citylogin + "/")
    ada.expect_login_screen()                               # the citylogin session ended too

    bob.page.reload()                                       # the other visitor is still signed in
    expect_signed_in(bob, app_url, bob_name)
    bob.page.goto(example_apps.citylogin + "/")
    bob.expect_devices_screen()


def test_the_node_app_shows_a_visitor_whose_citylogin_session_ended_as_signed_out(visitors, example_apps):
    """citylogin ends the session (here: the person logs out on citylogin's own page); its back-channel
    logout reaches the app, and the visitor's page says so."""
    ada, bob = visitors
    signs_up_through(ada, example_apps.node)
    bob_name = signs_up_through(bob, example_apps.node)
    ada.page.goto(example_apps.citylogin + "/")
    ada.expect_devices_screen()
    ada.log_out()
    ada.page.goto(example_apps.node + "/")
    wait_until(lambda: ada.page.evaluate(SIGNED_IN) is False or None, timeout=10,
               what="the app hearing of the logout (citylogin's back-channel logout token)")
    ada.page.reload()
    expect(ada.page.locator("body")).to_have_attribute("data-state", "signed-out")
    expect(ada.page.locator("#status")).to_have_text("Your citylogin session has ended. Sign in again.")
    bob.page.reload()
    expect_signed_in(bob, example_apps.node, bob_name)


@pytest.mark.parametrize("app", ["node", "authlib"], ids=["openid-client", "authlib"])
def test_an_app_started_without_its_secret_in_the_environment_refuses_to_start(app):
    argv = [require_node(), str(NODE_APP)] if app == "node" else [sys.executable, str(AUTHLIB_APP)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIENT_")} | {"CLIENT_ID": "app_x"}
    done = subprocess.run([*argv, "--port", str(free_port())], env=env, cwd=INTEROP if app == "node" else REPOSITORY,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "set CLIENT_SECRET (or CLIENT_SECRET_FILE, a file holding it)" in done.stderr
