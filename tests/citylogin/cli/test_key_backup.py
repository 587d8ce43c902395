"""`citylogin keys backup FILE` and `keys restore FILE` (issue 54): a round trip through a wiped ring and a
fresh table prefix keeps every key (a token issued before is accepted after), the file reveals no key, and a
wrong key-encryption key, an edited or damaged file, or a table that holds a ring is refused with nothing
written."""
from __future__ import annotations

import base64
import json
import os
import stat
from datetime import timedelta

import boto3
import pytest
import requests
from click.testing import CliRunner
from moto import mock_aws

from citylogin.cli.main import main
from common.config import load_settings
from common.timefmt import aware_utc
from common.database import dynamo
from common.keys.encryption import AesGcmKeyEncryptor, KmsKeyEncryptor
from common.keys.ring import JWT, REFRESH, ensure_ring, read_ring, refresh_entry
from common.keys.ring_backup import MAX_BACKUP_BYTES, BackupRefused, make_backup, open_backup
from common.keys.ring_import import initial_entries
from common.keys.ring_store import RING, KeyRingStore
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, unique_name
from tests.common.keys.test_key_ring import create_ring_table
from tests.support.fixtures import app_servers
from tests.support.live import PASSWORD, register_device


def new_kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def cli_env(dynamodb_endpoint, tmp_path):
    return {"CITYLOGIN_DYNAMODB_ENDPOINT_URL": dynamodb_endpoint, "CITYLOGIN_DATA_DIR": str(tmp_path),
            "CITYLOGIN_TABLE_PREFIX": unique_name("bk") + "_", "CITYLOGIN_KEY_ENCRYPTION_KEY": new_kek(),
            "CITYLOGIN_LOG_LEVEL": "WARNING"}


def invoke(env: dict, *args: str, input: bytes | None = None):
    result = CliRunner().invoke(main, list(args), env=env, input=input)
    assert "Traceback" not in result.output, result.output
    return result


def store_of(env: dict) -> KeyRingStore:
    client = dynamo.make_client(region="us-east-1", endpoint_url=env["CITYLOGIN_DYNAMODB_ENDPOINT_URL"])
    kek = base64.b64decode(env["CITYLOGIN_KEY_ENCRYPTION_KEY"])
    return KeyRingStore(client, env["CITYLOGIN_TABLE_PREFIX"] + "key_ring",
                        AesGcmKeyEncryptor(kek, variable="CITYLOGIN_KEY_ENCRYPTION_KEY"))


def ring_items(env: dict) -> list[dict]:
    store = store_of(env)
    return store.client.query(TableName=store.table, KeyConditionExpression="#r = :r",
                              ExpressionAttributeNames={"#r": "ring"},
                              ExpressionAttributeValues={":r": {"S": RING}}, ConsistentRead=True)["Items"]


def wipe_ring(env: dict) -> None:
    store = store_of(env)
    for item in ring_items(env):
        store.client.delete_item(TableName=store.table, Key={"ring": item["ring"], "key_id": item["key_id"]})


def app_config(env: dict) -> dict:
    return {"dynamodb_endpoint_url": env["CITYLOGIN_DYNAMODB_ENDPOINT_URL"], "data_dir": env["CITYLOGIN_DATA_DIR"],
            "table_prefix": env["CITYLOGIN_TABLE_PREFIX"], "create_tables": False, "log_level": "WARNING",
            "key_encryption_key": env["CITYLOGIN_KEY_ENCRYPTION_KEY"], "deletion_sweep_interval": 0,
            "ssf_push_interval": 0, "session_sweep_interval": 0, **FAST_ARGON2, **RAISED_LIMITS}


