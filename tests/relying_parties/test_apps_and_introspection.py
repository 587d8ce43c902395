"""Apps (SPEC §11): `citylogin apps` and their Basic credentials, and the profile an app is held to
(`--profile fapi2`: only an app that can comply takes it); RFC 7662 introspection; forward
authentication at GET /session/check."""
from __future__ import annotations

import base64
import json
import os
import time

import pytest
import requests
from click.testing import CliRunner
from joserfc.jwk import ECKey

from relying_parties import service as apps
from citylogin.cli.main import main
from citylogin.client.api import Client
from common.crypto.dpop import key_thumbprint
from tests.support.fixtures import cli_environment, problem
from tests.support.live import PASSWORD, add_device, register_device


@pytest.fixture(scope="module")
def kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def start(make_server, base_config, kek, tmp_path):
    """start(**settings) -> (url, ctx, env): an app, and the CLI environment on the same tables and ring."""
    def run(**settings):
        url, ctx = make_server(key_encryption_key=kek, **settings)
        return url, ctx, cli_environment(base_config, kek=kek, data_dir=str(tmp_path))
    return run


def cli(env: dict, *args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(main, ["apps", *args], env=env)
    assert (result.exit_code == 0) is ok, result.output
    assert "Traceback" not in result.output
    return result.output


def introspect(url: str, credentials: tuple[str, str] | None, token: str | None, **form) -> requests.Response:
    data = {**({"token": token} if token is not None else {}), **form}
    return requests.post(url + "/session/introspect", data=data, auth=credentials, timeout=10)


def test_apps_cli_adds_lists_shows_rotates_and_removes_an_app(start):
    url, ctx, env = start()
    added = json.loads(cli(env, "add", "Notes", "--push-url", "https://notes.example/ssf", "--json"))
    client_id, secret = added["client_id"], added["client_secret"]
    assert added["name"] == "Notes" and added["push_url"] == "https://notes.example/ssf"
    stored = apps.app_store(ctx).get(client_id)
    assert stored is not None and secret not in json.dumps(stored.__dict__)  # only its digest is kept
    listed = json.loads(cli(env, "list", "--json"))
    assert [a["client_id"] for a in listed if a["client_id"] == client_id] == [client_id]
    shown = cli(env, "show", client_id)
    assert not any(line.startswith("client_secret") for line in shown.splitlines()) and secret not in shown
    assert introspect(url, (client_id, secret), "x").status_code == 200

    rotated = json.loads(cli(env, "rotate-secret", client_id, "--json"))
    assert rotated["client_id"] == client_id and rotated["client_secret"] != secret
    time.sleep(apps.CACHE_SECONDS + 0.2)  # another host's cache of the app
    assert introspect(url, (client_id, secret), "x").status_code == 401
    assert introspect(url, (client_id, rotated["client_secret"]), "x").status_code == 200

    assert f"removed app {client_id}" in cli(env, "remove", client_id)
    time.sleep(apps.CACHE_SECONDS + 0.2)
    assert introspect(url, (client_id, rotated["client_secret"]), "x").status_code == 401
    assert "no app has this client_id" in cli(env, "show", client_id, ok=False).lower()
    assert "no app has this client_id" in cli(env, "remove", client_id, ok=False).lower()


def test_apps_show_says_which_pkce_rule_an_app_has(start):
    """SPEC §14: a public client, --require-pkce, the operator's setting, or "when the app sends one"."""
    _, _, env = start()
    redirect = ("--redirect-uri", "https://notes.example/callback")
    rules = {}
    for name, options in (("Public", ("--public",)), ("Strict", ("--require-pkce",)), ("Plain", ())):
        added = json.loads(cli(env, "add", name, *redirect, *options, "--json"))
        rules[name] = (added["client_id"], added["pkce"], added["require_pkce"])
    assert {name: rule[1:] for name, rule in rules.items()} == {
        "Public": ("public_client", False), "Strict": ("require_pkce", True), "Plain": ("when_sent", False)}
    shown = {name: line_of(cli(env, "show", rule[0]), "pkce") for name, rule in rules.items()}
    assert shown == {"Public": "pkce               required (a public client)",
                     "Strict": "pkce               required (--require-pkce)",
                     "Plain": "pkce               when the app sends a challenge (a confidential client)"}
    everyone = {**env, "CITYLOGIN_OIDC_REQUIRE_PKCE": "true"}
    assert json.loads(cli(everyone, "show", rules["Plain"][0], "--json"))["pkce"] == "operator_setting"
    assert line_of(cli(everyone, "show", rules["Plain"][0]), "pkce").endswith("required (CITYLOGIN_OIDC_REQUIRE_PKCE)")
    assert "--redirect-uri" in cli(env, "add", "No OIDC", "--require-pkce", ok=False)
    assert not any(line.startswith("pkce") for line in cli(env, "show", json.loads(
        cli(env, "add", "Events only", "--json"))["client_id"]).splitlines())  # it signs nobody in


def test_apps_add_allows_the_device_flow_without_a_redirect_uri(start):
    """--device-flow (RFC 8628): no --redirect-uri needed, --public allowed with it alone (a command line holds
    no secret), the screens' class tv unless --device-class; `show` prints both; the browser's options still
    need a redirect URI, and --device-class needs --device-flow."""
    _, ctx, env = start()
    tv = json.loads(cli(env, "add", "TV", "--device-flow", "--json"))
    assert (tv["device_flow"], tv["device_class"], tv["redirect_uris"], tv["client_secret"] != "") == \
        (True, "tv", [], True)
    command_line = cli(env, "add", "CLI", "--device-flow", "--public", "--device-class", "desktop")
    assert "no secret" in command_line and "client_secret" not in command_line
    cli_id = line_of(command_line, "client_id").split()[1]
    stored = apps.show_app(ctx, client_id=cli_id)
    assert (stored.public_client, stored.device_flow, stored.device_class) == (True, True, "desktop")
    shown = cli(env, "show", cli_id)
    assert (line_of(shown, "device_flow"), line_of(shown, "device_class")) == \
        ("device_flow        True", "device_class       desktop")
    assert not any(line.startswith("pkce") for line in shown.splitlines())  # no sign-in through the browser
    assert json.loads(cli(env, "show", tv["client_id"], "--json"))["device_class"] == "tv"
    plain = json.loads(cli(env, "add", "Plain", "--json"))
    assert (plain["device_flow"], line_of(cli(env, "show", plain["client_id"]), "device_class")) == \
        (False, "device_class       -")  # no screen counts under it
    both = json.loads(cli(env, "add", "Both", "--device-flow", "--device-class", "other", "--consent",
                          "--redirect-uri", "https://notes.example/callback", "--json"))
    assert (both["device_flow"], both["device_class"], both["consent"]) == (True, "other", True)

    for refused in (("--public",), ("--consent", "--device-flow"), ("--require-pkce", "--device-flow"),
                    ("--require-par", "--device-flow", "--public")):
        assert "--redirect-uri" in cli(env, "add", "No redirect", *refused, ok=False), refused
    assert "--device-flow" in cli(env, "add", "Class alone", "--device-class", "tv", ok=False)
    assert "tv" in cli(env, "add", "Watch", "--device-flow", "--device-class", "watch", ok=False)
    assert "--device-flow" in cli(env, "add", "--help")
    names = [app["name"] for app in json.loads(cli(env, "list", "--json"))]
    assert not {"No redirect", "Class alone", "Watch"} & set(names)


def line_of(output: str, label: str) -> str:
    return next(line for line in output.splitlines() if line.split(" ")[0] == label)


def test_apps_cli_refuses_bad_names_and_push_urls(start):
    _, _, env = start()
    for bad in ("ftp://x/y", "https://", "notes.example/ssf", "https://a/b#c"):
        assert "push-url" in cli(env, "add", "App", "--push-url", bad, ok=False).lower()
    assert "printable" in cli(env, "add", " ", ok=False)
    plain = cli(env, "add", "Plain")
    assert "client_id" in plain and "client_secret" in plain


def test_introspection_describes_a_live_token_and_nothing_once_it_ended(start):
    url, ctx, _ = start(max_concurrent_devices=1, concurrency_policy="force")
    credentials = apps.add_app(ctx, name="api", push_url=None)
    auth = (credentials.app.client_id, credentials.client_secret)
    first = register_device(url)
    first.login(PASSWORD)
    before = ctx.dynamodb.get_item(TableName=ctx.tables.sessions, Key={"session_id": {"S": first.session_id}})
    body = introspect(url, auth, first.access_token, token_type_hint="access_token").json()
    assert body["active"] is True and body["client_id"] == auth[0]
    # A bound token: the app is told the key (cnf) it must check the request's DPoP proof against.
    assert body["token_type"] == "DPoP"
    assert body["cnf"] == {"jkt": key_thumbprint(first.key_file.private_key().public_key())}
    assert body["sub"] == first.key_file.user_uuid and body["sid"] == first.session_id
    assert body["did"] == first.key_file.device_id
    assert {"iss", "aud", "jti", "iat", "exp"} <= body.keys()
    after = ctx.dynamodb.get_item(TableName=ctx.tables.sessions, Key={"session_id": {"S": first.session_id}})
    assert after["Item"]["last_seen_epoch"] == before["Item"]["last_seen_epoch"]  # an app's question is no activity

    second = add_device(ctx, first)
    second.login(PASSWORD)  # force: the first device is displaced
    assert introspect(url, auth, first.access_token).json() == {"active": False}
    assert introspect(url, auth, second.access_token).json()["active"] is True
    for junk in ("x", "a.b.c", first.access_token[:-4] + "AAAA", "é" * 10):
        assert introspect(url, auth, junk).json() == {"active": False}


def test_introspection_refuses_an_app_without_valid_credentials(start):
    url, ctx, _ = start()
    credentials = apps.add_app(ctx, name="api", push_url=None)
    client_id = credentials.app.client_id
    for auth in (None, (client_id, "wrong"), ("app_unknown", credentials.client_secret), ("", "")):
        response = introspect(url, auth, "token")
        assert response.status_code == 401, auth
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert response.json()["error"] == "invalid_client" and response.json()["code"] == "invalid_client"
    for header in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer x",
                   "Basic " + base64.b64encode(b"\xff\xfe:x").decode()):
        response = requests.post(url + "/session/introspect", data={"token": "t"}, headers={"Authorization": header},
                                 timeout=10)
        assert problem(response)[:2] == (401, "invalid_client"), header


