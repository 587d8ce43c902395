"""The admin API's upstream providers (SPEC §16): an admin adds, lists, shows, changes and removes them; a
session without the admin role is 403; a bad body is 400 naming the field; the secret (Apple: the private key)
is in no answer and no log line, and each change is audited with the operator."""
from __future__ import annotations

import json
import logging
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from accounts.models import Role
from federation import providers
from tests.conftest import unique_name
from tests.support.fixtures import problem
from tests.support.operators import operator

SECRET = "idp-secret-" + os.urandom(8).hex()
PATH = "/admin/identity-providers"


@pytest.fixture
def server(make_server):
    return make_server(public_url="https://login.example")


def _name() -> str:
    return unique_name("idp")[:20]


def test_an_admin_adds_lists_shows_changes_and_removes_a_provider(server, caplog):
    caplog.set_level(logging.INFO)
    url, ctx = server
    admin, support = operator(url, ctx, Role.ADMIN), operator(url, ctx, Role.SUPPORT)
    name = _name()
    body = {"name": name, "preset": "google", "client_id": "web.apps.example", "client_secret": SECRET,
            "reason": "ticket 84"}
    for method, path, sent in (("POST", PATH, body), ("GET", PATH, None), ("GET", f"{PATH}/{name}", None),
                               ("PATCH", f"{PATH}/{name}", {"signup": "deny"}), ("DELETE", f"{PATH}/{name}", None)):
        assert problem(support.request(method, path, json=sent))[:2] == (403, "forbidden")
    added = admin.request("POST", PATH, json=body)
    assert added.status_code == 201, added.text
    view = added.json()
    assert (view["name"], view["issuer"], view["display_name"], view["client_secret"], view["redirect_uri"]) == (
        name, "https://accounts.google.com", "Google", "set", f"https://login.example/federation/{name}/callback")
    assert problem(admin.request("POST", PATH, json=body))[:2] == (409, "idp_exists")
    listed = admin.get_json(PATH)["providers"]
    assert [p["name"] for p in listed if p["name"] == name] == [name]
    assert admin.get_json(f"{PATH}/{name}")["client_id"] == "web.apps.example"
    changed = admin.request("PATCH", f"{PATH}/{name}", json={"signup": "deny", "enabled": False,
                                                              "client_secret": SECRET + "-2"})
    assert changed.status_code == 200 and (changed.json()["signup"], changed.json()["enabled"]) == ("deny", False)
    assert providers.client_secret(ctx, providers.get_provider(ctx, name, include_disabled=True)) == SECRET + "-2"
    assert admin.request("DELETE", f"{PATH}/{name}", json={"reason": "gone"}).status_code == 204
    for method in ("GET", "PATCH", "DELETE"):
        assert problem(admin.request(method, f"{PATH}/{name}", json={"signup": "allow"}))[:2] == (404, "idp_not_found")
    answers = json.dumps([view, listed, changed.json()])
    assert SECRET not in answers and SECRET not in caplog.text
    actions = [json.loads(r.getMessage()) for r in caplog.records if r.name == "citylogin.audit"]
    assert [a["action"] for a in actions if a.get("provider") == name and a["event"] == "operator_action"] == [
        "idp_add", "idp_change", "idp_remove"]
    assert {a["event"] for a in actions if a.get("provider") == name} >= {"idp_added", "idp_updated", "idp_removed"}


def test_an_apple_provider_takes_the_key_and_answers_only_that_it_is_set(server, caplog):
    caplog.set_level(logging.INFO)
    url, ctx = server
    admin = operator(url, ctx, Role.ADMIN)
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    name = _name()
    added = admin.request("POST", PATH, json={"name": name, "preset": "apple", "client_id": "com.example.web",
                                              "apple_private_key": key, "apple_team_id": "TEAM123456",
                                              "apple_key_id": "KEY1234567", "display_name": "Apple ID"})
    assert added.status_code == 201, added.text
    assert (added.json()["apple_private_key"], added.json()["display_name"], added.json()["scope"]) == (
        "set", "Apple ID", "openid email name")
    assert "client_secret" not in added.json()
    secret = providers.client_secret(ctx, providers.get_provider(ctx, name))
    assert key.split("\n")[1] not in added.text + caplog.text and secret not in caplog.text


@pytest.mark.parametrize("body, field", [
    ({"name": "Bad Name"}, "name"),
    ({"issuer": "http://idp.example"}, "issuer"),    # http only where private addresses may be fetched
    ({"issuer": "https://idp.example#x"}, "issuer"),
    ({"scope": "email"}, "scope"),
    ({"signup": "sometimes"}, "signup"),
    ({"preset": "myspace"}, "preset"),
    ({"enabled": "yes"}, "enabled"),
    ({"client_secret": ""}, "client_secret"),
    ({"clientsecret": "x"}, "clientsecret"),          # a misspelt member is refused, not ignored
    ({"apple_team_id": "T"}, "apple_private_key"),
    ({"display_name": ""}, "display_name"),
])
def test_a_bad_body_is_400_naming_the_field(make_server, body, field):
    url, ctx = make_server(oidc_fetch_private_addresses=False)
    admin = operator(url, ctx, Role.ADMIN)
    good = {"name": _name(), "issuer": "https://idp.example", "client_id": "a", "client_secret": SECRET}
    refused = admin.request("POST", PATH, json={**good, **body})
    status, code, _ = problem(refused)
    assert (status, code) == (400, "invalid_field") and refused.json().get("field") == field, refused.text
    assert SECRET not in refused.text