def test_a_ring_backed_up_wiped_and_restored_accepts_the_tokens_issued_before(cli_env, tmp_path):
    assert invoke(cli_env, "init").exit_code == 0
    assert invoke(cli_env, "keys", "rotate").exit_code == 0
    ring = read_ring(store_of(cli_env))
    oldest = ring.of(JWT)[0].kid
    assert invoke(cli_env, "keys", "retire", "--force", oldest).exit_code == 0  # a tombstone and a manifest too
    with app_servers(app_config(cli_env)) as start:
        url, _ = start()
        device = register_device(url)
        device.login(PASSWORD)
        token, jwks = device.access_token, requests.get(url + "/.well-known/jwks.json", timeout=10).json()
        session_id = device.session_id

    backup = tmp_path / "ring-backup.json"
    made = invoke(cli_env, "keys", "backup", str(backup))
    assert made.exit_code == 0 and made.stdout == "", made.output
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    text = backup.read_text()
    secrets = [entry.private for entry in read_ring(store_of(cli_env)).entries if entry.private]
    assert "PRIVATE KEY" not in text and "BEGIN" not in text
    assert not [s for s in secrets if base64.b64encode(s).decode() in text or s.hex() in text]
    assert json.loads(text)["ring_version"] == 1

    wipe_ring(cli_env)
    assert invoke(cli_env, "keys", "list").exit_code != 0
    restored = invoke(cli_env, "keys", "restore", str(backup))
    assert restored.exit_code == 0, restored.output
    assert "the ring is at version 1" in restored.stdout
    again = read_ring(store_of(cli_env))
    assert [e.key_id for e in again.entries if e.state == "active"] == \
        [e.key_id for e in ring.without({f"{JWT}#{oldest}"}).entries if e.state == "active"]
    assert f"{JWT}#{oldest}" in again.ring.retired and again.ring.version == 1

    # A process started after the restore accepts the session's token and the device's certificate.
    with app_servers(app_config(cli_env)) as start:
        url, _ = start()
        device.base_url = url
        assert device.request("GET", "/session/me").status_code == 200
        assert requests.get(url + "/.well-known/jwks.json", timeout=10).json() == jwks
        device.login(PASSWORD, force=True)

    # The same backup into a fresh table prefix: the same keys sign and verify there.
    fresh = {**cli_env, "CITYLOGIN_TABLE_PREFIX": unique_name("bk") + "_"}
    assert invoke(fresh, "keys", "restore", str(backup)).exit_code == 0
    with app_servers(app_config(fresh)) as start:
        url, ctx = start()
        assert requests.get(url + "/.well-known/jwks.json", timeout=10).json() == jwks
        assert ctx.jwt.decode(token)["sid"] == session_id  # a token signed before, verified here
    assert read_ring(store_of(fresh)).refresh_secrets() == again.refresh_secrets() == ring.refresh_secrets()


def test_a_backup_to_standard_output_restores_from_standard_input(cli_env):
    assert invoke(cli_env, "init").exit_code == 0
    made = invoke(cli_env, "keys", "backup", "-")
    assert made.exit_code == 0 and json.loads(made.stdout)["format"] == "citylogin-key-ring-backup"
    fresh = {**cli_env, "CITYLOGIN_TABLE_PREFIX": unique_name("bk") + "_"}
    restored = invoke(fresh, "keys", "restore", "-", input=made.stdout.encode())
    assert restored.exit_code == 0, restored.output
    assert read_ring(store_of(fresh)).newest(REFRESH) == read_ring(store_of(cli_env)).newest(REFRESH)


def test_a_ring_that_exists_is_not_overwritten(cli_env, tmp_path):
    assert invoke(cli_env, "init").exit_code == 0
    assert invoke(cli_env, "keys", "backup", str(tmp_path / "b.json")).exit_code == 0
    before = ring_items(cli_env)
    refused = invoke(cli_env, "keys", "restore", str(tmp_path / "b.json"))
    assert refused.exit_code == 1 and refused.stdout == ""
    assert f"a key ring exists in {cli_env['CITYLOGIN_TABLE_PREFIX']}key_ring: nothing restored" in refused.stderr
    assert ring_items(cli_env) == before


def refused_restore(env: dict, path) -> str:
    """Restore into a fresh prefix; it must be refused with one line naming the file, and write nothing,
    not even the tables."""
    fresh = {**env, "CITYLOGIN_TABLE_PREFIX": unique_name("bk") + "_"}
    result = invoke(fresh, "keys", "restore", str(path))
    assert result.exit_code == 1 and result.stdout == "", result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}"), result.stderr
    client = store_of(fresh).client
    assert not [t for t in client.list_tables()["TableNames"] if t.startswith(fresh["CITYLOGIN_TABLE_PREFIX"])]
    return lines[0]


