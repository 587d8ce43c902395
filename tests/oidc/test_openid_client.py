"""npm `openid-client` (unmodified, under the machine's Node) as a confidential server-side app in its own
process (tests/interop/openid_client_app.mjs), against citylogin (SPEC §14): discovery, the code flow
with PKCE, state and nonce (and pushed, RFC 9126), the ID token's checks, refresh with rotation and its
ID token, userinfo, RP-initiated logout after a refresh (its hint the refreshed ID token), all of it
bearer or DPoP-bound to the app's key (RFC 9449); and its Back-Channel Logout endpoint, checking the
logout token with `jose`. The browser's part is the device's: it follows the authorization request and
finishes it with its session, as the web UI does. Ends with the device displaced by another device's
login: the app is told by back channel, its refresh fails and its userinfo call gets 401."""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests
from joserfc.jwk import ECKey

from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.support.live import PASSWORD, register_device
from tests.support.notes import second_device
from tests.support.oidc import (finish_as_device, query_of, sign_in_page_request, sign_out_as_device,
                                sign_out_page_request)
from tests.support.ports import free_port
from tests.support.services import running_process
from tests.support.waiting import wait_until

INTEROP = Path(__file__).resolve().parents[1] / "interop"
APP = INTEROP / "openid_client_app.mjs"


def require_node_clients() -> str:
    node = shutil.which("node")
    installed = (INTEROP / "node_modules" / "openid-client" / "package.json").exists()
    if node and installed:
        return node
    message = "npm openid-client is not installed (bash scripts/setup.sh --tests installs it under tests/interop)"
    if os.environ.get("CI") or node:
        pytest.fail(message if node else "node is missing: the interoperability tests run npm clients under it")
    pytest.skip(message)


@contextmanager
def openid_client_app(issuer: str, port: int, credentials, *, dpop: bool = False,
                      private_jwk: dict | None = None) -> Iterator[str]:
    """The Node app in its own process: with the client secret, or with `private_jwk` (private_key_jwt),
    both in its environment (never on its command line)."""
    env = {"CLIENT_ID": credentials.app.client_id}
    env |= {"PRIVATE_JWK": json.dumps(private_jwk)} if private_jwk else {"CLIENT_SECRET": credentials.client_secret}
    flags = ["--private-key-jwt"] if private_jwk else ["--dpop"] if dpop else []
    argv = [require_node_clients(), str(APP), "--port", str(port), "--issuer", issuer, *flags]
    assert not any(credentials.client_secret in arg for arg in argv if credentials.client_secret)
    with running_process(argv, port=port, env=env, cwd=INTEROP) as url:
        yield url


def register(ctx, port: int, **options):
    app_url = f"http://127.0.0.1:{port}"
    return apps.add_app(ctx, name="openid-client app", push_url=None, oidc=OidcClient(
        redirect_uris=(f"{app_url}/callback",), post_logout_redirect_uris=(f"{app_url}/",),
        backchannel_logout_uri=f"{app_url}/backchannel-logout", **options))


def signs_in(app: str, device, *, par: bool = False) -> tuple[requests.Session, dict]:
    """The browser's part: the app's /login → citylogin's authorization request → the device's session
    finishes it → the app's /callback, where openid-client redeems the code and sends the browser to /.
    Returns the visitor (a cookie of its own) and its sign-in as the app's /me tells it."""
    visitor = requests.Session()
    login = visitor.get(app + "/login", params={"par": "1"} if par else {}, allow_redirects=False, timeout=20)
    assert login.status_code == 302, login.text
    callback = finish_as_device(device, sign_in_page_request(login.headers["Location"], browser=device))
    redeemed = visitor.get(callback, allow_redirects=False, timeout=20)
    assert redeemed.status_code == 302 and redeemed.headers["Location"] == "/", redeemed.text
    me = visitor.get(app + "/me", timeout=20).json()
    assert me["signed_in"] is True, me
    return visitor, me


@pytest.fixture
def provider(make_server):
    return make_server(host_name="127.0.0.1", ssf_push_interval=0.2)


