"""A malformed key ring item (SPEC §10): a writer of the key_ring table without the key-encryption key can
put anything there: a sealed part empty, of the wrong length or type, missing, garbage for base64, a kind,
kid or time of another type. Each such item is refused as a forged one is: never learnt (it neither signs,
verifies nor retires a key), named by one ERROR per process, and neither a process's start nor any of its
reloads fails on it, under AES-GCM or KMS."""
from __future__ import annotations

import logging
import os
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from common.config import load_settings
from common.database import dynamo
from common.keys.encryption import KmsKeyEncryptor, MalformedSeal, WrongKeyEncryptionKey
from common.keys.ring import JWT, REFRESH, RingContents, ensure_ring, read_ring, retire, rotate
from common.keys.ring_import import initial_entries
from common.keys.ring_reader import RingReader
from common.keys.ring_store import GENESIS_KEY_ID, MANIFEST_KEY_ID, KeyRingStore
from tests.conftest import unique_name
from tests.common.keys.test_key_ring import aes, create_ring_table
from tests.support.live import PASSWORD, register_device

Item = dict[str, Any]
IDENTITY = "citylogin-key-ring:t:jwt#1"


def settings_for(tmp_path):
    return load_settings({"data_dir": str(tmp_path)}, environ={})


def ring_items(store: KeyRingStore) -> list[Item]:
    return store.client.query(TableName=store.table, KeyConditionExpression="#r = :main", ConsistentRead=True,
                              ExpressionAttributeNames={"#r": "ring"},
                              ExpressionAttributeValues={":main": {"S": "main"}})["Items"]


def built_ring(client, table: str, encryptor, tmp_path) -> KeyRingStore:
    """A ring with a retirement: the oldest access-token key a tombstone, a manifest, two of each rotated kind."""
    create_ring_table(client, table)
    store = KeyRingStore(client, table, encryptor)
    ensure_ring(store, initial=lambda: initial_entries(settings_for(tmp_path)))
    rotate(store)
    rotate(store)
    retire(store, kid=read_ring(store).of(JWT)[0].kid, settings=settings_for(tmp_path), force=True)
    return store


def opened(contents: RingContents) -> set[tuple[str, str, bytes]]:
    return {(entry.key_id, entry.state, entry.private) for entry in contents.entries}


def errors(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


# --- the sealers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sealed", [
    {"nonce": b"", "ciphertext": b"x" * 32}, {"nonce": b"n" * 11, "ciphertext": b"x" * 32},
    {"nonce": b"n" * 13, "ciphertext": b"x" * 32}, {"nonce": b"n" * 200, "ciphertext": b"x" * 32},
    {"nonce": "n" * 12, "ciphertext": b"x" * 32}, {"ciphertext": b"x" * 32}, {"nonce": b"n" * 12},
    {"nonce": b"n" * 12, "ciphertext": b""}, {"nonce": b"n" * 12, "ciphertext": b"x" * 15},
    {"nonce": b"n" * 12, "ciphertext": "x" * 32}, {}])
def test_aes_gcm_refuses_a_malformed_sealed_value_as_not_sealed_by_any_key(sealed):
    with pytest.raises(MalformedSeal):
        aes().open(sealed, identity=IDENTITY)


def test_aes_gcm_tells_a_value_sealed_under_another_key_from_a_malformed_one():
    with pytest.raises(WrongKeyEncryptionKey) as raised:
        aes().open({"nonce": os.urandom(12), "ciphertext": os.urandom(48)}, identity=IDENTITY)
    assert not isinstance(raised.value, MalformedSeal)


def test_kms_refuses_a_malformed_ciphertext_before_asking_kms():
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        sealer = KmsKeyEncryptor(kms, kms.create_key()["KeyMetadata"]["KeyId"])
        for sealed in ({}, {"ciphertext": b""}, {"ciphertext": b"x" * 6145}, {"ciphertext": "x" * 40}):
            with pytest.raises(MalformedSeal):
                sealer.open(sealed, identity=IDENTITY)
        with pytest.raises(WrongKeyEncryptionKey):  # garbage of a possible length: KMS itself refuses it
            sealer.open({"ciphertext": os.urandom(200)}, identity=IDENTITY)


# --- a ring on DynamoDB Local, items put as a writer without the KEK would ----------------------------

