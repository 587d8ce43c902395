"""Authlib's client signs its requests (RFC 9101; SPEC §14): the Authlib example app
(examples/oidc/authlib_app.py) in its own process with a key of its own (SIGNING_KEY_FILE), registered by
`citylogin apps add --jwks ... --require-signed-request-object`, so that citylogin takes none of its
authorization requests unless signed. A person signs up and in through it in Chromium; the app's own
redirect carries the request object (its state and nonce inside alone), and it redeems its code with a
client assertion by the same key (private_key_jwt)."""
from __future__ import annotations

import base64
import json
import os
import sys
from contextlib import ExitStack
from urllib.parse import parse_qs, urlsplit

import jwt as pyjwt
import pytest
import requests
from joserfc.jwk import RSAKey

from tests.browser.pages import DevicePage
from tests.browser.test_oidc_example_apps import AUTHLIB_APP, expect_signed_in, signs_up_through
from tests.conftest import app_settings, config_env, unique_name
from tests.support.notes import REPOSITORY, add_app
from tests.support.ports import free_port
from tests.support.services import running_process


@pytest.fixture(scope="module")
def signing_app(dynamodb_endpoint, tmp_path_factory):
    """(citylogin's URL, the app's URL, its client_id) with the app running under its own key."""
    citylogin_port, app_port = free_port(), free_port()
    citylogin_url, app_url = f"http://127.0.0.1:{citylogin_port}", f"http://127.0.0.1:{app_port}"
    folder = tmp_path_factory.mktemp("signer")
    config = app_settings(dynamodb_endpoint, folder, unique_name("signer") + "_")
    env = {**config_env(config), "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(citylogin_port),
           "CITYLOGIN_PUBLIC_URL": citylogin_url,
           "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    key = RSAKey.generate_key(2048, parameters={"kid": "signer-1"})
    (folder / "private.json").write_text(json.dumps(key.as_dict(private=True)))
    (folder / "public.json").write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    with ExitStack() as stack:
        stack.enter_context(running_process([sys.executable, "-m", "citylogin", "serve"], port=citylogin_port,
                                            env=env, timeout=60))
        app = add_app(env, "Signing app", redirect_uris=(f"{app_url}/callback",), options=(
            "--jwks", str(folder / "public.json"), "--require-signed-request-object",
            "--post-logout-redirect-uri", f"{app_url}/"))
        stack.enter_context(running_process(
            [sys.executable, str(AUTHLIB_APP), "--port", str(app_port)], port=app_port, cwd=REPOSITORY,
            env={"CITYLOGIN_URL": citylogin_url, "CLIENT_ID": app["client_id"],
                 "SIGNING_KEY_FILE": str(folder / "private.json")}))
        yield citylogin_url, app_url, app["client_id"]


def test_the_apps_redirect_carries_a_signed_request_object(signing_app):
    citylogin_url, app_url, client_id = signing_app
    sent = requests.get(app_url + "/login", allow_redirects=False, timeout=10)
    assert sent.status_code == 302, sent.text
    query = {name: values[0] for name, values in parse_qs(urlsplit(sent.headers["Location"]).query).items()}
    assert set(query) == {"response_type", "client_id", "scope", "redirect_uri", "request"}, query
    header = pyjwt.get_unverified_header(query["request"])
    claims = pyjwt.decode(query["request"], options={"verify_signature": False})
    assert header["alg"] == "RS256" and header["kid"] == "signer-1"
    assert claims["iss"] == client_id and claims["aud"] == citylogin_url and claims["jti"]
    assert claims["state"] and claims["nonce"] and claims["code_challenge_method"] == "S256"


def test_a_person_signs_in_through_the_app_that_signs_its_requests(browser, signing_app, screenshot):
    _, app_url, _ = signing_app
    context = browser.new_context()
    visitor = DevicePage(context.new_page(), signing_app[0])
    try:
        username = signs_up_through(visitor, app_url, asks_email=True)
        visitor.page.reload()
        expect_signed_in(visitor, app_url, username)
        screenshot(visitor.page, "authlib-signed-request-object")
        assert not visitor.errors, visitor.errors
    finally:
        context.close()
