"""npm openid-client (unmodified) signs a person in as a FAPI 2.0 client (SPEC §14, issue 64), against an app
added with `citylogin apps add --profile fapi2`: a Node app in its own process (tests/interop/
openid_client_app.mjs --fapi2) pushes every request (buildAuthorizationUrlWithPAR) with PKCE S256,
authenticates with its private key (PrivateKeyJwt: the issuer as audience) and binds its tokens with DPoP
(getDPoPHandle); the person registers on citylogin's own page in Chromium and comes back signed in. The
app then reads userinfo with its DPoP-bound access token and refreshes: the profile keeps its refresh token
(openid-client takes the answer as it comes), the refreshed ID token checked by openid-client again."""
from __future__ import annotations

import json
import re
from contextlib import ExitStack
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc.jwk import ECKey
from playwright.sync_api import expect

from tests.browser.pages import DevicePage
from tests.conftest import unique_name
from tests.support.notes import add_app
from tests.support.ports import free_port
from tests.support.relying_parties import INTEROP, require_npm_package, running_citylogin
from tests.support.services import running_process

APP = INTEROP / "openid_client_app.mjs"


@dataclass(frozen=True)
class Deployment:
    citylogin: str
    app: str
    registered: dict            # what `apps add --json` printed


@pytest.fixture(scope="module")
def deployment(dynamodb_endpoint, tmp_path_factory) -> Deployment:
    require_npm_package("openid-client")
    port, folder = free_port(), tmp_path_factory.mktemp("fapi2")
    key = ECKey.generate_key("P-256", parameters={"kid": "bank-app-1"})
    keys_file = folder / "jwks.json"
    keys_file.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    with ExitStack() as stack:
        citylogin, env = stack.enter_context(running_citylogin(dynamodb_endpoint, folder / "citylogin",
                                                               prefix="rpfapi2"))
        registered = add_app(env, "bank", redirect_uris=(f"http://127.0.0.1:{port}/callback",), options=(
            "--jwks", str(keys_file), "--id-token-alg", "ES256", "--profile", "fapi2"))
        # the private key in the app's environment, never on its command line
        app = stack.enter_context(running_process(
            ["node", str(APP), "--port", str(port), "--issuer", citylogin, "--fapi2"], port=port, cwd=INTEROP,
            env={"CLIENT_ID": registered["client_id"], "PRIVATE_JWK": json.dumps(key.as_dict(private=True))}))
        yield Deployment(citylogin, app, registered)


@pytest.fixture
def device(browser, deployment):
    context = browser.new_context()
    device = DevicePage(context.new_page(), deployment.citylogin)
    yield device
    context.close()
    assert not device.errors, device.errors


def app_call(device: DevicePage, method: str, path: str) -> dict:
    """The app's own JSON route, called from its page in the browser (the visitor's cookie)."""
    return device.page.evaluate("""async ([method, path]) => {
        const answer = await fetch(path, { method });
        return { status: answer.status, body: await answer.json() };
    }""", [method, path])


def test_openid_client_signs_in_as_a_fapi2_client_reads_userinfo_and_refreshes(device, deployment):
    assert deployment.registered["profile"] == "fapi2"
    assert deployment.registered["token_endpoint_auth_method"] == "private_key_jwt"
    page = device.page
    authorizations: list[str] = []
    page.on("request", lambda request: authorizations.append(request.url)
            if request.url.startswith(deployment.citylogin + "/oidc/authorize") else None)

    page.goto(deployment.app + "/")
    page.wait_for_selector("body[data-state=signed-out]")
    page.locator("#sign-in").click()
    expect(page.locator("#oidc-for")).to_have_text("Sign in to continue to bank")
    # pushed: the browser carried the client_id and the request_uri, nothing else (FAPI 2.0 SP §5.3.2.2)
    assert authorizations and set(parse_qs(urlsplit(authorizations[0]).query)) == {"client_id", "request_uri"}
    username = unique_name()
    device.fill_register_form(username, device_name="Laptop browser")
    device.save_recovery_codes()
    page.wait_for_url(re.compile(re.escape(deployment.app) + r"/$"))
    page.wait_for_selector("body[data-state=signed-in]")
    expect(page.locator("#who")).to_have_text(username)

    me = app_call(device, "GET", "/me")["body"]
    assert me["signed_in"] and me["token_type"].lower() == "dpop" and me["has_refresh"], me
    assert me["claims"]["preferred_username"] == username and "hwk" in me["claims"]["amr"]
    userinfo = app_call(device, "GET", "/userinfo")["body"]
    assert userinfo["status"] == 200 and userinfo["body"]["sub"] == me["claims"]["sub"], userinfo

    refreshed = app_call(device, "POST", "/refresh")
    assert refreshed["status"] == 200, refreshed
    assert refreshed["body"]["rotated"] is False                  # kept: FAPI 2.0 SP §5.3.2.1-10
    assert refreshed["body"]["claims"]["sub"] == me["claims"]["sub"] and "nonce" not in refreshed["body"]["claims"]
    again = app_call(device, "GET", "/userinfo")["body"]         # the refreshed access token, bound as well
    assert again["status"] == 200 and again["body"]["preferred_username"] == username, again
    assert app_call(device, "POST", "/refresh")["body"]["rotated"] is False