def malformed_copies(items: list[Item]) -> dict[str, Item]:
    """What a writer without the key-encryption key can put over items of the ring, named by what is wrong."""
    by_kind: dict[str | None, list[Item]] = {}
    for item in items:
        by_kind.setdefault(item.get("kind", {}).get("S"), []).append(item)
    old_refresh = min(by_kind[REFRESH], key=lambda item: item["created_at"]["N"])
    tombstone = next(item for item in items if item.get("state", {}).get("S") == "retired")
    jwt = max(by_kind[JWT], key=lambda item: item["created_at"]["N"])
    fresh = {**jwt, "key_id": {"S": "jwt#added"}, "kid": {"S": "added"}}
    return {
        "an empty nonce": {**old_refresh, "sealed_nonce": {"B": b""}},
        "a nonce of 5 bytes": {**fresh, "key_id": {"S": "jwt#short"}, "kid": {"S": "short"},
                               "sealed_nonce": {"B": b"12345"}},
        "a nonce as text": {**fresh, "key_id": {"S": "jwt#text"}, "kid": {"S": "text"},
                            "sealed_nonce": {"S": "bm90IGEgbm9uY2U="}},
        "no ciphertext": {k: v for k, v in {**fresh, "key_id": {"S": "jwt#bare"}, "kid": {"S": "bare"}}.items()
                          if k != "sealed_ciphertext"},
        "a kind of another type": {**fresh, "key_id": {"S": "jwt#typed"}, "kind": {"N": "7"}, "kid": {"S": "typed"}},
        "a time no datetime holds": {**fresh, "key_id": {"S": "jwt#late"}, "kid": {"S": "late"},
                                     "created_at": {"N": "1E+125"}},
        "a tombstone's ring state with an empty nonce": {**tombstone, "ring_sealed_nonce": {"B": b""}},
        "a manifest of another type": {**next(i for i in items if i["key_id"]["S"] == MANIFEST_KEY_ID),
                                       "ring_version": {"S": "1"}, "sealed_nonce": {"B": b"\x00"}},
    }


def test_malformed_items_stop_no_start_nor_reload_and_each_is_one_error(dynamodb_endpoint, tmp_path, caplog):
    client = dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, read_timeout=20)
    store = built_ring(client, unique_name("ring"), aes(), tmp_path)
    before = read_ring(store)
    running = RingReader(store, before)  # a process started before the items were put
    copies = malformed_copies(ring_items(store))
    for item in copies.values():
        client.put_item(TableName=store.table, Item=item)

    caplog.clear()
    with caplog.at_level(logging.ERROR):
        started = read_ring(KeyRingStore(client, store.table, store.encryptor))  # a process starting now
        reloads = [running.reload() for _ in range(3)]
    old_refresh = copies["an empty nonce"]["key_id"]["S"]
    kept = {key for key in opened(before) if key[0] != old_refresh}
    for contents in (started, *reloads):
        assert opened(contents) == kept  # every other key, nothing of what was put
        assert contents.ring.retired == before.ring.retired  # the retirement holds (its tombstone), none added
    assert {"added", "short", "text", "bare", "late"}.isdisjoint(entry.kid for entry in started.entries)
    assert len(errors(caplog)) == 2 * len(copies)  # the starting process and the running one: once each
    assert all("\n" not in message and "sealed_" not in message for message in errors(caplog))
    assert len([m for m in errors(caplog) if "ring state" in m]) == 2  # the tombstone's: it still holds
    assert len([m for m in errors(caplog) if "manifest" in m]) == 2

    rotate(store)  # the ring still changes: a retirement writes over the manifest put there
    second = read_ring(store).of(JWT)[0].key_id
    retire(store, kid=second, settings=settings_for(tmp_path), force=True)
    manifest = store.load().manifest
    assert manifest is not None and manifest.retired == before.ring.retired | {second}


