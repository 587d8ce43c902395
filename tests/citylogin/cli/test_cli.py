"""The citylogin command: init (with the import of an older data directory), keys list/rotate/retire,
and a start that stops with one line naming the variable."""
from __future__ import annotations

import base64
import getpass
import json
import os
import secrets
import stat
from pathlib import Path

import boto3
import pytest
import requests
from click.testing import CliRunner

from citylogin.app import create_app
from citylogin.cli.main import main
from common.config import ConfigError, load_settings
from common.timefmt import aware_utc
from common.crypto.certificates import (CertificateAuthority, ca_private_key_pem, certificate_issued_by, create_ca,
                                        issue_device_certificate)
from common.crypto.device_keys import generate_device_key
from common.crypto.tokens import keyed_token, token_digest
from common.database import dynamo
from common.keys.encryption import AesGcmKeyEncryptor
from common.keys.jwt_keys import JwtKeyRing, SigningKey, new_signing_key, private_key_pem
from common.keys.ring import CA, JWT, REFRESH, read_ring
from common.keys.ring_store import KeyRingStore
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, unique_name
from tests.support.fixtures import app_servers
from tests.support.live import PASSWORD, register_device


def new_kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def cli_env(dynamodb_endpoint, tmp_path):
    return {"CITYLOGIN_DYNAMODB_ENDPOINT_URL": dynamodb_endpoint, "CITYLOGIN_DATA_DIR": str(tmp_path),
            "CITYLOGIN_TABLE_PREFIX": unique_name("cli") + "_", "CITYLOGIN_KEY_ENCRYPTION_KEY": new_kek()}


def invoke(env: dict, *args: str):
    return CliRunner().invoke(main, list(args), env=env)


def settings_of(env: dict, **more):
    return load_settings({**more}, environ=env)


def ring_of(env: dict):
    settings = settings_of(env)
    client = dynamo.make_client(region="us-east-1", endpoint_url=settings.dynamodb_endpoint_url)
    kek = base64.b64decode(env["CITYLOGIN_KEY_ENCRYPTION_KEY"])
    return read_ring(KeyRingStore(client, settings.table_prefix + "key_ring",
                                  AesGcmKeyEncryptor(kek, variable="CITYLOGIN_KEY_ENCRYPTION_KEY")))


def test_keys_rotate_kind_adds_keys_of_the_kinds_named_alone(cli_env):
    """An operator rotates one kind (the RS256 ID-token key after a suspected leak, or the RSA and EC keys
    alone for a relying party's tool that knows no Ed25519 key); the other kinds keep their newest."""
    from citylogin.cli.keys import ROTATED_KIND_NAMES
    from common.keys.ring import JWT_EC, JWT_RSA, REFRESH, ROTATED_KINDS

    assert ROTATED_KIND_NAMES == ROTATED_KINDS
    assert invoke(cli_env, "init").exit_code == 0
    before = ring_of(cli_env)
    rotated = invoke(cli_env, "keys", "rotate", "--kind", "jwt_rsa", "--kind", "jwt_ec")
    assert rotated.exit_code == 0, rotated.output
    assert sorted(line.split()[1] for line in rotated.output.splitlines() if line.startswith("new ")) == [
        "jwt_ec", "jwt_rsa"]
    after = ring_of(cli_env)
    for kind in (JWT, REFRESH):
        assert [e.kid for e in after.of(kind)] == [e.kid for e in before.of(kind)]
    for kind in (JWT_RSA, JWT_EC):
        assert len(after.of(kind)) == len(before.of(kind)) + 1
    refused = invoke(cli_env, "keys", "rotate", "--kind", "ca")
    assert refused.exit_code == 2 and "Traceback" not in refused.output


def test_keys_rotate_list_and_retire(cli_env):
    assert invoke(cli_env, "init").exit_code == 0
    for _ in range(2):
        rotated = invoke(cli_env, "keys", "rotate")
        assert rotated.exit_code == 0, rotated.output
    listed = invoke(cli_env, "keys", "list")
    assert listed.exit_code == 0 and "PRIVATE" not in listed.output
    rows = [line.split() for line in listed.output.splitlines()]
    assert [r[0] for r in rows].count("jwt") == 3 and [r[0] for r in rows].count("refresh") == 3
    assert [r[-1] for r in rows if r[0] == "jwt"] == ["verify-only", "verify-only", "signing"]

    ring = ring_of(cli_env)
    oldest, newest = ring.of(JWT)[0].kid, ring.newest(JWT).kid
    early = invoke(cli_env, "keys", "retire", oldest)
    assert early.exit_code != 0 and "may still" in early.output and "Traceback" not in early.output
    assert invoke(cli_env, "keys", "retire", newest).exit_code != 0
    assert invoke(cli_env, "keys", "retire", ring.newest(CA).kid).exit_code != 0
    assert "ring version 0" in listed.output
    forced = invoke(cli_env, "keys", "retire", "--force", oldest)
    assert forced.exit_code == 0, forced.output
    assert oldest not in [e.kid for e in ring_of(cli_env).of(JWT)]
    assert "the ring is at version 1" in forced.output
    assert "ring version 1" in invoke(cli_env, "keys", "list").output


