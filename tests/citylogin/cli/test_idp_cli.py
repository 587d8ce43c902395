"""`citylogin idp` (SPEC §16): an operator adds, lists, shows, updates and removes upstream providers; the
secret is read from a file, stored sealed and never printed; a missing, unreadable or empty file is a clear
error with a non-zero exit."""
from __future__ import annotations

import base64
import json
import os

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from citylogin.cli.main import main
from federation import providers
from tests.conftest import unique_name
from tests.support.fixtures import cli_environment

SECRET = "cli-secret-" + os.urandom(8).hex()


@pytest.fixture(scope="module")
def kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def start(make_server, base_config, kek, tmp_path):
    url, ctx = make_server(key_encryption_key=kek)
    return ctx, cli_environment(base_config, kek=kek, data_dir=str(tmp_path))


def idp(env: dict, *args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(main, ["idp", *args], env=env)
    assert (result.exit_code == 0) is ok, result.output
    assert "Traceback" not in result.output
    return result.output


def _name() -> str:
    return unique_name("idp")[:20]


def test_idp_adds_lists_shows_updates_and_removes_a_provider(start, tmp_path):
    ctx, env = start
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    name = _name()
    added = json.loads(idp(env, "add", name, "--preset", "google", "--client-id", "web.apps.example",
                           "--client-secret-file", str(secret_file), "--signup", "deny", "--json"))
    assert (added["issuer"], added["display_name"], added["signup"], added["client_secret"]) == (
        "https://accounts.google.com", "Google", "deny", "set")
    assert providers.client_secret(ctx, providers.get_provider(ctx, name)) == SECRET
    assert "idp_exists" not in (again := idp(env, "add", name, "--preset", "google", "--client-id", "x",
                                             "--client-secret-file", str(secret_file), ok=False))
    assert "exists already" in again
    listed = json.loads(idp(env, "list", "--json"))
    assert [p["name"] for p in listed if p["name"] == name] == [name]
    assert name in idp(env, "list")
    shown = idp(env, "show", name)
    assert "client_secret      set" in shown and "web.apps.example" in shown
    updated = json.loads(idp(env, "update", name, "--display-name", "Google Workspace", "--disable", "--json"))
    assert (updated["display_name"], updated["enabled"], updated["version"]) == ("Google Workspace", False, 2)
    assert "removed provider" in idp(env, "remove", name)
    assert "no such sign-in provider" in idp(env, "show", name, ok=False).lower()
    assert "no such sign-in provider" in idp(env, "remove", name, ok=False).lower()
    for output in (json.dumps(added), json.dumps(listed), shown, json.dumps(updated)):
        assert SECRET not in output


def test_an_apple_provider_is_added_with_its_key_file(start, tmp_path):
    ctx, env = start
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    (tmp_path / "AuthKey_KEY1234567.p8").write_text(key)
    name = _name()
    out = idp(env, "add", name, "--preset", "apple", "--client-id", "com.example.web", "--apple-key-file",
              str(tmp_path / "AuthKey_KEY1234567.p8"), "--apple-team-id", "TEAM123456", "--apple-key-id",
              "KEY1234567")
    assert "apple_private_key  set" in out and key.split("\n")[1] not in out
    assert providers.client_secret(ctx, providers.get_provider(ctx, name)).count(".") == 2  # a JWT


def test_a_secret_file_missing_unreadable_or_empty_is_a_clear_error(start, tmp_path):
    _, env = start
    (tmp_path / "empty").write_text("\n")
    unreadable = tmp_path / "unreadable"
    unreadable.write_text(SECRET)
    unreadable.chmod(0)
    cases = {str(tmp_path / "missing"): "cannot be read", str(tmp_path / "empty"): "is empty",
             str(tmp_path): "cannot be read"}   # a directory
    if os.geteuid() != 0:   # root reads any file
        cases[str(unreadable)] = "cannot be read"
    for path, said in cases.items():
        out = idp(env, "add", _name(), "--issuer", "https://idp.example", "--client-id", "a",
                  "--client-secret-file", path, ok=False)
        assert said in out and SECRET not in out


def test_a_bad_option_is_refused_naming_it(start, tmp_path):
    _, env = start
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    base = ("--client-id", "a", "--client-secret-file", str(secret_file))
    assert "issuer" in idp(env, "add", _name(), *base, ok=False)                     # generic needs one
    assert "https" in idp(env, "add", _name(), "--issuer", "ftp://x.example", *base, ok=False)
    assert "name" in idp(env, "add", "Bad_Name", "--issuer", "https://x.example", *base, ok=False)
    assert "--client-id" in idp(env, "add", _name(), "--issuer", "https://x.example", ok=False)
    assert "at least one option" in idp(env, "update", _name(), ok=False)
