"""The admin API's apps (SPEC §15): an admin registers, changes, rotates and removes apps and OpenID
Connect clients; automation signs in with an app credential by the client-credentials grant
(Authlib's own OAuth 2 client, unmodified) and acts with the app's role, read on every call."""
from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc.jwk import ECKey

from accounts.models import Role
from relying_parties import service as apps
from relying_parties.models import OidcClient
from tests.support.fixtures import problem
from tests.support.operators import operator, person

KEYS = json.dumps({"keys": [ECKey.generate_key("P-256", parameters={"kid": "k1"}).as_dict(private=False)]})


@pytest.fixture
def server(make_server):
    return make_server()


def test_an_admin_registers_changes_rotates_and_removes_an_oidc_client(server):
    url, ctx = server
    admin = operator(url, ctx, Role.ADMIN)
    support = operator(url, ctx, Role.SUPPORT)
    body = {"name": "Notes", "redirect_uris": ["https://notes.example/callback"], "consent": True,
            "reason": "ticket 40: the notes team"}
    assert problem(support.request("POST", "/admin/apps", json=body))[:2] == (403, "forbidden")
    assert problem(support.request("GET", "/admin/apps"))[:2] == (403, "forbidden")
    added = admin.request("POST", "/admin/apps", json=body)
    assert added.status_code == 201, added.text
    app = added.json()
    assert app["client_secret"] and app["redirect_uris"] == body["redirect_uris"] and app["consent"] is True
    client_id = app["client_id"]
    listed = admin.get_json("/admin/apps")["apps"]
    assert [a["client_id"] for a in listed if a["client_id"] == client_id] == [client_id]
    shown = json.dumps(listed)
    assert "secret_digest" not in shown and apps.show_app(ctx, client_id=client_id).secret_digest not in shown
    assert apps.authenticate_app(ctx, _basic(client_id, app["client_secret"])).client_id == client_id

    bad = admin.request("PATCH", f"/admin/apps/{client_id}", json={"redirect_uris": ["http://evil.example/cb"]})
    assert problem(bad)[:2] == (400, "invalid_field")
    changed = admin.request("PATCH", f"/admin/apps/{client_id}",
                            json={"redirect_uris": ["https://notes.example/cb2"], "name": "Notes 2"})
    assert changed.status_code == 200 and changed.json()["redirect_uris"] == ["https://notes.example/cb2"]
    assert changed.json()["name"] == "Notes 2" and changed.json()["consent"] is True  # the rest stays
    # whether a client is public can not change, and a member the change does not know changes nothing:
    # both 400 naming the member, where they once answered 200 having ignored it
    for member, value in (("public", True), ("public", False), ("redirect_uri", "https://notes.example/x")):
        refused = admin.request("PATCH", f"/admin/apps/{client_id}", json={"name": "Notes 3", member: value})
        assert problem(refused)[:2] == (400, "invalid_field") and refused.json()["field"] == member, refused.text
    assert "can not change" in admin.request("PATCH", f"/admin/apps/{client_id}", json={"public": True},
                                             headers={"Accept-Language": "en"}).json()["detail"]
    assert admin.get_json(f"/admin/apps/{client_id}")["name"] == "Notes 2"

    rotated = admin.request("POST", f"/admin/apps/{client_id}/rotate-secret", json={"reason": "leaked in a log"})
    assert rotated.status_code == 200 and rotated.json()["client_secret"] != app["client_secret"]
    assert admin.request("DELETE", f"/admin/apps/{client_id}").status_code == 204
    assert problem(admin.request("GET", f"/admin/apps/{client_id}"))[:2] == (404, "app_not_found")