@pytest.mark.slow  # two servers; the start and reload test keeps the rule in the fast tier
def test_a_process_starts_and_serves_with_malformed_items_in_its_ring(make_server, tmp_path, caplog):
    url, ctx = make_server()
    rotate(ctx.key_ring)
    retire(ctx.key_ring, kid=read_ring(ctx.key_ring).of(JWT)[0].kid, settings=settings_for(tmp_path), force=True)
    for item in malformed_copies(ring_items(ctx.key_ring)).values():
        ctx.dynamodb.put_item(TableName=ctx.tables.key_ring, Item=item)
    caplog.clear()
    ctx.refresh_secrets.refresh(max_age=0)  # the running process's reload
    assert not [record for record in caplog.records if "not re-read" in record.getMessage()]
    fresh_url, _ = make_server()  # a restart, a scale-out
    assert [message for message in errors(caplog) if "jwt#short" in message]
    register_device(fresh_url).login(PASSWORD)
    register_device(url).login(PASSWORD)


def test_under_kms_a_malformed_item_is_refused_and_the_ring_opens(tmp_path, caplog):
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        client = boto3.client("dynamodb", region_name="us-east-1")
        store = built_ring(client, "ring", KmsKeyEncryptor(kms, kms.create_key()["KeyMetadata"]["KeyId"]), tmp_path)
        before = read_ring(store)
        jwt = next(item for item in ring_items(store) if item.get("kind", {}).get("S") == JWT
                   and item.get("state", {}).get("S") == "active")
        for number, ciphertext in enumerate(({"B": b"x" * 7000}, {"S": "garbage"}, {"B": os.urandom(64)})):
            client.put_item(TableName="ring", Item={**jwt, "key_id": {"S": f"jwt#bad{number}"},
                                                    "kid": {"S": f"bad{number}"}, "sealed_ciphertext": ciphertext})
        with caplog.at_level(logging.ERROR):
            assert opened(read_ring(store)) == opened(before)
        assert len([m for m in errors(caplog) if "jwt#bad" in m]) == 3


# --- any item, generated --------------------------------------------------------------------------

class ListedRing(KeyRingStore):
    """A ring whose items are given, not queried: anything a client could hand back, and more."""

    def __init__(self, store: KeyRingStore, items: list[Item]) -> None:
        super().__init__(store.client, store.table, store.encryptor)
        self.items = items

    def _query(self) -> list[Item]:
        return self.items


@pytest.fixture(scope="module")
def base_ring(dynamodb_endpoint, tmp_path_factory) -> tuple[KeyRingStore, list[Item], RingContents]:
    client = dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, read_timeout=20)
    store = built_ring(client, unique_name("ring"), aes(), tmp_path_factory.mktemp("ring"))
    return store, ring_items(store), read_ring(store)


_TEXT = st.one_of(st.sampled_from(["", "aes-gcm", "kms", "active", "retired", "jwt", "refresh", "ca", "meta",
                                   "!!not base64==", "bm9uY2U=", "jwt#\n", "\x00", "²"]), st.text(max_size=12))
_NUMBER = st.one_of(st.sampled_from(["0", "-1", "1.5", "1E+125", "-1E+125", "9" * 38, "NaN", "Infinity", "sNaN",
                                     "1e999999999", "9" * 50, "9" * 5000, "²", "", "abc"]),
                    st.integers(-10**12, 10**12).map(str))
_LEAF = st.one_of(st.builds(lambda v: {"S": v}, _TEXT), st.builds(lambda v: {"N": v}, _NUMBER),
                  st.builds(lambda v: {"B": v}, st.one_of(st.binary(max_size=40), st.binary(min_size=12, max_size=12))),
                  st.builds(lambda v: {"SS": v}, st.lists(_TEXT, min_size=1, max_size=3)),
                  st.builds(lambda v: {"NS": v}, st.lists(_NUMBER, min_size=1, max_size=2)),
                  st.builds(lambda v: {"BS": v}, st.lists(st.binary(max_size=4), min_size=1, max_size=2)),
                  st.builds(lambda v: {"BOOL": v}, st.booleans()), st.just({"NULL": True}), st.just({}),
                  st.builds(lambda v: {"B": v}, st.text(max_size=16)))  # what no client hands back
_VALUE = st.one_of(_LEAF, st.builds(lambda v: {"L": v}, st.lists(_LEAF, max_size=2)),
                   st.builds(lambda v: {"M": v}, st.dictionaries(st.text(max_size=3), _LEAF, max_size=2)))
_FIELDS = ["kind", "kid", "created_at", "state", "sealed_with", "sealed_nonce", "sealed_ciphertext", "public",
           "ring_version", "ring_retired", "ring_sealed_nonce", "ring_sealed_ciphertext"]