def test_a_wrong_key_encryption_key_or_an_edited_file_is_refused_and_nothing_written(cli_env, tmp_path):
    assert invoke(cli_env, "init").exit_code == 0
    path = tmp_path / "b.json"
    assert invoke(cli_env, "keys", "backup", str(path)).exit_code == 0
    original = json.loads(path.read_text())

    wrong = {**cli_env, "CITYLOGIN_KEY_ENCRYPTION_KEY": new_kek()}
    assert "does not open under CITYLOGIN_KEY_ENCRYPTION_KEY: it was sealed under another key-encryption key" \
        in refused_restore(wrong, path)

    def edited(change) -> str:
        document = json.loads(json.dumps(original))
        change(document)
        path.write_text(json.dumps(document))
        return refused_restore(cli_env, path)

    assert "was edited: its clear part" in edited(lambda d: d.update(table="other_key_ring"))
    assert "was edited: its clear part" in edited(lambda d: d["keys"].pop())
    assert "was edited: its clear part" in edited(lambda d: d.update(ring_version=7))

    def flip(d):
        raw = bytearray(base64.b64decode(d["sealed"]["keys"]))
        raw[len(raw) // 2] ^= 1
        d["sealed"]["keys"] = base64.b64encode(bytes(raw)).decode()
    assert "was edited or damaged: its sealed keys do not open" in edited(flip)
    assert "damaged: its sealed data_key is missing" in edited(lambda d: d["sealed"].pop("data_key"))
    assert "is damaged: its nonce is not base64" in edited(lambda d: d["sealed"].update(nonce="%%"))
    assert "sealed with kms" in edited(lambda d: d.update(sealed_with="kms"))
    assert "format version 2" in edited(lambda d: d.update(format_version=2))
    path.write_text(path.read_text()[:200])
    assert "is not a key ring backup: not JSON" in refused_restore(cli_env, path)
    path.write_text("{}")
    assert "is not a key ring backup" in refused_restore(cli_env, path)

    # A check value moved in from another backup (same key): its id does not match.
    other = tmp_path / "other.json"
    assert invoke(cli_env, "keys", "backup", str(other)).exit_code == 0
    swapped = json.loads(json.dumps(original))
    swapped["sealed"]["data_key"] = json.loads(other.read_text())["sealed"]["data_key"]
    path.write_text(json.dumps(swapped))
    assert "was edited: its clear part" in refused_restore(cli_env, path)


def test_a_backup_with_a_member_a_backup_has_not_is_refused_and_nothing_written(cli_env, tmp_path):
    """The clear part's members are bound to the sealed keys, but a member added beside them would be
    bound to nothing: a file with one is no backup this citylogin made. Its names are shown on the one
    line, escaped and cut short."""
    assert invoke(cli_env, "init").exit_code == 0
    path = tmp_path / "b.json"
    assert invoke(cli_env, "keys", "backup", str(path)).exit_code == 0
    original = json.loads(path.read_text())

    def added(**members) -> str:
        path.write_text(json.dumps({**original, **members}))
        return refused_restore(cli_env, path)

    assert 'holds members a backup has not ("comment")' in added(comment="made by hand")
    assert '("Table")' in added(Table="other_key_ring")
    line = added(**{"line\nbreak": 1, "Z" * 90: 2, "m": 3, "n": 4})
    assert '("' + "Z" * 40 + '", "line\\nbreak", "m" and 1 more)' in line
    path.write_text(json.dumps(original))   # the same backup without them restores
    fresh = {**cli_env, "CITYLOGIN_TABLE_PREFIX": unique_name("bk") + "_"}
    assert invoke(fresh, "keys", "restore", str(path)).exit_code == 0


def test_a_file_over_the_cap_is_refused_after_reading_one_byte_past_it(cli_env, tmp_path):
    """keys restore reads at most MAX_BACKUP_BYTES + 1 bytes: a larger file, standard input, or a path
    without an end (/dev/zero, which would be read for ever) is refused on one line naming it and the cap,
    with nothing written; a file of the cap exactly is read, and refused for what it holds."""
    assert MAX_BACKUP_BYTES == 16 * 2**20
    assert "/dev/zero is over 16 MiB, larger than any key ring backup: nothing restored" in \
        refused_restore(cli_env, "/dev/zero")
    big = tmp_path / "big.json"
    with big.open("wb") as handle:   # sparse: no 16 MiB written to the disk
        handle.truncate(MAX_BACKUP_BYTES + 1)
    assert "big.json is over 16 MiB" in refused_restore(cli_env, big)
    with big.open("r+b") as handle:
        handle.truncate(MAX_BACKUP_BYTES)
    assert "is not a key ring backup: not JSON" in refused_restore(cli_env, big)

    fresh = {**cli_env, "CITYLOGIN_TABLE_PREFIX": unique_name("bk") + "_"}
    piped = invoke(fresh, "keys", "restore", "-", input=b" " * (MAX_BACKUP_BYTES + 1))
    assert piped.exit_code == 1 and piped.stdout == ""
    assert piped.stderr.strip() == "Error: the backup on standard input is over 16 MiB, larger than any key " \
                                   "ring backup: nothing restored"


def test_a_backup_that_cannot_be_written_leaves_no_file(cli_env, tmp_path):
    assert invoke(cli_env, "init").exit_code == 0
    missing = tmp_path / "no-such-folder" / "b.json"
    result = invoke(cli_env, "keys", "backup", str(missing))
    assert result.exit_code == 1 and result.stdout == "" and str(missing) in result.stderr
    assert not missing.parent.exists()
    kept = tmp_path / "kept.json"
    kept.write_text("an older backup")
    broken = {**cli_env, "CITYLOGIN_KEY_ENCRYPTION_KEY": new_kek()}
    assert invoke(broken, "keys", "backup", str(kept)).exit_code == 1  # the ring does not open: nothing written
    assert kept.read_text() == "an older backup"


def test_a_ring_of_more_items_than_one_transaction_holds_is_restored_whole(cli_env, tmp_path):
    """Tombstones stay for ever, so an old ring outgrows DynamoDB's 100 items a transaction."""
    assert invoke(cli_env, "init").exit_code == 0
    store, start = store_of(cli_env), aware_utc(None)
    for n in range(120):
        store.add(refresh_entry(os.urandom(32), created_at=start + timedelta(seconds=n)))
    path = tmp_path / "big.json"
    assert invoke(cli_env, "keys", "backup", str(path)).exit_code == 0
    fresh = {**cli_env, "CITYLOGIN_TABLE_PREFIX": unique_name("bk") + "_"}
    assert invoke(fresh, "keys", "restore", str(path)).exit_code == 0
    assert read_ring(store_of(fresh)).refresh_secrets() == read_ring(store).refresh_secrets()
    assert len(read_ring(store_of(fresh)).refresh_secrets()) == 121


def test_a_backup_sealed_with_kms_opens_only_under_that_kms_key(tmp_path):
    """KMS seals the backup's data key (KMS takes 4 KiB at most: the keys themselves go under the data key),
    with an encryption context naming the backup; another KMS key does not open it."""
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        key_id, other_key = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
        client = boto3.client("dynamodb", region_name="us-east-1")
        for table in ("ring", "restored"):
            create_ring_table(client, table)
        store = KeyRingStore(client, "ring", KmsKeyEncryptor(kms, key_id))
        settings = load_settings({"data_dir": str(tmp_path)}, environ={})
        contents, _ = ensure_ring(store, initial=lambda: initial_entries(settings))
        text = make_backup(contents, table="ring", encryptor=store.encryptor, now=aware_utc(None))
        assert json.loads(text)["sealed_with"] == "kms" and "PRIVATE KEY" not in text

        backup = open_backup(text.encode(), name="b.json", encryptor=KmsKeyEncryptor(kms, key_id))
        restored = KeyRingStore(client, "restored", KmsKeyEncryptor(kms, key_id))
        assert restored.restore(list(backup.entries), ring=backup.ring, now=aware_utc(None))
        assert read_ring(restored).refresh_secrets() == contents.refresh_secrets()
        assert read_ring(restored).certificate_authority().certificate == contents.certificate_authority().certificate
        with pytest.raises(BackupRefused, match="b.json does not open under CITYLOGIN_KMS_KEY_ID"):
            open_backup(text.encode(), name="b.json", encryptor=KmsKeyEncryptor(kms, other_key))


def test_a_backup_restores_into_a_new_data_directory_given_its_key(cli_env, tmp_path):
    """A fresh DynamoDB Local of a new data directory: without the backup's key-encryption key there, the
    restore is refused before anything is made (a key generated now could never open it); with the key
    file copied there, the ring comes back whole."""
    assert invoke(cli_env, "init").exit_code == 0
    path = tmp_path / "b.json"
    assert invoke(cli_env, "keys", "backup", str(path)).exit_code == 0
    new = tmp_path / "new" / ".data"
    fresh = {"CITYLOGIN_DATA_DIR": str(new), "XDG_RUNTIME_DIR": str(tmp_path / "runtime"),
             "CITYLOGIN_LOG_LEVEL": "WARNING"}
    refused = invoke(fresh, "keys", "restore", str(path))
    assert refused.exit_code == 1 and refused.stdout == ""
    assert "opens only under the key-encryption key it was made with" in refused.stderr
    assert not new.exists()

    (new / "keys").mkdir(parents=True, mode=0o700)
    key_file = new / "keys" / "key-encryption.key"
    key_file.write_bytes(base64.b64decode(cli_env["CITYLOGIN_KEY_ENCRYPTION_KEY"]))
    key_file.chmod(0o600)
    restored = invoke(fresh, "keys", "restore", str(path))
    assert restored.exit_code == 0, restored.output
    listed = invoke(fresh, "keys", "list")
    assert listed.exit_code == 0, listed.output
    kids = {e.kid for e in read_ring(store_of(cli_env)).entries}
    assert {line.split()[1] for line in listed.stdout.splitlines() if not line.startswith("ring version")} == kids


@pytest.mark.slow  # starts and stops a DynamoDB Local of its own
def test_a_restore_refused_in_a_new_data_directory_leaves_nothing_it_made(cli_env, tmp_path):
    """Issue 65: a wrong key-encryption key refused by a restore into a new data directory (its own DynamoDB
    Local started for it) leaves no empty `dynamodb/` folder, nor the data directory it made; a folder that
    was there before stays."""
    assert invoke(cli_env, "init").exit_code == 0
    path = tmp_path / "b.json"
    assert invoke(cli_env, "keys", "backup", str(path)).exit_code == 0
    runtime = {"XDG_RUNTIME_DIR": str(tmp_path / "runtime"), "CITYLOGIN_LOG_LEVEL": "WARNING"}

    new = tmp_path / "new" / ".data"
    wrong = {**runtime, "CITYLOGIN_DATA_DIR": str(new), "CITYLOGIN_KEY_ENCRYPTION_KEY": new_kek()}
    refused = invoke(wrong, "keys", "restore", str(path))
    assert refused.exit_code == 1 and refused.stdout == "", refused.output
    assert "does not open under CITYLOGIN_KEY_ENCRYPTION_KEY" in refused.stderr
    assert not (tmp_path / "new").exists()

    kept = tmp_path / "kept"                      # a data directory holding only a (wrong) key file
    (kept / "keys").mkdir(parents=True, mode=0o700)
    key_file = kept / "keys" / "key-encryption.key"
    key_file.write_bytes(os.urandom(32))
    key_file.chmod(0o600)
    refused = invoke({**runtime, "CITYLOGIN_DATA_DIR": str(kept)}, "keys", "restore", str(path))
    assert refused.exit_code == 1 and refused.stdout == "", refused.output
    assert "does not open under" in refused.stderr
    assert sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*")) == ["keys", "keys/key-encryption.key"]