def test_the_admin_api_and_console_name_each_apps_pkce_rule(make_server):
    """require_pkce through the admin API (add and change), and `pkce`: the rule the app signs in under."""
    url, ctx = make_server()
    admin = operator(url, ctx, Role.ADMIN)
    body = {"name": "Notes", "redirect_uris": ["https://notes.example/callback"]}
    plain = admin.request("POST", "/admin/apps", json=body).json()
    strict = admin.request("POST", "/admin/apps", json={**body, "require_pkce": True}).json()
    public = admin.request("POST", "/admin/apps", json={**body, "public": True}).json()
    assert [(a["require_pkce"], a["pkce"]) for a in (plain, strict, public)] == [
        (False, "when_sent"), (True, "require_pkce"), (False, "public_client")]
    changed = admin.request("PATCH", f"/admin/apps/{plain['client_id']}", json={"require_pkce": True})
    assert changed.status_code == 200 and changed.json()["pkce"] == "require_pkce"
    assert changed.json()["redirect_uris"] == body["redirect_uris"]  # the rest stays
    assert admin.get_json(f"/admin/apps/{plain['client_id']}")["require_pkce"] is True
    assert problem(admin.request("PATCH", f"/admin/apps/{plain['client_id']}", json={"require_pkce": None}))[:2] \
        == (400, "invalid_field")
    assert problem(admin.request("PATCH", f"/admin/apps/{plain['client_id']}", json={"require_pkce": "yes"}))[:2] \
        == (400, "invalid_field")

    url, ctx = make_server(oidc_require_pkce=True)
    admin = operator(url, ctx, Role.ADMIN)
    assert admin.request("POST", "/admin/apps", json=body).json()["pkce"] == "operator_setting"


def test_the_admin_api_allows_an_app_the_device_flow_and_names_its_screens_class(server):
    """device_flow and device_class (RFC 8628, SPEC §14): added without a redirect URI, changed alone (the
    rest stays), stored as the registry reads it; anything but a bool or one of the five classes is refused."""
    url, ctx = server
    admin = operator(url, ctx, Role.ADMIN)
    tv = admin.request("POST", "/admin/apps", json={"name": "TV", "device_flow": True})
    assert tv.status_code == 201, tv.text
    assert (tv.json()["device_flow"], tv.json()["device_class"], tv.json()["redirect_uris"]) == (True, "tv", [])
    cli = admin.request("POST", "/admin/apps", json={"name": "CLI", "public": True, "device_flow": True,
                                                     "device_class": "desktop"}).json()
    assert (cli["device_flow"], cli["device_class"], cli["public"], cli.get("client_secret")) == \
        (True, "desktop", True, "")
    assert apps.show_app(ctx, client_id=cli["client_id"]).oidc().device_class == "desktop"
    plain = admin.request("POST", "/admin/apps", json={"name": "Notes", "consent": True,
                                                       "redirect_uris": ["https://notes.example/cb"]}).json()
    assert (plain["device_flow"], plain["device_class"]) == (False, "tv")

    client_id = plain["client_id"]
    changed = admin.request("PATCH", f"/admin/apps/{client_id}", json={"device_flow": True})
    assert changed.status_code == 200, changed.text
    assert changed.json()["device_flow"] is True and changed.json()["consent"] is True  # the rest stays
    changed = admin.request("PATCH", f"/admin/apps/{client_id}", json={"device_class": "mobile"})
    assert (changed.json()["device_flow"], changed.json()["device_class"]) == (True, "mobile")
    assert changed.json()["redirect_uris"] == ["https://notes.example/cb"]
    stored = apps.show_app(ctx, client_id=client_id)
    assert (stored.device_flow, stored.device_class, stored.oidc().device_flow) == (True, "mobile", True)
    back = admin.request("PATCH", f"/admin/apps/{client_id}", json={"device_flow": False, "device_class": "tv"})
    assert (back.json()["device_flow"], back.json()["device_class"]) == (False, "tv")
    stored = apps.show_app(ctx, client_id=client_id)
    assert (stored.device_flow, stored.device_class) == (None, None)  # at their defaults, left out as before

    for member, value in (("device_flow", "yes"), ("device_flow", 1), ("device_flow", None),
                          ("device_class", "watch"), ("device_class", "TV"), ("device_class", None),
                          ("device_class", ["tv"])):
        refused = admin.request("PATCH", f"/admin/apps/{client_id}", json={member: value})
        assert problem(refused)[:2] == (400, "invalid_field") and refused.json()["field"] == member, refused.text
        refused = admin.request("POST", "/admin/apps", json={"name": "Bad", "device_flow": True, member: value})
        assert problem(refused)[:2] == (400, "invalid_field"), refused.text
    assert admin.get_json(f"/admin/apps/{client_id}")["device_class"] == "tv"
    assert "Bad" not in [a["name"] for a in admin.get_json("/admin/apps")["apps"]]  # nothing half-written