_EDIT = st.one_of(st.tuples(st.sampled_from(_FIELDS), _VALUE), st.tuples(st.sampled_from(_FIELDS), st.none()))


def _replaceable(items: list[Item], contents: RingContents) -> list[Item]:
    """Items whose loss leaves every kind a key: the genesis marker, the manifest, the tombstone, and each
    rotated kind's older key."""
    newest = {entry.item_key for kind in (JWT, "jwt_rsa", "jwt_ec", REFRESH, "ca") for entry in contents.of(kind)[-1:]}
    return [item for item in items if item["key_id"]["S"] not in newest]


def malformed(data, items: list[Item], contents: RingContents) -> tuple[Item, bool]:
    """An item of the ring edited (in its place) or one added under a new key, with fields set to any type."""
    draw = data.draw
    original = dict(items[draw(st.integers(0, len(items) - 1))])
    in_place = draw(st.booleans()) and original in _replaceable(items, contents)
    item = dict(original)
    if not in_place:
        key_id = draw(st.one_of(st.sampled_from(["jwt#evil", "ca#x", "refresh#\n", GENESIS_KEY_ID + "#",
                                                 "jwt#" + "k" * 300]), _TEXT))
        item["key_id"] = {"S": key_id}
    for name, value in draw(st.lists(_EDIT, min_size=1, max_size=5)):
        if value is None:
            item.pop(name, None)
        else:
            item[name] = value
    assume(item != original)
    return item, in_place


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_no_malformed_item_is_learnt_or_stops_a_start_or_a_reload(base_ring, data):
    store, items, before = base_ring
    edits = [malformed(data, items, before) for _ in range(data.draw(st.integers(1, 4)))]
    replaced = {item["key_id"]["S"] for item, in_place in edits if in_place}
    given_items = [item for item in items if item["key_id"]["S"] not in replaced] + [item for item, _ in edits]
    listed = ListedRing(store, given_items)

    started = read_ring(listed)  # a process starting now: never an error
    reloaded = RingReader(listed, before).reload()  # a process running since before: never an error
    assert reloaded is not before  # read, not the last read kept after a failure
    untouched = {entry.key_id for entry in before.entries if entry.item_key not in replaced}
    for contents in (started, reloaded):
        # What opens is the ring's own keys, each as sealed (a key whose unsealed time or public part was
        # edited stays that key): every one left in place, nothing else, no retirement the ring did not make.
        assert {key for key in opened(before) if key[0] in untouched} <= opened(contents) <= opened(before)
        assert contents.ring.retired <= before.ring.retired and contents.ring.version <= before.ring.version
        assert not contents.missing_kinds()


# --- a running process -----------------------------------------------------------------------------

def test_a_running_process_keeps_its_keys_when_only_keys_it_saw_retired_are_left(dynamodb_endpoint, tmp_path,
                                                                                 caplog):
    """The newer refresh secret deleted and the older one's item from before its retirement put back: a
    process started now takes it (nothing says otherwise), but one that saw the retirement keeps what it read."""
    from common.keys.ring_reader import RefreshSecrets

    client = dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, read_timeout=20)
    table = unique_name("ring")
    create_ring_table(client, table)
    store = KeyRingStore(client, table, aes())
    ensure_ring(store, initial=lambda: initial_entries(settings_for(tmp_path)))
    rotate(store)
    old, new = read_ring(store).of(REFRESH)
    before = next(item for item in ring_items(store) if item["key_id"]["S"] == old.item_key)
    retire(store, kid=old.key_id, settings=settings_for(tmp_path), force=True)
    reader = RingReader(store, read_ring(store))
    secrets = RefreshSecrets(reader, reload_seconds=60)
    for key_id in (new.item_key, MANIFEST_KEY_ID):
        client.delete_item(TableName=table, Key={"ring": {"S": "main"}, "key_id": {"S": key_id}})
    client.put_item(TableName=table, Item=before)

    caplog.clear()
    for _ in range(3):
        secrets.refresh(max_age=0)
        assert secrets.get(new.kid) == new.private and secrets.get(old.kid) is None
    assert len([message for message in errors(caplog) if "no refresh key left" in message]) == 1
