"""An app's request-object options (RFC 9101, OIDC Dynamic Registration §2; SPEC §14) as an operator sets
them: `citylogin apps add` and `apps update` flags, `apps show`, and the same members in the admin API.
Options that contradict each other (signed objects required and unsigned ones allowed, an algorithm or
"signed only" without keys to check them) and a request_uri that is not one are refused, nothing written."""
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
from tests.support.request_objects import new_app_keys

# Real servers on sockets, one module's many requests: the slow tier (the rules' unit tests are fast).
pytestmark = pytest.mark.slow

REDIRECT = "https://app.example/callback"
REQUEST_URI = "https://app.example/requests/1"


@pytest.fixture
def cli(make_server, base_config, tmp_path):
    """`citylogin ...` on the tables of a server of its own (the key ring sealed under its key), and a file
    holding an app's public keys."""
    kek, config = base64.b64encode(os.urandom(32)).decode(), {**base_config, "table_prefix": unique_name("ro") + "_"}
    url, ctx = make_server(key_encryption_key=kek, table_prefix=config["table_prefix"])
    env = cli_environment(config, kek=kek, data_dir=str(tmp_path))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(new_app_keys().public_jwks())

    def run(*args: str):
        return CliRunner().invoke(main, list(args), env=env)
    return run, str(jwks), ctx


def test_apps_add_and_update_set_the_request_object_options(cli):
    run, jwks, ctx = cli
    added = run("apps", "add", "Signer", "--redirect-uri", REDIRECT, "--jwks", jwks, "--request-uri", REQUEST_URI,
                "--request-object-signing-alg", "PS256", "--require-signed-request-object", "--json")
    assert added.exit_code == 0, added.output
    shown = json.loads(added.stdout)
    assert shown["request_uris"] == [REQUEST_URI] and shown["request_object_signing_alg"] == "PS256"
    assert shown["require_signed_request_object"] is True and shown["allow_unsigned_request_objects"] is False
    client_id = shown["client_id"]
    text = run("apps", "show", client_id)
    assert "request_object_signing_alg PS256" in " ".join(text.output.split()) and REQUEST_URI in text.output

    updated = run("apps", "update", client_id, "--no-require-signed-request-object", "--request-object-signing-alg",
                  "any", "--no-request-uris", "--json")
    assert updated.exit_code == 0, updated.output
    oidc = apps.show_app(ctx, client_id=client_id).oidc()
    assert (oidc.require_signed_request_object, oidc.request_object_signing_alg, oidc.request_uris) == (False, None, ())
    assert oidc.jwks and oidc.redirect_uris == (REDIRECT,)                       # the rest stays
    allowed = run("apps", "update", client_id, "--allow-unsigned-request-objects")
    assert allowed.exit_code == 0 and apps.show_app(ctx, client_id=client_id).oidc().allow_unsigned_request_objects


@pytest.mark.parametrize("options, why", [
    (("--require-signed-request-object", "--allow-unsigned-request-objects"), "can not allow unsigned"),
    (("--require-signed-request-object", "--request-object-signing-alg", "none"), "can not allow unsigned"),
    (("--request-object-signing-alg", "ES256", "--allow-unsigned-request-objects", "--jwks", "JWKS"), "alg alone"),
    (("--request-object-signing-alg", "RS256"), "register jwks"),
    (("--require-signed-request-object",), "register jwks"),
    (("--request-uri", "http://app.example/r"), "https"),
    (("--request-uri", "https://u:p@app.example/r"), "userinfo"),
    (("--request-object-signing-alg", "HS256"), "HS256"),
])
def test_apps_add_refuses_options_that_contradict_or_do_not_parse(cli, options, why):
    run, jwks, ctx = cli
    before = len(apps.list_apps(ctx))
    refused = run("apps", "add", "Signer", "--redirect-uri", REDIRECT,
                  *[jwks if option == "JWKS" else option for option in options])
    assert refused.exit_code != 0 and why in refused.output and "Traceback" not in refused.output, refused.output
    assert len(apps.list_apps(ctx)) == before


def test_the_request_object_options_need_a_redirect_uri(cli):
    run, _, _ = cli
    refused = run("apps", "add", "Screen", "--device-flow", "--allow-unsigned-request-objects")
    assert refused.exit_code != 0 and "--redirect-uri" in refused.output


def test_the_admin_api_sets_and_changes_them(make_server):
    url, ctx = make_server()
    admin = operator(url, ctx, Role.ADMIN)
    keys = json.loads(new_app_keys().public_jwks())
    body = {"name": "Signer", "redirect_uris": [REDIRECT], "jwks": keys, "request_uris": [REQUEST_URI],
            "request_object_signing_alg": "EdDSA", "require_signed_request_object": True}
    added = admin.request("POST", "/admin/apps", json=body)
    assert added.status_code == 201, added.text
    app = added.json()
    assert app["request_uris"] == [REQUEST_URI] and app["request_object_signing_alg"] == "EdDSA"
    client_id = app["client_id"]
    for change, field in (({"allow_unsigned_request_objects": True}, "require_signed_request_object"),
                          ({"request_uris": ["http://app.example/r"]}, "request_uris"),
                          ({"request_object_signing_alg": "HS256"}, "request_object_signing_alg"),
                          ({"require_signed_request_object": "yes"}, "require_signed_request_object"),
                          ({"jwks": None}, "request_object_signing_alg")):
        refused = admin.request("PATCH", f"/admin/apps/{client_id}", json=change)
        assert problem(refused)[:2] == (400, "invalid_field") and refused.json()["field"].startswith(field), \
            (change, refused.text)
    assert apps.show_app(ctx, client_id=client_id).oidc().request_object_signing_alg == "EdDSA"   # nothing written
    changed = admin.request("PATCH", f"/admin/apps/{client_id}", json={
        "require_signed_request_object": False, "request_object_signing_alg": None,
        "allow_unsigned_request_objects": True, "request_uris": []})
    assert changed.status_code == 200, changed.text
    oidc = apps.show_app(ctx, client_id=client_id).oidc()
    assert oidc.allow_unsigned_request_objects and not oidc.require_signed_request_object and not oidc.request_uris
    assert oidc.request_object_signing_alg is None and oidc.jwks
