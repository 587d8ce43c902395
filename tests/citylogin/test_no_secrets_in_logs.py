"""CITYLOGIN_LOG_LEVEL=DEBUG must not log secrets (issue 8, defect 5): no password, token, Argon2
hash, stored digest, key or SigV4 header, at any level, through a whole register-to-pairing flow,
neither in text nor in JSON lines (CITYLOGIN_LOG_FORMAT=json), access log and audit stream included; nor
through an app's OpenID Connect sign-in (issue 42): its secret, a pushed request_uri, the code (and its
replay), the tokens and their retried refresh, a revocation and an RP-initiated logout's handle, and the
cookie that binds the authorization request to its browser (issue 62)."""
from __future__ import annotations

import json
import logging
import re

import requests

from relying_parties import service as apps
from relying_parties.models import OidcClient
from citylogin.app import create_app
from citylogin.client.api import Client
from common.database import dynamo
from oidc.authorization.browser_binding import cookie_name
from tests.conftest import unique_name
from tests.support.live import PASSWORD, register_device, serving
from tests.support.oidc import (authorize_url, finish_as_device, http_of, pkce_pair, query_of, sign_in_page_request,
                                sign_out_as_device, sign_out_page_request)
from tests.support.waiting import wait_until
from common.web.log_setup import AUDIT_LOGGER, JsonFormatter

HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def stored_digests(ctx) -> set[str]:
    """Every 64-hex string and Argon2 hash stored in the app's tables (a scan is fine in a test)."""
    found = set()
    for table in ctx.tables.all():
        for item in ctx.dynamodb.scan(TableName=table)["Items"]:
            for value in (dynamo.from_item(item) or {}).values():
                if isinstance(value, str) and (HEX_DIGEST.match(value) or value.startswith("$argon2")):
                    found.add(value)
    return found


REDIRECT = "https://notes.example/callback"


def app_sign_in(ctx, url: str, device: Client) -> list[str]:
    """An app's whole OpenID Connect life on the device's session; every secret it saw or sent."""
    app = apps.add_app(ctx, name="Notes", push_url=None, oidc=OidcClient(
        redirect_uris=(REDIRECT,), post_logout_redirect_uris=(REDIRECT,)))
    auth = (app.app.client_id, app.client_secret)
    verifier, challenge = pkce_pair()
    pushed = requests.post(url + "/oidc/par", auth=auth, timeout=10, data={
        "response_type": "code", "client_id": app.app.client_id, "redirect_uri": REDIRECT, "state": "s",
        "scope": "openid offline_access", "code_challenge": challenge, "code_challenge_method": "S256"}).json()
    request_id = sign_in_page_request(authorize_url(url, client_id=app.app.client_id,
                                                    request_uri=pushed["request_uri"]), browser=device)
    cookie = http_of(device).cookies.get(cookie_name(request_id))
    assert cookie, "no cookie bound the request to the browser"
    code = query_of(finish_as_device(device, request_id))["code"]
    redeem = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    issued = requests.post(url + "/oidc/token", data=redeem, auth=auth, timeout=10).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    renewed = [requests.post(url + "/oidc/token", data=refresh, auth=auth, timeout=10).json() for _ in range(2)]
    pair = ("access_token", "refresh_token", "id_token")  # expires_in counts down the second it is asked in
    assert [renewed[0][k] for k in pair] == [renewed[1][k] for k in pair]  # the retry inside the grace: the same
    assert 0 < renewed[1]["expires_in"] <= renewed[0]["expires_in"]  # ... counting down to one expiry
    assert requests.post(url + "/oidc/token", data=redeem, auth=auth, timeout=10).status_code == 400  # a replay
    requests.post(url + "/oidc/revoke", data={"token": renewed[0]["refresh_token"]}, auth=auth, timeout=10)
    asked = requests.get(f"{url}/oidc/logout", params={"id_token_hint": issued["id_token"],
                                                       "post_logout_redirect_uri": REDIRECT},
                         allow_redirects=False, timeout=10)
    handle = sign_out_page_request(asked.headers["Location"])
    assert sign_out_as_device(url, device, handle).status_code == 200
    return [app.client_secret, pushed["request_uri"], pushed["request_uri"].rsplit(":", 1)[-1], request_id, cookie,
            code, verifier, issued["access_token"], issued["refresh_token"], issued["id_token"],
            renewed[0]["access_token"], renewed[0]["refresh_token"], handle]


def test_debug_logging_carries_no_secrets(base_config, table_prefix, caplog):
    caplog.set_level(logging.DEBUG)  # what basicConfig does for CITYLOGIN_LOG_LEVEL=DEBUG outside pytest
    app = create_app({**base_config, "log_level": "DEBUG", "log_format": "json", "table_prefix": table_prefix + "dbg_"})
    ctx = app.extensions["citylogin"]
    with serving(app) as url:
        first = register_device(url)
        first.login(PASSWORD)
        tokens = [first.access_token, first.refresh_token]
        first.refresh()
        tokens += [first.access_token, first.refresh_token]
        pairing = first.request_pairing()
        second = Client(url)
        second.pair(pairing["qr_code"], username=first.key_file.username, password=PASSWORD, device_name=unique_name())
        first.logout()  # then the event stream refuses the token it is given in the query string
        assert requests.get(f"{url}/session/events?access_token={tokens[2]}", timeout=10).status_code == 401
        first.login(PASSWORD)
        tokens += [first.access_token, first.refresh_token, *app_sign_in(ctx, url, first)]

    # the access line is written when the server closes the response
    wait_until(lambda: any(getattr(r, "route", None) == "/session/events" for r in caplog.records), timeout=30,
               what="the event stream's access line")
    json_lines = [JsonFormatter().format(r) for r in caplog.records]
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records) + "\n".join(json_lines)
    audited = {json.loads(line)["event"] for line in json_lines if json.loads(line)["logger"] == AUDIT_LOGGER}
    assert {"login_success", "pairing_token_created", "pairing_token_redeemed", "session_revoked"} <= audited
    assert any(getattr(r, "route", None) == "/oidc/authorize" for r in caplog.records)
    assert any(json.loads(line).get("route") == "/session/events" for line in json_lines)
    assert len(caplog.records) > 5  # DEBUG did log something
    secrets = {PASSWORD, *tokens, pairing["qr_code"], *stored_digests(ctx)}
    assert len(secrets) > 10
    leaked = [s for s in secrets if s in logged]
    assert leaked == []
    assert re.findall(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", logged) == []  # no digest of any kind
    for marker in ("$argon2id$", "Authorization", "Signature=", "PRIVATE KEY", "password_hash"):
        assert marker not in logged, marker