def older_data_directory(keys: Path) -> tuple[CertificateAuthority, list[SigningKey], bytes]:
    """Keys in the files older versions kept: keys/ca.pem + ca.key, jwt-<kid>.key, refresh.key."""
    keys.mkdir(mode=0o700, parents=True)
    ca, jwt_key, secret = create_ca(), new_signing_key(aware_utc()), secrets.token_bytes(32)
    (keys / "ca.pem").write_text(ca.certificate_pem())
    for name, data in (("ca.key", ca_private_key_pem(ca)), (f"jwt-{jwt_key.kid}.key", private_key_pem(jwt_key)),
                       ("refresh.key", secret)):
        (keys / name).write_bytes(data)
        (keys / name).chmod(0o600)
    return ca, [jwt_key], secret


def test_init_imports_an_older_data_directory_once(cli_env, tmp_path):
    # Keys made the way older versions made them, and what they issued.
    old_ca, old_jwt, old_secret = older_data_directory(tmp_path / "keys")
    device_cert = issue_device_certificate(old_ca, public_key=generate_device_key()[1], user_uuid="u",
                                           device_id="d", days=30)

    first = invoke(cli_env, "init")
    assert first.exit_code == 0 and "imported" in first.output, first.output
    assert "already" in invoke(cli_env, "init").output
    ring = ring_of(cli_env)
    assert ring.certificate_authority().certificate == old_ca.certificate
    assert certificate_issued_by(ring.certificate_authority(), device_cert)
    assert [k.kid for k in ring.signing_keys() if k.algorithm == "EdDSA"] == [k.kid for k in old_jwt]
    assert ring.refresh_secrets() == [(ring.newest(REFRESH).kid, old_secret)]

    # A session from before the upgrade: its 3-part refresh token and its access token still work.
    config = {"dynamodb_endpoint_url": cli_env["CITYLOGIN_DYNAMODB_ENDPOINT_URL"], "data_dir": str(tmp_path),
              "table_prefix": cli_env["CITYLOGIN_TABLE_PREFIX"], "create_tables": False, "log_level": "WARNING",
              "key_encryption_key": cli_env["CITYLOGIN_KEY_ENCRYPTION_KEY"], **FAST_ARGON2, **RAISED_LIMITS}
    with app_servers(config) as start:
        url, ctx = start()
        client = register_device(url)
        client.login(PASSWORD)
        session_id = client.session_id
        legacy = f"{session_id}.1.{keyed_token(old_secret, f'refresh:{session_id}:1')}"
        ctx.dynamodb.update_item(TableName=ctx.tables.sessions, Key={"session_id": {"S": session_id}},
                                 UpdateExpression="SET refresh_digest = :d REMOVE refresh_kid",
                                 ExpressionAttributeValues={":d": {"S": token_digest(legacy, purpose="refresh")}})
        # The session itself was opened by today's client, so it is bound: its refresh carries a proof.
        refreshed = requests.post(url + "/session/refresh", json={"refresh_token": legacy},
                                  headers={"DPoP": client.proof("POST", url + "/session/refresh")}, timeout=10)
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["refresh_token"].split(".")[2] == ring.newest(REFRESH).kid
        old_signer = JwtKeyRing(old_jwt, issuer=ctx.settings.jwt_issuer, audience=ctx.settings.jwt_audience)
        claims = {"sub": client.key_file.user_uuid, "sid": session_id, "did": client.key_file.device_id}
        # Bearer on purpose: an access token of an older version has no cnf, so it goes without a proof.
        old_token = old_signer.sign(claims, ttl_seconds=60, now=ctx.now())
        assert requests.get(url + "/session/me", headers={"Authorization": f"Bearer {old_token}"},
                            timeout=10).status_code == 200


def test_a_wrong_key_encryption_key_stops_with_one_line_naming_it(cli_env):
    assert invoke(cli_env, "init").exit_code == 0
    wrong = {**cli_env, "CITYLOGIN_KEY_ENCRYPTION_KEY": new_kek()}
    result = invoke(wrong, "keys", "list")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and "CITYLOGIN_KEY_ENCRYPTION_KEY" in result.output
    with pytest.raises(ConfigError, match="CITYLOGIN_KEY_ENCRYPTION_KEY"):
        create_app(settings_of(wrong).model_dump())


