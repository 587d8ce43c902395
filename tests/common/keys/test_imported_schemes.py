"""common.keys.imported_schemes (SPEC §17, §6): the imported scheme keys a deployment's stored hashes may use,
recorded by the import in one sealed item of the key_ring table, at most 8 and each within the bounds, and
learnt by every process at start and on reload. Against DynamoDB Local; verifications counted, never timed."""
from __future__ import annotations

import logging
import threading
from collections import Counter

import pytest

from common.crypto import imported_hashes
from common.crypto.passwords import IMPORTED_PREFIX, PasswordHasher
from common.database import dynamo
from common.keys.imported_schemes import (HASHES_LEFT, KEY_ID, MAX_KEYS, NOT_OPENING, RECENTLY_USED,
                                          RETIRE_AFTER_SECONDS, RETIRED, RING, UNSEALED, ImportedSchemes,
                                          ImportedSchemeStore, record_schemes, retire_schemes)
from common.keys.password_parameter_store import PasswordParameterStore
from common.keys.password_parameters import PasswordParameters
from tests.common.keys.test_key_ring import aes, create_ring_table
from tests.conftest import unique_name

NOW = 1_750_000_000
LONG_AGO = NOW - RETIRE_AFTER_SECONDS - 1
KEYS = ["bcrypt$4", "pbkdf2-sha256$1000,32", "scrypt$4,8,1", "argon2id$64,1,1"]
LOGGER = "common.keys.imported_schemes"
SEALER = aes(bytes(range(32)))  # the deployment's key-encryption key


@pytest.fixture(scope="module")
def client(dynamodb_endpoint):
    return dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, read_timeout=20)


@pytest.fixture
def table(client) -> str:
    name = unique_name("ring")
    create_ring_table(client, name)
    return name


@pytest.fixture
def verified(monkeypatch) -> Counter:
    """Every imported verify of this process, by the scheme key of the hash verified."""
    counts: Counter = Counter()
    real = imported_hashes.verify

    def spy(canonical, password):
        counts[imported_hashes.scheme_key(canonical)] += 1
        return real(canonical, password)
    monkeypatch.setattr(imported_hashes, "verify", spy)
    return counts


def process(client, table, encryptor=None) -> tuple[PasswordHasher, ImportedSchemes]:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    schemes = ImportedSchemes(ImportedSchemeStore(client, table, encryptor or SEALER), hasher, reload_seconds=3600)
    schemes.start()
    return hasher, schemes


def stored_item(client, table) -> dict:
    return client.get_item(TableName=table, ConsistentRead=True,
                           Key={"ring": {"S": RING}, "key_id": {"S": KEY_ID}})["Item"]


def test_recorded_keys_are_sealed_and_every_check_verifies_one_of_each(client, table, verified):
    assert record_schemes(client, table, KEYS, encryptor=SEALER, now=NOW - 5) == []
    assert record_schemes(client, table, KEYS[:2], encryptor=SEALER, now=NOW) == []  # recorded again
    item = stored_item(client, table)
    assert item["list_version"] == {"N": "2"}
    assert item["recorded_at"]["M"][KEYS[0]] == {"N": str(NOW)} and item["recorded_at"]["M"][KEYS[3]] == {
        "N": str(NOW - 5)}
    hasher, _ = process(client, table)
    assert sorted(hasher.imported_keys()) == sorted(KEYS)
    assert not hasher.check(None, "wrong")
    assert verified == Counter({key: 1 for key in KEYS})
    verified.clear()
    own = IMPORTED_PREFIX + imported_hashes.dummy_hash("scrypt$4,8,1")
    assert not hasher.check(own, "wrong")
    assert verified == Counter({key: 1 for key in KEYS})


def test_keys_beyond_the_bounds_or_past_eight_are_refused(client, table):
    beyond = ["bcrypt$17", "scrypt$24,8,1", "nonsense", "bcrypt$04"]
    assert record_schemes(client, table, [*KEYS, *beyond], encryptor=SEALER) == beyond
    more = [f"pbkdf2-sha256${2000 + n},32" for n in range(MAX_KEYS)]
    refused = record_schemes(client, table, more, encryptor=SEALER)
    assert refused == more[MAX_KEYS - len(KEYS):]
    hasher, _ = process(client, table)
    assert len(hasher.imported_keys()) == MAX_KEYS


def test_a_running_process_learns_keys_recorded_later_at_its_next_read(client, table):
    hasher, schemes = process(client, table)
    assert hasher.imported_keys() == []
    record_schemes(client, table, KEYS[:1], encryptor=SEALER)
    schemes.refresh()
    assert hasher.imported_keys() == []  # read less than reload_seconds ago
    schemes.refresh(max_age=0)
    assert hasher.imported_keys() == KEYS[:1]


