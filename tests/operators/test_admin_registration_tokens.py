"""Initial access tokens for apps that register themselves (RFC 7591; SPEC §14, §15): an admin makes one through
the admin API or `citylogin apps registration-token` (shown once, kept as a digest), lists them (id, expiry,
uses left, never the token) and revokes one; each step is audited, the token never in a line."""
from __future__ import annotations

import base64
import json
import logging
import os

import pytest
import requests
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import Role
from relying_parties import registration_tokens
from citylogin.cli.main import main
from tests.conftest import unique_name
from tests.support.fixtures import cli_environment, problem
from tests.support.operators import operator

REGISTRATION = {"redirect_uris": ["https://rp.example/callback"]}


def _register(url: str, token: str) -> requests.Response:
    return requests.post(url + "/oidc/register", json=REGISTRATION, headers={"Authorization": f"Bearer {token}"},
                         timeout=10)


def test_an_admin_makes_lists_and_revokes_initial_access_tokens(make_server, caplog):
    url, ctx = make_server()
    admin, support = operator(url, ctx, Role.ADMIN), operator(url, ctx, Role.SUPPORT)
    assert problem(support.request("POST", "/admin/registration-tokens", json={}))[:2] == (403, "forbidden")
    assert problem(support.request("GET", "/admin/registration-tokens"))[:2] == (403, "forbidden")
    with caplog.at_level(logging.INFO, logger="citylogin.audit"):
        made = admin.request("POST", "/admin/registration-tokens", json={"uses": 2, "expires_in": 3600,
                                                                         "reason": "the partner's pilot"})
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        assert _register(url, token).status_code == 201
    shown = made.json()
    assert (shown["uses"], shown["uses_left"]) == (2, 2) and token.startswith(shown["id"] + ".")
    listed = admin.get_json("/admin/registration-tokens")["tokens"]
    mine = [t for t in listed if t["id"] == shown["id"]]
    assert [(t["uses"], t["uses_left"], t["expires_at"]) for t in mine] == [(2, 1, shown["expires_at"])]
    assert token not in json.dumps(listed) and "token" not in mine[0] and "digest" not in json.dumps(listed)
    stored = registration_tokens.store(ctx).get(shown["id"])
    assert stored.digest not in json.dumps(listed)

    assert admin.request("DELETE", f"/admin/registration-tokens/{shown['id']}").status_code == 204
    assert _register(url, token).status_code == 401
    assert problem(admin.request("DELETE", f"/admin/registration-tokens/{shown['id']}"))[:2] == (404, "not_found")
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "citylogin.audit"]
    kinds = [(e["event"], e.get("initial_access")) for e in events]
    assert ("registration_token_created", shown["id"]) in kinds and ("registration_token_used", shown["id"]) in kinds
    assert any(e["event"] == "operator_action" and e.get("action") == "registration_token_add" for e in events)
    assert token not in caplog.text and token.partition(".")[2] not in caplog.text


@pytest.mark.parametrize("body", [{"uses": 0}, {"uses": 10_001}, {"uses": "2"}, {"expires_in": 0},
                                  {"expires_in": 400 * 86400}, {"expires_in": 1.5}])
def test_a_token_out_of_bounds_is_refused(make_server, body):
    url, ctx = make_server()
    admin = operator(url, ctx, Role.ADMIN)
    assert problem(admin.request("POST", "/admin/registration-tokens", json=body))[:2] == (400, "invalid_field")


def test_the_cli_prints_a_token_once_and_lists_and_revokes_it(make_server, base_config, tmp_path):
    # Own tables: the module's key ring is sealed under the data directory's key-encryption key.
    kek, config = base64.b64encode(os.urandom(32)).decode(), {**base_config, "table_prefix": unique_name("rat") + "_"}
    url, _ = make_server(key_encryption_key=kek, table_prefix=config["table_prefix"])
    env = cli_environment(config, kek=kek, data_dir=str(tmp_path))
    made = CliRunner().invoke(main, ["apps", "registration-token", "--expires-in", "2h", "--uses", "3", "--json"],
                              env=env)
    assert made.exit_code == 0, made.output
    shown = json.loads(made.stdout)
    assert (shown["uses"], shown["uses_left"]) == (3, 3) and shown["token"].startswith(shown["id"] + ".")
    assert _register(url, shown["token"]).status_code == 201
    listed = CliRunner().invoke(main, ["apps", "registration-tokens", "--json"], env=env)
    assert [(t["id"], t["uses_left"]) for t in json.loads(listed.stdout)] == [(shown["id"], 2)]
    assert shown["token"] not in listed.output
    revoked = CliRunner().invoke(main, ["apps", "revoke-registration-token", shown["id"]], env=env)
    assert revoked.exit_code == 0 and _register(url, shown["token"]).status_code == 401
    for bad in ("0", "367d", "1w", "-5m", "soon"):
        refused = CliRunner().invoke(main, ["apps", "registration-token", "--expires-in", bad], env=env)
        assert refused.exit_code == 2 and "--expires-in" in refused.output, (bad, refused.output)


@given(st.text(max_size=20))
def test_a_duration_is_a_number_and_a_unit_or_nothing(text):
    seconds = registration_tokens.duration_seconds(text)
    assert seconds is None or 1 <= seconds <= registration_tokens.MAX_EXPIRES_IN


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("12h", 43200),
                                               ("7d", 604800), ("366d", 366 * 86400), (" 1d ", 86400)])
def test_durations_read_as_seconds(text, seconds):
    assert registration_tokens.duration_seconds(text) == seconds