def test_introspection_needs_its_token_field(start):
    url, ctx, _ = start()
    credentials = apps.add_app(ctx, name="api", push_url=None)
    auth = (credentials.app.client_id, credentials.client_secret)
    assert problem(introspect(url, auth, None))[:2] == (400, "missing_fields")
    assert problem(introspect(url, auth, "t" * 9000))[:2] == (400, "invalid_field")


def test_malformed_introspection_forms_are_refused_or_inactive_never_a_500(start):
    url, ctx, _ = start()
    credentials = apps.add_app(ctx, name="api", push_url=None)
    auth = (credentials.app.client_id, credentials.client_secret)
    for raw, kind in [(b"\xff\xfe", None), (b"token=%ZZ%", None), (b"token", None), (b"token=a&token=b", None),
                      (b"x" * 70000, None), (b'{"token": "x"}', "application/json"), (b"token=" + b"%00" * 10, None)]:
        headers = {"Content-Type": kind or "application/x-www-form-urlencoded"}
        response = requests.post(url + "/session/introspect", data=raw, auth=auth, headers=headers, timeout=10)
        assert response.status_code in (200, 400, 413), (raw[:20], response.status_code)
        if response.status_code == 200:
            assert response.json() == {"active": False}
        else:
            assert response.headers["Content-Type"] == "application/problem+json" and response.json()["code"]


