"""mod_auth_openidc at its own defaults (SPEC §14 Interoperability): Debian's Apache with Debian's
libapache2-mod-auth-openidc, in its own process with its own configuration (tests/support/apache.py),
configured exactly as the module's README's quickstart says (OIDCProviderMetadataURL, OIDCClientID,
OIDCClientSecret, OIDCRedirectURI, OIDCCryptoPassphrase, `Require valid-user` on a location), signs a
person in through citylogin's web UI in Chromium. Its logout (the redirect URI's `?logout=`) ends
citylogin's session, and its back-channel logout endpoint (the redirect URI's `?logout=backchannel`,
on by default) hears citylogin when the person signs the app out on the Sessions tab. A second virtual
host adds what an app chooses for refresh: `offline_access` in OIDCScope, and the module's info hook,
whose `access_token_refresh_interval` has the module refresh the access token with its refresh token."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from playwright.sync_api import expect

from citylogin.cli.main import main
from tests.browser.pages import DevicePage
from tests.conftest import unique_name
from tests.support.apache import error_log, require_mod_auth_openidc, running_apache
from tests.support.notes import add_app
from tests.support.ports import free_port
from tests.support.relying_parties import app_view, running_citylogin
from tests.support.waiting import wait_until

# The protected page: what mod_auth_openidc tells the content it guards (server-side includes)
SECURE_PAGE = """<!doctype html><title>Signed in</title>
<p>Signed in as <span id="user"><!--#echo var="REMOTE_USER" --></span></p>
"""
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
INFO = "() => JSON.parse(document.body.innerText)"
SIGNED_OUT_PAGE = "<!doctype html><title>Signed out</title><p id=\"status\">Signed out</p>\n"


def quickstart_conf(citylogin: str, port: int, client: dict[str, str]) -> str:
    """The README's "Quickstart with a generic OpenID Connect Provider", with this issuer, client and redirect."""
    return f"""
OIDCProviderMetadataURL {citylogin}/.well-known/openid-configuration
OIDCClientID {client["client_id"]}
OIDCClientSecret {client["client_secret"]}
OIDCRedirectURI http://127.0.0.1:{port}/secure/redirect_uri
OIDCCryptoPassphrase {os.urandom(24).hex()}

<Location /secure>
   AuthType openid-connect
   Require valid-user
</Location>
"""


def offline_conf(citylogin: str, port: int, client: dict[str, str]) -> str:
    """The quickstart in a virtual host of its own, and a refresh token asked for (offline_access); the info
    hook (off by default) shows the test the session's access token and ID token."""
    return f"""
Listen 127.0.0.1:{port}
<VirtualHost 127.0.0.1:{port}>
{quickstart_conf(citylogin, port, client)}
OIDCScope "openid offline_access"
OIDCInfoHook access_token id_token
</VirtualHost>
"""


@dataclass(frozen=True)
class Deployment:
    citylogin: str
    env: dict[str, str]
    app: str                  # the README's quickstart
    offline: str              # + offline_access and the info hook
    prefix: Path


@pytest.fixture(scope="module")
def deployment(dynamodb_endpoint, tmp_path_factory) -> Deployment:
    require_mod_auth_openidc()
    port, offline_port = free_port(), free_port()
    app_url, offline_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{offline_port}"
    with running_citylogin(dynamodb_endpoint, tmp_path_factory.mktemp("citylogin"), prefix="rpapache") as (url, env):
        client = add_app(env, "apache", redirect_uris=(f"{app_url}/secure/redirect_uri",), options=(
            "--post-logout-redirect-uri", f"{app_url}/signed-out.html",
            "--backchannel-logout-uri", f"{app_url}/secure/redirect_uri?logout=backchannel"))
        offline = add_app(env, "apache-offline", redirect_uris=(f"{offline_url}/secure/redirect_uri",))
        site = quickstart_conf(url, port, client) + offline_conf(url, offline_port, offline)
        documents = {"secure/index.shtml": SECURE_PAGE, "signed-out.html": SIGNED_OUT_PAGE}
        with running_apache(port=port, site_conf=site, documents=documents) as prefix:
            yield Deployment(url, env, app_url, offline_url, prefix)


