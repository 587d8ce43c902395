"""One origin (issue 43): `citylogin serve` run as the README says, with no --host and no
CITYLOGIN_PUBLIC_URL, is at the README's address for its links, for openid-client's discovery (npm,
under Node) and for Chromium, whose pages there find the issuer equal to their own origin."""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from urllib.parse import urlsplit

import requests
from playwright.sync_api import expect

from tests.conftest import FAST_ARGON2, config_env, unique_name
from tests.oidc.test_openid_client import INTEROP, require_node_clients
from tests.support.ports import free_port
from tests.test_readme import readme_address


def test_serve_run_as_the_readme_says_is_at_the_readme_address_for_links_and_openid_client(
        dynamodb_endpoint, tmp_path, browser):
    """`citylogin serve` with no --host and no CITYLOGIN_PUBLIC_URL (only its port is a free one, the
    README's may be taken): it announces the README's address, its mail links lead there, and
    openid-client's discovery fetched there accepts the issuer (it refuses any other spelling)."""
    node = require_node_clients()
    readme, port, name = urlsplit(readme_address()), free_port(), unique_name()
    address = f"{readme.scheme}://{readme.hostname}:{port}"       # the README's host, as written
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    env.update(config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": tmp_path, "port": port,
                           "table_prefix": unique_name("pub") + "_", "log_level": "INFO", **FAST_ARGON2,
                           "key_encryption_key": base64.b64encode(os.urandom(32)).decode()}))
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "citylogin", "serve"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            try:
                if requests.get(address + "/healthz", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # refused, or held while the workers start
                time.sleep(0.2)
        discovered = subprocess.run([node, str(INTEROP / "discovery.mjs"), address], cwd=INTEROP,
                                    capture_output=True, text=True, timeout=60)
        assert discovered.returncode == 0, discovered.stdout + discovered.stderr
        assert json.loads(discovered.stdout) == {"issuer": address}
        _the_browser_finds_one_origin(browser, address)
        user = {"username": name, "email": f"{name}@example.com", "password": "a long passphrase"}
        assert requests.post(address + "/registration/", json=user, timeout=30).status_code == 201
        deadline = time.monotonic() + 20
        while "#verify=" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)  # the mail may go out after the answer
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = log_path.read_text()
    assert f"citylogin on {address}/ " in text, text[-2000:]
    assert re.findall(r"(https?://\S+)/#verify=", text) == [address], text[-2000:]


def _the_browser_finds_one_origin(browser, address: str) -> None:
    """Chromium at the README's address, in English and in Japanese: the web UI works there (a secure
    context: no "open it at another address" page) and the issuer it discovers is the page's own origin,
    so an app's sign-in page and the person's pages are one site, one device key."""
    for locale, title in (("en-US", "Log in"), ("ja-JP", "ログイン")):
        context = browser.new_context(locale=locale)
        try:
            page = context.new_page()
            page.goto(address + "/")
            expect(page.locator("#login-form h1")).to_have_text(title)
            assert page.evaluate("window.isSecureContext")
            issuer = page.evaluate("fetch('/.well-known/openid-configuration').then((r) => r.json())"
                                   ".then((d) => d.issuer)")
            assert issuer == page.evaluate("location.origin") == address
        finally:
            context.close()
