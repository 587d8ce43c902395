"""CITYLOGIN_PUBLIC_URL, where QR codes and mail links lead and the OpenID Connect issuer: `citylogin
serve` derives it from what it binds, as typed, so that the README's address is the issuer an
OpenID Connect client finds there; gunicorn and Amazon DynamoDB require it
(tests/citylogin/test_gunicorn_start.py runs gunicorn without it); development processes on a local
engine link to serve's default address."""
from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests

from citylogin.cli import announcement, bound_url
from common.app_factory import with_public_url
from common.config import ConfigError, load_settings
from common.dynamodb_local import free_port
from tests.conftest import FAST_ARGON2, config_env, unique_name
from tests.oidc.test_openid_client import INTEROP, require_node_clients
from tests.test_readme import readme_address


def test_serve_run_as_the_readme_says_is_at_the_readme_address_for_links_and_openid_client(
        dynamodb_endpoint, tmp_path):
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
        process = subprocess.Popen([sys.executable, "-m", "citylogin.cli", "serve"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            try:
                if requests.get(address + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        discovered = subprocess.run([node, str(INTEROP / "discovery.mjs"), address], cwd=INTEROP,
                                    capture_output=True, text=True, timeout=60)
        assert discovered.returncode == 0, discovered.stdout + discovered.stderr
        assert json.loads(discovered.stdout) == {"issuer": address}
        _the_browser_finds_one_origin(address)
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


def _the_browser_finds_one_origin(address: str) -> None:
    """Chromium at the README's address, in English and in Japanese: the web UI works there (a secure
    context: no "open it at another address" page) and the issuer it discovers is the page's own origin,
    so an app's sign-in page and the person's pages are one site, one device key."""
    from playwright.sync_api import expect, sync_playwright

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for locale, title in (("en-US", "Log in"), ("ja-JP", "ログイン")):
                context = browser.new_context(locale=locale)
                page = context.new_page()
                page.goto(address + "/")
                expect(page.locator("#login-form h1")).to_have_text(title)
                assert page.evaluate("window.isSecureContext")
                issuer = page.evaluate("fetch('/.well-known/openid-configuration').then((r) => r.json())"
                                       ".then((d) => d.issuer)")
                assert issuer == page.evaluate("location.origin") == address
                context.close()
        finally:
            browser.close()


def test_serve_links_to_the_host_it_binds_as_typed():
    assert bound_url("localhost", 5000) == "http://localhost:5000"
    assert bound_url("127.0.0.1", 8080) == "http://127.0.0.1:8080"    # never renamed: another origin
    assert bound_url("192.0.2.7", 8080) == "http://192.0.2.7:8080"
    assert bound_url("0.0.0.0", 5000) == f"http://{socket.gethostname()}:5000"   # a wildcard: the machine
    assert bound_url("::1", 5000) == "http://[::1]:5000"
    assert bound_url("2001:db8::7", 5000) == "http://[2001:db8::7]:5000"
    assert load_settings({}, environ={}).host == "localhost"       # passkeys need a host name


def test_serve_says_where_to_open_it_and_what_an_ip_address_costs():
    named = announcement("localhost", 5000, "http://localhost:5000", given=False)
    assert named.startswith("citylogin on http://localhost:5000/ ") and "passkeys" not in named
    assert "CITYLOGIN_PUBLIC_URL" in named and "--host 0.0.0.0" in named       # how a phone reaches it
    assert "passkeys need a host name" in announcement("127.0.0.1", 5000, "http://127.0.0.1:5000", given=False)
    assert "phone" not in announcement("0.0.0.0", 5000, "http://box:5000", given=False)  # already reachable
    given = announcement("0.0.0.0", 5000, "https://login.example.org", given=True)
    assert "http://0.0.0.0:5000/" in given and "https://login.example.org (CITYLOGIN_PUBLIC_URL)" in given


def test_where_nothing_can_derive_it_it_is_required(monkeypatch):
    given = load_settings({"public_url": "https://login.example.org"}, environ={})
    assert with_public_url(given).public_url == "https://login.example.org"
    local = load_settings({"dynamodb_endpoint_url": "http://127.0.0.1:8000"}, environ={})
    assert with_public_url(local).public_url == "http://localhost:5000"   # where serve puts the web UI
    with pytest.raises(ConfigError, match="CITYLOGIN_PUBLIC_URL is required"):
        with_public_url(load_settings({}, environ={}))                    # Amazon DynamoDB
    monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/23.0.0")
    with pytest.raises(ConfigError, match="CITYLOGIN_PUBLIC_URL is required"):
        with_public_url(local)                                            # gunicorn, any engine
