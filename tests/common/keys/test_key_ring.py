"""The key ring store (SPEC §10): sealed under AES-GCM or KMS and bound to its item, created once
by racing processes, rotated and retired by the rules of `citylogin keys`."""
from __future__ import annotations

import os
import threading
from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from common.config import ConfigError, load_settings
from common.database import dynamo
from common.keys.encryption import AesGcmKeyEncryptor, KmsKeyEncryptor, WrongKeyEncryptionKey
from common.keys.ring import (CA, JWT, REFRESH, ROTATED_KINDS, RetireRefused, describe, ensure_ring, read_ring, retire,
                              rotate)
from common.keys.ring_import import initial_entries
from common.keys.ring_store import KeyRingStore
from tests.conftest import unique_name

VARIABLE = "CITYLOGIN_KEY_ENCRYPTION_KEY"


def aes(key: bytes | None = None) -> AesGcmKeyEncryptor:
    return AesGcmKeyEncryptor(key or os.urandom(32), variable=VARIABLE)


def create_ring_table(client, table: str) -> None:
    definition = dynamo.table_definitions(dynamo.TableNames.with_prefix("x_"))["x_key_ring"]
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", **definition)
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})


@pytest.fixture
def local_store(dynamodb_endpoint, tmp_path):
    client = dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, read_timeout=20)
    table = unique_name("ring")
    create_ring_table(client, table)
    return KeyRingStore(client, table, aes()), tmp_path


def settings_for(tmp_path, **values):
    return load_settings({"data_dir": str(tmp_path), **values}, environ={})


# --- sealing ------------------------------------------------------------------------------

def test_aes_gcm_binds_the_sealed_value_to_its_item_and_key():
    sealer = aes()
    sealed = sealer.seal(b"secret", identity="citylogin-key-ring:t:jwt#1")
    assert len(sealed["nonce"]) == 12 and b"secret" not in sealed["ciphertext"]
    assert sealer.open(sealed, identity="citylogin-key-ring:t:jwt#1") == b"secret"
    with pytest.raises(WrongKeyEncryptionKey, match=VARIABLE):
        sealer.open(sealed, identity="citylogin-key-ring:t:jwt#2")  # moved to another item
    with pytest.raises(WrongKeyEncryptionKey, match=VARIABLE):
        aes().open(sealed, identity="citylogin-key-ring:t:jwt#1")


def test_a_key_encryption_key_that_is_not_32_bytes_of_base64_names_the_variable():
    for bad in ("not base64!", "c2hvcnQ="):
        with pytest.raises(ConfigError, match=VARIABLE):
            load_settings({"key_encryption_key": bad}, environ={})


def test_create_tables_follows_the_endpoint_unless_set():
    assert load_settings({}, environ={}).create_tables is False
    assert load_settings({"dynamodb_endpoint_url": "http://localhost:8000"}, environ={}).create_tables is True
    assert load_settings({}, environ={"CITYLOGIN_DYNAMODB_ENDPOINT_URL": "http://x",
                                      "CITYLOGIN_CREATE_TABLES": "false"}).create_tables is False


def test_kms_seals_the_ring_under_an_encryption_context_naming_the_item(tmp_path):
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        key_id, other_key = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_ring_table(client, "ring")
        store = KeyRingStore(client, "ring", KmsKeyEncryptor(kms, key_id))
        contents, created = ensure_ring(store, initial=lambda: initial_entries(settings_for(tmp_path)))
        assert created and not contents.missing_kinds()
        secret = contents.refresh_secrets()[0][1]
        items = client.query(TableName="ring", KeyConditionExpression="#r = :m",
                             ExpressionAttributeNames={"#r": "ring"},
                             ExpressionAttributeValues={":m": {"S": "main"}})["Items"]
        assert all(secret not in item.get("sealed_ciphertext", {}).get("B", b"") for item in items)
        assert {item["sealed_with"]["S"] for item in items if "sealed_with" in item} == {"kms"}
        assert read_ring(store).newest(CA).public == contents.newest(CA).public

        with pytest.raises(WrongKeyEncryptionKey, match="CITYLOGIN_KMS_KEY_ID"):
            read_ring(KeyRingStore(client, "ring", KmsKeyEncryptor(kms, other_key)))
        jwt_item = next(i for i in items if i["kind"]["S"] == JWT)
        client.put_item(TableName="ring", Item={**jwt_item, "key_id": {"S": "jwt#moved"}, "kid": {"S": "moved"}})
        assert "moved" not in [e.kid for e in read_ring(store).entries]  # does not open there: ignored


# --- creating, rotating, retiring ----------------------------------------------------------