@pytest.fixture
def device(browser, deployment):
    context = browser.new_context()
    device = DevicePage(context.new_page(), deployment.citylogin)
    yield device
    context.close()
    assert not device.errors, (device.errors, error_log(deployment.prefix)[-3000:])


def user_uuid(env: dict[str, str], username: str) -> str:
    """The account's id, as `citylogin admin show` tells the operator: the `sub` citylogin gives apps."""
    result = CliRunner().invoke(main, ["admin", "show", username], env=env)
    assert result.exit_code == 0, result.output
    return UUID.findall(result.output)[0]


def register_through(device: DevicePage, app_url: str, app_name: str) -> str:
    device.page.goto(app_url + "/secure/")
    expect(device.page.locator("#oidc-for")).to_have_text(f"Sign in to continue to {app_name}")
    username = unique_name()
    device.fill_register_form(username, device_name="Laptop browser")
    device.save_recovery_codes()
    return username


def sent_to_sign_in(device: DevicePage, app_url: str) -> bool:
    answer = app_view(device.page, app_url + "/secure/")
    return answer.status_code == 302 and "/oidc/authorize?" in answer.headers["Location"]


def expect_signed_in(device: DevicePage, deployment: Deployment, user: str, app_url: str = "") -> None:
    device.page.wait_for_url(re.compile(re.escape(app_url or deployment.app) + r"/secure/$"))
    expect(device.page.locator("#user")).to_have_text(f"{user}@{deployment.citylogin}")


def test_sign_in_back_channel_logout_and_logout(device, deployment):
    page = device.page
    assert sent_to_sign_in(device, deployment.app)
    username = register_through(device, deployment.app, "apache")
    user = user_uuid(deployment.env, username)
    expect_signed_in(device, deployment, user)            # REMOTE_USER: sub@issuer (https:// cut), the default
    assert not sent_to_sign_in(device, deployment.app)

    # The person signs the app out of this session on citylogin's Sessions tab: the back channel tells it
    page.goto(deployment.citylogin + "/")
    device.expect_devices_screen()
    device.go("sessions")
    page.get_by_role("button", name="Sign out apache from this session").click()
    page.locator("#confirm-ok").click()
    wait_until(lambda: sent_to_sign_in(device, deployment.app) or None, timeout=10,
               what=f"mod_auth_openidc hearing the logout token: {error_log(deployment.prefix)[-2000:]}")

    # Signed in again (the citylogin session goes on: no form), then the module's logout ends it at citylogin
    page.goto(deployment.app + "/secure/")
    expect_signed_in(device, deployment, user)
    page.goto(f"{deployment.app}/secure/redirect_uri?logout=" + quote(f"{deployment.app}/signed-out.html", safe=""))
    page.wait_for_url(f"{deployment.app}/signed-out.html")
    expect(page.locator("#status")).to_have_text("Signed out")
    assert sent_to_sign_in(device, deployment.app)
    page.goto(deployment.citylogin + "/")
    device.expect_login_screen()                          # citylogin's session of this browser is over too


def test_the_module_refreshes_the_access_token_with_offline_access(device, deployment):
    page = device.page
    user = user_uuid(deployment.env, register_through(device, deployment.offline, "apache-offline"))
    expect_signed_in(device, deployment, user, deployment.offline)
    info = f"{deployment.offline}/secure/redirect_uri?info=json"
    page.goto(info)
    before = page.evaluate(INFO)
    assert before["id_token"]["sub"] == user
    page.goto(info + "&access_token_refresh_interval=0")    # older than 0 s: the module refreshes it now
    after = page.evaluate(INFO)
    assert after["access_token"] != before["access_token"], error_log(deployment.prefix)[-2000:]
    assert after["id_token"]["sub"] == user
    page.goto(deployment.offline + "/secure/")
    expect_signed_in(device, deployment, user, deployment.offline)