def forwarded(device: Client, uri: str) -> dict[str, str]:
    """The headers a forward-auth proxy sends for the device's request GET https://app.example<uri>:
    the device's token and proof (over that request, without its query), and the request's name."""
    headers = device.auth_headers("GET", "https://app.example" + uri.partition("?")[0])
    return {**headers, "X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "app.example", "X-Forwarded-Uri": uri}


def test_check_names_the_caller_for_a_proxy_and_refuses_an_ended_session(start):
    url, ctx, _ = start()
    device = register_device(url)
    device.login(PASSWORD)
    response = requests.get(url + "/session/check", headers=forwarded(device, "/notes/1?x=y"), timeout=10)
    assert response.status_code == 204 and response.content == b""
    assert response.headers["X-Citylogin-User"] == device.key_file.user_uuid
    assert response.headers["X-Citylogin-Session"] == device.session_id
    assert response.headers["X-Citylogin-Device"] == device.key_file.device_id
    assert problem(requests.get(url + "/session/check", timeout=10))[:2] == (401, "invalid_token")
    after_logout = forwarded(device, "/notes/1")  # made now: the client forgets its token at logout
    device.logout()
    refused = requests.get(url + "/session/check", headers=after_logout, timeout=10)
    assert problem(refused)[:2] == (401, "session_revoked") and refused.json()["reason"] == "logged_out"


# --- `apps add --profile fapi2`, `apps update --profile fapi2|none` (FAPI 2.0 Security Profile, final) ----

BANK_REDIRECT = ("--redirect-uri", "https://bank.example/callback")


@pytest.fixture
def keys_file(tmp_path):
    path = tmp_path / "jwks.json"
    key = ECKey.generate_key("P-256", parameters={"kid": "bank-1"})
    path.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    return str(path)


def test_an_app_that_can_comply_takes_the_profile_and_shows_it(start, keys_file):
    _, ctx, env = start()
    added = json.loads(cli(env, "add", "Bank", *BANK_REDIRECT, "--jwks", keys_file, "--id-token-alg", "ES256",
                           "--profile", "fapi2", "--json"))
    assert added["profile"] == "fapi2" and added["pkce"] == "fapi2_profile"
    assert added["token_endpoint_auth_method"] == "private_key_jwt"
    assert added["require_pushed_authorization_requests"] is True and added["dpop_bound_access_tokens"] is True
    shown = cli(env, "show", added["client_id"]).splitlines()
    assert "profile            fapi2" in shown and "pkce               required (--profile fapi2)" in shown
    assert apps.show_app(ctx, client_id=added["client_id"]).oidc().fapi2

    assert cli(env, "update", added["client_id"], "--profile", "none").strip() == \
        f"app {added['client_id']}: profile none"
    again = json.loads(cli(env, "show", added["client_id"], "--json"))
    assert again["profile"] is None and again["pkce"] == "when_sent"
    assert again["require_pushed_authorization_requests"] is False and again["redirect_uris"] == [BANK_REDIRECT[1]]
    assert json.loads(cli(env, "update", added["client_id"], "--profile", "fapi2", "--json"))["profile"] == "fapi2"


@pytest.mark.parametrize("options, named", [
    (("--id-token-alg", "ES256"), "jwks"),                                       # no key: no private_key_jwt
    (("--jwks", None), "id_token_alg"),                                          # RS256 by default
    (("--jwks", None, "--id-token-alg", "ES256", "--redirect-uri", "http://localhost:3000/cb"), "redirect_uris"),
    (("--jwks", None, "--id-token-alg", "EdDSA", "--admin-role", "viewer"), "admin_role"),
])
def test_an_app_that_cannot_comply_is_refused_naming_the_member(start, keys_file, options, named):
    _, ctx, env = start()
    before = {app.client_id for app in apps.list_apps(ctx)}
    argv = [keys_file if option is None else option for option in options]
    refused = cli(env, "add", "Bank", *BANK_REDIRECT, *argv, "--profile", "fapi2", ok=False)
    assert f"{named}:" in refused and "FAPI 2.0" in refused
    assert {app.client_id for app in apps.list_apps(ctx)} == before          # nothing written


def test_update_refuses_the_profile_to_an_app_that_cannot_hold_it(start, keys_file):
    _, ctx, env = start()
    plain = json.loads(cli(env, "add", "Notes", *BANK_REDIRECT, "--json"))
    refused = cli(env, "update", plain["client_id"], "--profile", "fapi2", ok=False)
    assert "jwks:" in refused
    assert apps.show_app(ctx, client_id=plain["client_id"]).profile is None
    assert "no app has this client_id" in cli(env, "update", "app_none", "--profile", "fapi2", ok=False).lower()
    assert "--redirect-uri" in cli(env, "add", "Events only", "--profile", "fapi2", ok=False)
