"""The registration metadata of RFC 7591 (SPEC §14) through the admin API and `citylogin apps add`: the members
an app that registers itself sends (jwks_uri, the pages' URLs, contacts, signed userinfo, the auth method, the
grant types), checked by the same rules, shown under their standard names, changed by PATCH."""
from __future__ import annotations

import base64
import json
import os

import pytest
from click.testing import CliRunner

from accounts.models import Role
from relying_parties import service as apps
from citylogin.cli.main import main
from tests.conftest import unique_name
from tests.support.fixtures import cli_environment, problem
from tests.support.operators import operator

# Real servers on sockets, one module's many requests: the slow tier (the rules' unit tests are fast).
pytestmark = pytest.mark.slow

REDIRECT = "https://notes.example/callback"
METADATA = {"jwks_uri": "https://notes.example/jwks.json", "logo_uri": "https://notes.example/logo.png",
            "client_uri": "https://notes.example/", "policy_uri": "https://notes.example/privacy",
            "tos_uri": "https://notes.example/terms", "contacts": ["ops@notes.example"],
            "userinfo_signed_response_alg": "ES256", "token_endpoint_auth_method": "private_key_jwt",
            "grant_types": ["authorization_code", "refresh_token"]}


def test_an_admin_adds_and_changes_an_apps_registration_metadata(make_server):
    url, ctx = make_server()
    admin = operator(url, ctx, Role.ADMIN)
    added = admin.request("POST", "/admin/apps", json={"name": "Notes", "redirect_uris": [REDIRECT], **METADATA})
    assert added.status_code == 201, added.text
    shown = added.json()
    assert {name: shown[name] for name in METADATA} == METADATA
    oidc = apps.show_app(ctx, client_id=shown["client_id"]).oidc()
    assert (oidc.registered_auth_method, oidc.grant_types, oidc.contacts) == (
        "private_key_jwt", ("authorization_code", "refresh_token"), ("ops@notes.example",))

    client_id = shown["client_id"]
    changed = admin.request("PATCH", f"/admin/apps/{client_id}", json={"logo_uri": None, "grant_types": [],
                                                                      "token_endpoint_auth_method": None})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["logo_uri"], changed.json()["grant_types"]) == (None, [])
    assert changed.json()["token_endpoint_auth_method"] == "private_key_jwt"  # derived again: it has keys
    assert changed.json()["policy_uri"] == METADATA["policy_uri"]            # the rest stays


@pytest.mark.parametrize(("change", "field"), [
    ({"logo_uri": "javascript:alert(1)"}, "logo_uri"),
    ({"logo_uri": "https://bank.example@evil.example/logo.png"}, "logo_uri"),
    ({"jwks_uri": "http://keys.example/jwks"}, "jwks_uri"),
    ({"userinfo_signed_response_alg": "none"}, "userinfo_signed_response_alg"),
    ({"token_endpoint_auth_method": "client_secret_jwt"}, "token_endpoint_auth_method"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method"),
    ({"token_endpoint_auth_method": "none"}, "token_endpoint_auth_method"),
    ({"grant_types": ["implicit"]}, "grant_types.0"),
    ({"contacts": ["x"] * 11}, "contacts"),
    ({"jwks_uri": "https://notes.example/jwks", "jwks": {"keys": [{"kty": "EC", "crv": "P-256",
      "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}},
     "jwks_uri"),
])
def test_a_refused_member_changes_nothing(make_server, change, field):
    url, ctx = make_server()
    admin = operator(url, ctx, Role.ADMIN)
    client_id = admin.request("POST", "/admin/apps", json={"name": "Notes", "redirect_uris": [REDIRECT]}).json()[
        "client_id"]
    before = apps.show_app(ctx, client_id=client_id)
    refused = admin.request("PATCH", f"/admin/apps/{client_id}", json=change)
    assert problem(refused)[:2] == (400, "invalid_field") and refused.json()["field"] == field, refused.text
    assert apps.show_app(ctx, client_id=client_id) == before


def test_apps_add_takes_the_registration_metadata(make_server, base_config, tmp_path):
    # Own tables: the module's key ring is sealed under the data directory's key-encryption key.
    kek, config = base64.b64encode(os.urandom(32)).decode(), {**base_config, "table_prefix": unique_name("meta") + "_"}
    make_server(key_encryption_key=kek, table_prefix=config["table_prefix"])
    env = cli_environment(config, kek=kek, data_dir=str(tmp_path))

    def add(*options: str):
        return CliRunner().invoke(main, ["apps", "add", "Notes", "--redirect-uri", REDIRECT, "--json", *options],
                                  env=env)

    added = add("--jwks-uri", METADATA["jwks_uri"], "--logo-uri", METADATA["logo_uri"], "--policy-uri",
                METADATA["policy_uri"], "--tos-uri", METADATA["tos_uri"], "--client-uri", METADATA["client_uri"],
                "--contact", "ops@notes.example", "--userinfo-alg", "ES256",
                "--token-endpoint-auth-method", "private_key_jwt", "--grant-type", "authorization_code",
                "--grant-type", "refresh_token")
    assert added.exit_code == 0, added.output
    assert {name: json.loads(added.stdout)[name] for name in METADATA} == METADATA
    for options, why in ((("--logo-uri", "javascript:alert(1)"), "--logo-uri"),
                         (("--jwks-uri", "http://keys.example/jwks"), "--jwks-uri"),
                         (("--token-endpoint-auth-method", "private_key_jwt"), "private_key_jwt needs"),
                         (("--public", "--token-endpoint-auth-method", "client_secret_post"), "public client")):
        refused = add(*options)
        assert refused.exit_code != 0 and why in refused.output and "Traceback" not in refused.output, refused.output
