"""CITYLOGIN_PUBLIC_URL, where QR codes and mail links lead and the OpenID Connect issuer: `citylogin
serve` derives it from what it binds, as typed, so that the README's address is the issuer an
OpenID Connect client finds there (tests/browser/test_one_origin.py runs it as the README says);
gunicorn and Amazon DynamoDB require it (tests/citylogin/server/test_gunicorn_start.py runs gunicorn without
it); development processes on a local engine link to serve's default address."""
from __future__ import annotations

import socket

import pytest

from citylogin.server.serve import announcement, bound_url
from common.config import ConfigError, load_settings
from common.web.app_factory import with_public_url


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
