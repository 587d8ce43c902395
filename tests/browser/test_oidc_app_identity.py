"""An app that registered itself (RFC 7591) is shown by what it registered (SPEC §14): its logo (logo_uri, from
the app's own origin, which the page's Content-Security-Policy lists within a second of the registration) and
links to its site, privacy policy and terms, on the sign-in banner and the consent dialog, in English and
Japanese, in Chromium; a violation of the policy fails the test."""
from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image
from playwright.sync_api import expect

from relying_parties import registration_tokens
from tests.conftest import unique_name
from tests.support.oidc import authorize_url, pkce_pair


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def site() -> Iterator[str]:
    """The app's own web site: its logo, its pages and its redirect URI, on another origin than citylogin's."""
    logo = _png()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body, kind = (logo, "image/png") if self.path == "/logo.png" else (b"<!doctype html><p>app</p>",
                                                                                "text/html")
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_sign_in_and_consent_pages_show_the_apps_logo_and_links_in_both_languages(make_server, new_device, site):
    url, ctx = make_server(host_name="127.0.0.1")
    token = registration_tokens.make_token(ctx).token
    metadata = {"redirect_uris": [f"{site}/callback"], "client_name": "Rebus", "logo_uri": f"{site}/logo.png",
                "client_uri": f"{site}/", "policy_uri": f"{site}/privacy", "tos_uri": f"{site}/terms"}
    app = requests.post(url + "/oidc/register", json=metadata, headers={"Authorization": f"Bearer {token}"},
                        timeout=10).json()
    policy = requests.get(url + "/", timeout=10).headers["Content-Security-Policy"]
    assert f"img-src 'self' data: {site}" in policy

    device = new_device(url)
    page = device.page
    _, challenge = pkce_pair()
    page.goto(authorize_url(url, response_type="code", client_id=app["client_id"], redirect_uri=f"{site}/callback",
                            scope="openid", state="st", code_challenge=challenge, code_challenge_method="S256"))
    expect(page.locator("#oidc-for")).to_have_text("Sign in to continue to Rebus")
    logo = page.locator("#oidc-logo")
    expect(logo).to_be_visible()
    assert logo.evaluate("(img) => img.naturalWidth") == 64 and logo.get_attribute("alt") == ""
    links = page.locator("#oidc-links a")
    expect(links).to_have_text(["About Rebus", "Privacy policy", "Terms of service"])
    assert [links.nth(i).get_attribute("href") for i in range(3)] == [f"{site}/", f"{site}/privacy", f"{site}/terms"]
    assert {links.nth(i).get_attribute("rel") for i in range(3)} == {"noopener noreferrer"}
    device.switch_language("ja")
    expect(links).to_have_text(["Rebus について", "プライバシーポリシー", "利用規約"])
    device.switch_language("en")

    device.fill_register_form(unique_name(), device_name="Laptop browser")
    device.save_recovery_codes()
    dialog = page.locator("#consent-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#consent-logo")).to_be_visible()
    expect(dialog.locator("#consent-links a")).to_have_text(["About Rebus", "Privacy policy", "Terms of service"])
    dialog.locator("#consent-allow").click()
    page.wait_for_url(f"{site}/callback?*")
    assert urlsplit(page.url).path == "/callback" and "code=" in page.url


def test_an_app_without_them_shows_its_name_alone(make_server, new_device):
    url, ctx = make_server(host_name="127.0.0.1")
    token = registration_tokens.make_token(ctx).token
    app = requests.post(url + "/oidc/register", json={"redirect_uris": ["https://rp.example/callback"]},
                        headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    page = new_device(url).page
    _, challenge = pkce_pair()
    page.goto(authorize_url(url, response_type="code", client_id=app["client_id"],
                            redirect_uri="https://rp.example/callback", scope="openid", state="st",
                            code_challenge=challenge, code_challenge_method="S256"))
    expect(page.locator("#oidc-for")).to_have_text("Sign in to continue to rp.example")
    expect(page.locator("#oidc-logo")).to_be_hidden()
    expect(page.locator("#oidc-links")).to_be_hidden()