def _basic(client_id: str, secret: str) -> str:
    import base64
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _automation(url: str, client_id: str, secret: str) -> OAuth2Session:
    session = OAuth2Session(client_id, secret, scope="admin", token_endpoint_auth_method="client_secret_basic")
    session.fetch_token(url + "/oidc/token", grant_type="client_credentials")
    return session


def test_automation_acts_with_its_apps_role_read_on_every_call(server, caplog):
    url, ctx = server
    admin = operator(url, ctx, Role.ADMIN)
    robot = apps.add_app(ctx, name="support robot", push_url=None, admin_role="support")
    session = _automation(url, robot.app.client_id, robot.client_secret)
    assert session.token["token_type"].lower() == "bearer" and session.token["scope"] == "admin"
    assert "refresh_token" not in session.token
    target = person(url)
    found = session.get(url + "/admin/accounts", params={"username": target.key_file.username}, timeout=10)
    assert found.status_code == 200 and found.json()["accounts"][0]["user_uuid"] == target.key_file.user_uuid
    with caplog.at_level(logging.INFO, logger="citylogin.audit"):
        locked = session.post(url + f"/admin/accounts/{target.key_file.user_uuid}/revoke-sessions",
                              json={"reason": "nightly clean-up"}, timeout=10)
    assert locked.status_code == 200, locked.text  # an app's credential has no sign-in to age
    assert problem(target.request("GET", "/session/me")) == (401, "session_revoked", "admin")
    line = next(r.audit for r in caplog.records if getattr(r, "audit", {}).get("event") == "operator_action")
    assert line["operator_client"] == robot.app.client_id and line["operator_role"] == "support"
    assert problem(session.get(url + "/admin/apps", timeout=10))[:2] == (403, "forbidden")  # admin only
    # the token is for the admin API alone
    assert requests.get(url + "/session/me", headers={"Authorization": f"Bearer {session.token['access_token']}"},
                        timeout=10).status_code == 401
    assert requests.get(url + "/oidc/userinfo", headers={"Authorization": f"Bearer {session.token['access_token']}"},
                        timeout=10).status_code == 401
    # the role is taken away through the API: the very next call is refused
    assert admin.request("PATCH", f"/admin/apps/{robot.app.client_id}", json={"admin_role": None}).status_code == 200
    assert problem(session.get(url + "/admin/accounts", params={"username": "x"}, timeout=10))[:2] == \
        (403, "forbidden")
    assert admin.request("DELETE", f"/admin/apps/{robot.app.client_id}").status_code == 204
    assert session.get(url + "/admin/accounts", params={"username": "x"}, timeout=10).status_code == 401


def test_the_grant_is_for_admin_apps_and_the_admin_scope_alone(server):
    url, ctx = server
    plain = apps.add_app(ctx, name="plain", push_url=None)
    refused = requests.post(url + "/oidc/token", data={"grant_type": "client_credentials", "scope": "admin"},
                            auth=(plain.app.client_id, plain.client_secret), timeout=10)
    assert refused.status_code in (400, 401) and refused.json()["error"] in ("unauthorized_client", "invalid_client")
    robot = apps.add_app(ctx, name="robot", push_url=None, admin_role="viewer")
    for scope in ("openid", "", "admin openid"):
        asked = requests.post(url + "/oidc/token", data={"grant_type": "client_credentials", "scope": scope},
                              auth=(robot.app.client_id, robot.client_secret), timeout=10)
        assert asked.status_code == 400 and asked.json()["error"] == "invalid_scope", scope
    wrong = requests.post(url + "/oidc/token", data={"grant_type": "client_credentials", "scope": "admin"},
                          auth=(robot.app.client_id, "wrong secret"), timeout=10)
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    metadata = requests.get(url + "/.well-known/openid-configuration", timeout=10).json()
    assert "client_credentials" in metadata["grant_types_supported"]