@pytest.mark.parametrize("dpop", [False, True], ids=["bearer", "dpop"])
def test_openid_client_signs_in_refreshes_reads_userinfo_and_hears_the_displacement(provider, dpop):
    url, ctx = provider
    port = free_port()
    credentials = register(ctx, port, require_dpop=dpop)
    device = register_device(url)
    device.login(PASSWORD)
    with openid_client_app(url, port, credentials, dpop=dpop) as app:
        visitor, signed_in = signs_in(app, device, par=dpop)
        assert signed_in["token_type"].lower() == ("dpop" if dpop else "bearer")
        assert signed_in["claims"]["sub"] == device.key_file.user_uuid
        assert signed_in["claims"]["sid"] == device.session_id and signed_in["has_refresh"]
        assert "hwk" in signed_in["claims"]["amr"]

        refreshed = visitor.post(app + "/refresh", timeout=20)
        assert refreshed.status_code == 200 and refreshed.json()["rotated"] is True, refreshed.text
        userinfo = visitor.get(app + "/userinfo", timeout=20).json()
        assert userinfo["status"] == 200 and userinfo["body"]["preferred_username"] == device.key_file.username

        displaced = device.session_id
        second_device(device).login(PASSWORD, force=True)    # one device at a time: this one is out
        state = wait_until(lambda: (s := visitor.get(app + "/state", timeout=20).json())["logouts"] and s,
                           timeout=30, what="the app's back-channel logout")
        assert [logout["sid"] for logout in state["logouts"]] == [displaced] and not state["signed_in"]
        assert state["logouts"][0]["alg"] == "RS256"
        refused = visitor.post(app + "/refresh", timeout=20)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
        assert visitor.get(app + "/userinfo", timeout=20).json()["status"] == 401


def test_openid_client_pushes_its_request_refreshes_and_logs_the_person_out_of_citylogin(provider):
    url, ctx = provider
    port = free_port()
    credentials = register(ctx, port, require_par=True)
    device = register_device(url)
    device.login(PASSWORD)
    with openid_client_app(url, port, credentials) as app:
        pushed = requests.get(app + "/login", params={"par": "1"}, allow_redirects=False, timeout=20)
        assert set(query_of(pushed.headers["Location"])) == {"client_id", "request_uri"}
        visitor, signed_in = signs_in(app, device, par=True)
        assert signed_in["claims"]["sid"] == device.session_id
        # a refresh first: the app keeps its answer, whose ID token (OpenID Connect Core §12.2) is the
        # logout's hint — openid-client checked it (iss, aud, sub, signature) as it checked the first
        refreshed = visitor.post(app + "/refresh", timeout=20)
        assert refreshed.status_code == 200 and refreshed.json()["rotated"] is True, refreshed.text
        claims = refreshed.json()["claims"]
        assert claims is not None and "nonce" not in claims, refreshed.text
        assert {k: claims[k] for k in ("sub", "sid", "auth_time")} == \
            {k: signed_in["claims"][k] for k in ("sub", "sid", "auth_time")}
        logout = visitor.post(app + "/logout", allow_redirects=False, timeout=10)
        assert "id_token_hint=undefined" not in logout.headers["Location"]
        kept = requests.get(logout.headers["Location"], allow_redirects=False, timeout=10)
        assert device.request("GET", "/session/me").status_code == 200     # the hint alone ends nothing
        ended = sign_out_as_device(url, device, sign_out_page_request(kept.headers["Location"]))
        assert ended.status_code == 200 and ended.json() == {"redirect_to": f"{app}/?state=signed-out"}
        assert device.request("GET", "/session/me").status_code == 401


def test_openid_client_authenticates_with_its_private_key(provider):
    """private_key_jwt (RFC 7523): the app registers only its public key; openid-client signs a fresh
    client assertion for PAR, the code and each refresh, and no secret ever leaves the app."""
    url, ctx = provider
    port = free_port()
    key = ECKey.generate_key("P-256", parameters={"kid": "app-key-1"})
    credentials = register(ctx, port, jwks=json.dumps({"keys": [key.as_dict(private=False)]}))
    assert credentials.app.public()["token_endpoint_auth_method"] == "private_key_jwt"
    device = register_device(url)
    device.login(PASSWORD)
    with openid_client_app(url, port, credentials, private_jwk=key.as_dict(private=True)) as app:
        visitor, signed_in = signs_in(app, device, par=True)
        assert signed_in["claims"]["sid"] == device.session_id and signed_in["has_refresh"]
        refreshed = visitor.post(app + "/refresh", timeout=20)
        assert refreshed.status_code == 200 and refreshed.json()["rotated"] is True, refreshed.text
        assert visitor.get(app + "/userinfo", timeout=20).json()["status"] == 200