def test_apps_list_with_no_apps_says_so(cli_env):
    assert invoke(cli_env, "init").exit_code == 0
    listed = invoke(cli_env, "apps", "list")
    assert listed.exit_code == 0 and listed.stdout == "no apps: add one with `citylogin apps add NAME`\n", listed.output
    assert json.loads(invoke(cli_env, "apps", "list", "--json").stdout) == []


def test_without_create_tables_a_missing_ring_says_to_run_init(cli_env):
    with pytest.raises(ConfigError, match="citylogin init"):
        create_app(settings_of(cli_env, create_tables=False).model_dump())


def test_amazon_dynamodb_requires_a_key_encryption_key(tmp_path):
    with pytest.raises(ConfigError, match="CITYLOGIN_KEY_ENCRYPTION_KEY"):
        create_app({"data_dir": str(tmp_path)})


def test_a_local_engine_generates_its_key_encryption_key_once(cli_env, tmp_path, caplog):
    env = {k: v for k, v in cli_env.items() if k != "CITYLOGIN_KEY_ENCRYPTION_KEY"}
    with caplog.at_level("WARNING", logger="common.keys.encryption"):
        create_app(settings_of(env).model_dump())
        create_app(settings_of(env).model_dump())
    path = tmp_path / "keys" / "key-encryption.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_bytes()) == 32
    assert len([r for r in caplog.records if "generated a key-encryption key" in r.getMessage()]) == 1
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["key-encryption.key"]


def test_invalid_setting_names_the_variable(tmp_path):
    result = CliRunner().invoke(main, ["keys", "rotate"], env={"CITYLOGIN_DATA_DIR": str(tmp_path),
                                                              "CITYLOGIN_MAX_CONCURRENT_DEVICES": "many"})
    assert result.exit_code != 0
    assert "CITYLOGIN_MAX_CONCURRENT_DEVICES" in result.output


def test_key_changes_go_into_the_audit_stream(cli_env, tmp_path):
    audit_file = tmp_path / "audit.jsonl"
    env = {**cli_env, "CITYLOGIN_AUDIT_LOG": str(audit_file)}
    assert invoke(env, "init").exit_code == 0
    assert invoke(env, "keys", "rotate").exit_code == 0
    assert invoke(env, "keys", "--operator", "dave@ops", "rotate").exit_code == 0
    lines = audit_file.read_text().splitlines()
    events = {(entry["event"], entry["kind"]) for entry in map(json.loads, lines)}
    assert {("key_rotated", "jwt"), ("key_rotated", "refresh")} <= events
    # Every line names the operator: --operator, else the OS user (against a local engine).
    # (a rotation adds four keys: the access-token key, the RSA and P-256 ID-token keys, the refresh secret)
    assert [entry.get("operator") for entry in map(json.loads, lines)] == [getpass.getuser()] * 4 + ["dave@ops"] * 4
    assert not [line for line in lines if "PRIVATE" in line or "sealed" in line]


def test_init_and_keys_against_an_unreachable_endpoint_stop_with_one_line(tmp_path):
    from tests.support.tcp_faults import refused_endpoint

    with refused_endpoint() as endpoint:
        env = {"CITYLOGIN_DYNAMODB_ENDPOINT_URL": endpoint, "CITYLOGIN_DATA_DIR": str(tmp_path),
               "CITYLOGIN_KEY_ENCRYPTION_KEY": new_kek()}
        for command in (["init"], ["keys", "list"]):
            result = invoke(env, *command)
            assert result.exit_code == 2 and "Traceback" not in result.output, result.output
            assert result.output.strip().splitlines() == [
                f"Error: citylogin: cannot reach DynamoDB at {endpoint}/: start it (`citylogin dynamodb-local`) "
                "or correct CITYLOGIN_DYNAMODB_ENDPOINT_URL"]


def test_with_a_kms_key_and_no_endpoint_the_commands_go_to_amazon_dynamodb(tmp_path, monkeypatch):
    # The AWS walk-through (docs/guides/aws.md) runs `citylogin init` with CITYLOGIN_KMS_KEY_ID and no endpoint:
    # it must reach Amazon DynamoDB (here: no credentials, one line), never a DynamoDB Local.
    env = {"CITYLOGIN_DATA_DIR": str(tmp_path), "CITYLOGIN_KMS_KEY_ID": "alias/citylogin-test",
           "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"}
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # as in a command's own process: no credentials found before
    for command in (["keys", "list"], ["admin", "show", "alice"]):
        result = invoke(env, *command)
        assert result.exit_code == 2 and "DynamoDB Local" not in result.output, result.output
        assert "no DynamoDB to use" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "dynamodb").exists()