def test_the_key_ring_reload_reads_them_with_the_parameter_sets(client, table):
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    parameters = PasswordParameters(PasswordParameterStore(client, table, SEALER), hasher, reload_seconds=3600)
    parameters.start()
    parameters.imported = ImportedSchemes(ImportedSchemeStore(client, table, SEALER), hasher, reload_seconds=3600)
    record_schemes(client, table, KEYS[:2], encryptor=SEALER)
    parameters.refresh(max_age=0)
    assert sorted(hasher.imported_keys()) == sorted(KEYS[:2])


def test_a_record_written_without_the_key_is_refused_once_and_never_learnt(client, table, caplog):
    record_schemes(client, table, KEYS[:1], encryptor=SEALER)
    client.update_item(TableName=table, Key={"ring": {"S": RING}, "key_id": {"S": KEY_ID}},
                       UpdateExpression="SET scheme_keys = :k", ExpressionAttributeValues={
                           ":k": {"S": "bcrypt$4\nbcrypt$16"}})
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        hasher, schemes = process(client, table)
        schemes.refresh(max_age=0)
    assert hasher.imported_keys() == []
    assert [r.getMessage() for r in caplog.records].count(next(r.getMessage() for r in caplog.records)) == 1
    assert NOT_OPENING in caplog.text
    client.delete_item(TableName=table, Key={"ring": {"S": RING}, "key_id": {"S": KEY_ID}})
    client.put_item(TableName=table, Item={"ring": {"S": RING}, "key_id": {"S": KEY_ID}, "list_version": {"N": "7"},
                                           "scheme_keys": {"S": "bcrypt$16"}})
    caplog.clear()
    hasher, _ = process(client, table)
    assert hasher.imported_keys() == [] and UNSEALED in caplog.text
    assert record_schemes(client, table, KEYS[:1], encryptor=SEALER) == []  # the import writes it again, sealed
    hasher, _ = process(client, table)
    assert hasher.imported_keys() == KEYS[:1]


def test_another_key_encryption_key_does_not_open_it(client, table):
    record_schemes(client, table, KEYS[:1], encryptor=SEALER)
    hasher, _ = process(client, table, encryptor=aes(b"\x01" * 32))
    assert hasher.imported_keys() == []


def test_imports_recording_at_once_all_end_in_the_record(client, table):
    keys = [f"pbkdf2-sha256${1000 + n},32" for n in range(MAX_KEYS)]
    threads = [threading.Thread(target=record_schemes, args=(client, table, [key]), kwargs={"encryptor": SEALER})
               for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    hasher, _ = process(client, table)
    assert sorted(hasher.imported_keys()) == sorted(keys)


def test_retire_removes_only_keys_no_hash_and_no_recent_import_uses(client, table):
    record_schemes(client, table, KEYS[:3], encryptor=SEALER, now=LONG_AGO)
    record_schemes(client, table, KEYS[3:], encryptor=SEALER, now=NOW - 60)
    running, schemes = process(client, table)
    done = retire_schemes(client, table, encryptor=SEALER, now=NOW,
                          count_hashes=lambda: Counter({KEYS[1]: 2, "bcrypt$9": 1}))
    assert {(r.key, r.hashes, r.outcome) for r in done} == {
        (KEYS[0], 0, RETIRED), (KEYS[1], 2, HASHES_LEFT), (KEYS[2], 0, RETIRED), (KEYS[3], 0, RECENTLY_USED)}
    schemes.refresh(max_age=0)
    assert sorted(running.imported_keys()) == sorted(KEYS)  # a running process forgets none
    later, _ = process(client, table)
    assert sorted(later.imported_keys()) == sorted([KEYS[1], KEYS[3]])


def test_retire_keeps_a_key_an_import_records_during_the_count(client, table):
    record_schemes(client, table, KEYS[:1], encryptor=SEALER, now=LONG_AGO)

    def count_while_an_import_records():
        record_schemes(client, table, KEYS[:1], encryptor=SEALER, now=NOW)  # then writes accounts of it
        return Counter()
    done = retire_schemes(client, table, encryptor=SEALER, now=NOW, count_hashes=count_while_an_import_records)
    assert [(r.key, r.outcome) for r in done] == [(KEYS[0], RECENTLY_USED)]
    later, _ = process(client, table)
    assert later.imported_keys() == KEYS[:1]


def test_a_key_met_in_a_stored_hash_is_read_again_off_the_check_and_learnt_if_recorded(client, table, caplog):
    hasher, schemes = process(client, table)
    hasher.on_unknown_key = schemes.met
    record_schemes(client, table, ["scrypt$4,8,1"], encryptor=SEALER)  # an import, since the process's last read
    assert not hasher.check(IMPORTED_PREFIX + imported_hashes.dummy_hash("scrypt$4,8,1"), "wrong")
    assert not hasher.check(IMPORTED_PREFIX + imported_hashes.dummy_hash("bcrypt$4"), "wrong")  # not recorded
    schemes.settle()
    assert hasher.imported_keys() == ["scrypt$4,8,1"]
    assert "did not know" in caplog.text