def test_a_change_of_some_oidc_fields_keeps_the_apps_registration_metadata(server):
    """A PATCH names a few fields; what the app registered by itself (RFC 7591) or was given by a profile
    or its request-object rules stays: it was once rebuilt from the patchable fields alone."""
    url, ctx = server
    admin = operator(url, ctx, Role.ADMIN)
    oidc = OidcClient(redirect_uris=("https://notes.example/cb",), logo_uri="https://notes.example/logo.png",
                      contacts=("ops@notes.example",), request_uris=("https://notes.example/request",),
                      require_signed_request_object=True, profile="fapi2", userinfo_signed_response_alg="ES256",
                      jwks=KEYS, id_token_alg="ES256")   # what the profile requires (relying_parties.profiles)
    client_id = apps.add_app(ctx, name="Notes", push_url=None, oidc=oidc).app.client_id
    changed = admin.request("PATCH", f"/admin/apps/{client_id}", json={"redirect_uris": ["https://notes.example/b"]})
    assert changed.status_code == 200, changed.text
    kept = apps.show_app(ctx, client_id=client_id).oidc()
    assert kept.redirect_uris == ("https://notes.example/b",)
    assert kept == dataclasses.replace(oidc, redirect_uris=("https://notes.example/b",))


def test_an_admin_holds_an_app_to_the_fapi2_profile_only_when_it_can_comply(server):
    """`profile` through the admin API (add, change, null removes it): a registration the FAPI 2.0 Security
    Profile cannot hold is 400 invalid_field naming the member to change, and nothing is written."""
    url, ctx = server
    admin = operator(url, ctx, Role.ADMIN)
    body = {"name": "Bank", "redirect_uris": ["https://bank.example/cb"], "jwks": json.loads(KEYS),
            "id_token_alg": "EdDSA", "profile": "fapi2"}
    added = admin.request("POST", "/admin/apps", json=body)
    assert added.status_code == 201, added.text
    app = added.json()
    assert (app["profile"], app["pkce"], app["token_endpoint_auth_method"]) == \
        ("fapi2", "fapi2_profile", "private_key_jwt")
    path, before = f"/admin/apps/{app['client_id']}", apps.show_app(ctx, client_id=app["client_id"])
    for change, field in (({"redirect_uris": ["http://localhost:3000/cb"]}, "redirect_uris"),
                          ({"jwks": None}, "jwks"), ({"id_token_alg": "RS256"}, "id_token_alg"),
                          ({"admin_role": "viewer"}, "admin_role"), ({"device_flow": True}, "device_flow")):
        refused = admin.request("PATCH", path, json=change)
        assert problem(refused)[:2] == (400, "invalid_field") and refused.json()["field"] == field, refused.text
    assert apps.show_app(ctx, client_id=app["client_id"]) == before        # nothing written
    assert problem(admin.request("POST", "/admin/apps", json={**body, "profile": "fapi1"}))[:2] == \
        (400, "invalid_field")
    refused = admin.request("POST", "/admin/apps", json={**body, "jwks": None})
    assert problem(refused)[:2] == (400, "invalid_field") and refused.json()["field"] == "jwks"

    removed = admin.request("PATCH", path, json={"profile": None, "id_token_alg": "RS256"})
    assert removed.status_code == 200 and removed.json()["profile"] is None and removed.json()["pkce"] == "when_sent"
    assert admin.request("PATCH", path, json={"profile": "fapi2"}).json()["field"] == "id_token_alg"
