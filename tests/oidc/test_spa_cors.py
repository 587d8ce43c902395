"""A SPA needs no server setting (SPEC §14 Clients): discovery and the JWKS answer every origin (`*`);
the token, userinfo and revocation endpoints answer CORS, preflight included, to the origins of each
public client's redirect URIs and web origins, read from the registry, and to no other origin (a
confidential client's included, or another spelling of an origin), within FRESH_SECONDS of a change even
while the process's registry copy is behind. No CITYLOGIN_CORS_ORIGINS anywhere here."""
from __future__ import annotations

import time

import pytest
import requests

from accounts.models import Role
from relying_parties import service as apps
from relying_parties.models import OidcClient
from relying_parties.registry import APP_REGISTRY, FRESH_SECONDS, app_registry
from tests.conftest import app_settings
from tests.support.fixtures import app_servers
from tests.support.operators import operator
from tests.support.waiting import wait_until

SPA = "https://spa.example:8443"
ELSEWHERE = "https://docs.spa.example"
SERVER = "https://server.example"
CLIENT_ENDPOINTS = ("/oidc/token", "/oidc/userinfo", "/oidc/revoke")


@pytest.fixture(scope="module")
def server(dynamodb_endpoint, data_dir, table_prefix):
    """One all-in-one app for the module (no CORS setting), with a SPA and a confidential client."""
    config = app_settings(dynamodb_endpoint, data_dir, table_prefix)
    with app_servers(config) as start:
        url, ctx = start()
        apps.add_app(ctx, name="SPA", push_url=None, oidc=OidcClient(redirect_uris=(SPA + "/app/cb",), public=True))
        apps.add_app(ctx, name="Server", push_url=None, oidc=OidcClient(redirect_uris=(SERVER + "/cb",)))
        yield url, ctx


def preflight(url: str, path: str, origin: str, method: str = "POST") -> requests.Response:
    return requests.options(url + path, timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,dpop,content-type"})


def allowed(response: requests.Response, origin: str) -> bool:
    return response.headers.get("Access-Control-Allow-Origin") == origin


def test_discovery_and_the_jwks_answer_every_origin(server):
    url, _ = server
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
                 "/.well-known/jwks.json"):
        answer = requests.get(url + path, headers={"Origin": "https://anyone.example"}, timeout=10)
        assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == "*", path
        assert "Access-Control-Allow-Credentials" not in answer.headers


def test_a_public_clients_redirect_origin_is_answered_with_preflight_and_exposed_headers(server):
    url, _ = server
    for path in CLIENT_ENDPOINTS:
        method = "GET" if path == "/oidc/userinfo" else "POST"
        ahead = wait_until(lambda p=path, m=method: (a := preflight(url, p, SPA, m)).ok and allowed(a, SPA) and a,
                           timeout=5, what=f"the preflight of {path}")
        assert {"POST"} <= {m.strip() for m in ahead.headers["Access-Control-Allow-Methods"].split(",")}
        asked = {h.strip().lower() for h in ahead.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "dpop", "content-type"} <= asked
        assert "Origin" in ahead.headers.get("Vary", "")
    refused = requests.post(url + "/oidc/token", data={"grant_type": "authorization_code", "code": "x"},
                            headers={"Origin": SPA}, timeout=10)     # an error answer is readable too
    assert refused.status_code in (400, 401) and allowed(refused, SPA)
    exposed = {h.strip().lower() for h in refused.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"dpop-nonce", "www-authenticate"} <= exposed
    unauthorized = requests.get(url + "/oidc/userinfo", headers={"Origin": SPA, "Authorization": "Bearer x"},
                                timeout=10)
    assert unauthorized.status_code == 401 and allowed(unauthorized, SPA)


def test_other_origins_and_a_confidential_clients_get_no_cors(server):
    url, _ = server
    # another spelling of the SPA's origin is sent by no page of it (a browser sends the serialized origin)
    for origin in (SERVER, "https://spa.example", "http://spa.example:8443", "https://evil.example", "null",
                   "https://SPA.example:8443", SPA + "/", "HTTPS://spa.example:8443"):
        for path in CLIENT_ENDPOINTS:
            assert "Access-Control-Allow-Origin" not in preflight(url, path, origin).headers, (origin, path)
        answer = requests.post(url + "/oidc/revoke", data={"token": "x"}, headers={"Origin": origin}, timeout=10)
        assert "Access-Control-Allow-Origin" not in answer.headers, origin


def test_a_web_origin_given_by_the_admin_api_is_answered_and_taken_back(server):
    url, ctx = server
    admin = operator(url, ctx, Role.ADMIN)
    added = admin.request("POST", "/admin/apps", json={
        "name": "Docs SPA", "public": True, "redirect_uris": [SPA + "/docs/cb"], "web_origins": [ELSEWHERE + "/"]})
    assert added.status_code == 201, added.text
    assert added.json()["web_origins"] == [ELSEWHERE]
    client_id = added.json()["client_id"]
    wait_until(lambda: allowed(preflight(url, "/oidc/token", ELSEWHERE), ELSEWHERE), timeout=30,
               what="the new web origin's CORS")
    bad = admin.request("PATCH", f"/admin/apps/{client_id}", json={"web_origins": ["https://a.example/path"]})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_field"
    changed = admin.request("PATCH", f"/admin/apps/{client_id}", json={"web_origins": []})
    assert changed.status_code == 200 and changed.json()["web_origins"] == []
    wait_until(lambda: not allowed(preflight(url, "/oidc/token", ELSEWHERE), ELSEWHERE), timeout=30,
               what="the web origin taken back")
    confidential = admin.request("POST", "/admin/apps", json={
        "name": "Server 2", "redirect_uris": [SERVER + "/cb2"], "web_origins": [SERVER]})
    assert confidential.status_code == 400 and confidential.json()["code"] == "invalid_field"


def test_an_origin_taken_away_stops_within_the_bound_while_the_registry_copy_is_behind(server):
    """The copy's watching thread is stopped here (a busy host, a slow DynamoDB): the origins of an app
    removed still stop being answered within FRESH_SECONDS of the change, checked by the request itself."""
    url, ctx = server
    gone = "https://gone.example"
    added = apps.add_app(ctx, name="Gone", push_url=None, oidc=OidcClient(redirect_uris=(gone + "/cb",), public=True))
    wait_until(lambda: allowed(preflight(url, "/oidc/token", gone), gone), timeout=30, what="the new SPA's CORS")
    registry = app_registry(ctx)
    registry.stop()
    watching = registry._thread
    assert watching is not None
    watching.join(timeout=10)
    try:
        apps.remove_app(ctx, client_id=added.app.client_id)
        time.sleep(FRESH_SECONDS)
        assert not allowed(preflight(url, "/oidc/token", gone), gone)
        assert allowed(preflight(url, "/oidc/token", SPA), SPA)
    finally:
        ctx.slots.take(APP_REGISTRY)  # a new copy, watched again, for the module's other tests