def test_processes_racing_on_an_empty_table_create_one_ring(local_store):
    store, tmp_path = local_store
    results, errors = [], []

    def start(index: int) -> None:
        try:
            results.append(ensure_ring(store, initial=lambda: initial_entries(settings_for(tmp_path / str(index)))))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(created for _, created in results) == 1
    assert len({tuple(e.key_id for e in contents.entries) for contents, _ in results}) == 1
    assert [len(results[0][0].of(kind)) for kind in (CA, JWT, REFRESH)] == [1, 1, 1]


def test_rotation_and_the_retirement_rules(local_store):
    store, tmp_path = local_store
    first, _ = ensure_ring(store, initial=lambda: initial_entries(settings_for(tmp_path)))
    settings = settings_for(tmp_path, access_token_ttl=60, session_max_lifetime=3600, key_ring_reload_seconds=10)
    old_jwt, old_refresh = first.newest(JWT), first.newest(REFRESH)
    added = rotate(store)
    ring = read_ring(store)
    # every rotated kind: the access-token key, the ID-token keys (RSA, P-256) and the refresh secret
    assert [e.kid for e in added] == [ring.newest(kind).kid for kind in ROTATED_KINDS]
    rows = describe(ring)
    assert [r["state"] for r in rows if r["kind"] == JWT] == ["verify-only", "signing"]

    for kid, message in ((ring.newest(JWT).kid, "newest"), (first.newest(CA).kid, "CA"),
                         (old_jwt.kid, "may still"), (old_refresh.kid, "may still"), ("nope", "no key")):
        with pytest.raises(RetireRefused, match=message):
            retire(store, kid=kid, settings=settings)
    later = ring.newest(JWT).created_at + timedelta(seconds=60 + 30 + 10 + 1)
    assert retire(store, kid=old_jwt.kid, settings=settings, now=later).kid == old_jwt.kid
    with pytest.raises(RetireRefused, match="may still"):  # a session may live an hour
        retire(store, kid=old_refresh.key_id, settings=settings, now=later)
    retire(store, kid=old_refresh.key_id, settings=settings, force=True)
    assert [len(read_ring(store).of(kind)) for kind in (CA, JWT, REFRESH)] == [1, 1, 1]


def test_a_new_key_signs_only_once_every_process_can_have_read_it():
    # Publish before use: a host that re-reads the ring every R seconds never meets a token
    # signed with a key younger than R, so it never refuses one it would accept a moment later.
    from datetime import datetime, timedelta, timezone

    from common.keys.jwt_keys import newest_published
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ages = [3600, 30, 5]  # oldest first
    keys = [now - timedelta(seconds=age) for age in ages]
    assert newest_published(keys, created_at=lambda k: k, published_for=60, now=now) == keys[0]
    assert newest_published(keys, created_at=lambda k: k, published_for=20, now=now) == keys[1]
    assert newest_published(keys, created_at=lambda k: k, published_for=0, now=now) == keys[2]
    assert newest_published(keys[1:], created_at=lambda k: k, published_for=60, now=now) == keys[1]


def _ring_item(store, key_id: str) -> dict:
    return store.client.get_item(TableName=store.table, Key={"ring": {"S": "main"}, "key_id": {"S": key_id}},
                                 ConsistentRead=True)["Item"]


def test_a_retirement_cannot_be_undone_without_the_key_encryption_key(local_store):
    from common.keys.ring_reader import RingReader

    store, tmp_path = local_store
    first, _ = ensure_ring(store, initial=lambda: initial_entries(settings_for(tmp_path)))
    old = first.newest(JWT)
    rotate(store)
    before = _ring_item(store, old.key_id)  # what a writer may have copied while it was active
    reader = RingReader(store, read_ring(store))
    retire(store, kid=old.kid, settings=settings_for(tmp_path), force=True)

    tombstone = _ring_item(store, old.key_id)
    assert tombstone["state"]["S"] == "retired" and "public" not in tombstone
    assert old.private not in tombstone["sealed_ciphertext"]["B"]  # the key is gone, not hidden
    ring = read_ring(store)
    assert old.kid not in [e.kid for e in ring.of(JWT)] and [e.kid for e in ring.retired()] == [old.kid]
    assert [r["state"] for r in describe(ring) if r["kid"] == old.kid] == ["retired"]
    with pytest.raises(RetireRefused, match="already retired"):
        retire(store, kid=old.kid, settings=settings_for(tmp_path), force=True)
    assert old.kid not in [e.kid for e in reader.reload().of(JWT)]

    # Marked active again by a writer without the KEK: the tombstone does not open as a key.
    store.client.put_item(TableName=store.table,
                          Item={**tombstone, "state": {"S": "active"}, "public": before["public"]})
    assert old.kid not in [e.kid for e in read_ring(store).entries]
    # The whole item put back as it was: a process that saw the retirement keeps it.
    store.client.put_item(TableName=store.table, Item=before)
    assert old.kid not in [e.kid for e in reader.reload().of(JWT)]
