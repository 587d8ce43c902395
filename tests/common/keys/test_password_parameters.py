"""common.keys.password_parameters and its store (SPEC §6): the Argon2id parameter sets a deployment has hashed with,
recorded in the key_ring table by the processes themselves, sealed under the key-encryption key, read by
every process at start and on reload within the bounds (at most 8 sets, none costlier than 4 × the current
one), and retired only when no stored hash and no recent process uses them. Against DynamoDB Local, with
tiny parameters; the verifications are counted with a spy, never timed. Across processes, routes and the
CLI: tests/citylogin/test_dormant_passwords.py and tests/citylogin/test_password_parameter_seals.py."""
from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from pathlib import Path

import argon2
import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from common.crypto.passwords import PasswordHasher, hash_parameters
from common.database import dynamo
from common.keys.encryption import KmsKeyEncryptor
from common.keys.password_parameter_store import (MANIFEST_BEHIND, MANIFEST_KEY_ID, MISSING, NOT_OPENING, PUT_BACK,
                                                  RING, TOO_MANY, UNSEALED, UNUSABLE, PasswordParameterStore, bounded,
                                                  key_of, parameters_of)
from common.keys.password_parameters import (CURRENT, HASHES_LEFT, RECENTLY_USED, RETIRED, RETIRE_AFTER_SECONDS,
                                             PasswordParameters, add_sets, record_found, retire_unused)
from tests.conftest import unique_name
from tests.common.keys.test_key_ring import aes, create_ring_table
from tests.support import product
from tests.support.tcp_faults import refused_endpoint

# Tiny sets (t, m KiB, p): a hash costs microseconds. The cost of a set is t × m: CURRENT_SET's is 8,
# so nothing above 32 is verified by a process of CURRENT_SET.
CURRENT_SET, OLD_SET, OLDER_SET = (1, 8, 1), (1, 16, 1), (1, 24, 1)
FOUR_TIMES, FIVE_TIMES = (4, 8, 1), (5, 8, 1)
NOW = 1_750_000_000
LONG_AGO = NOW - RETIRE_AFTER_SECONDS - 1
LOGGER = "common.keys.password_parameters"


def hasher_of(parameters, **more) -> PasswordHasher:
    t, m, p = parameters
    return PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, **more)


@pytest.fixture(scope="module")
def client(dynamodb_endpoint):
    return dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, read_timeout=20)


@pytest.fixture
def store(client) -> PasswordParameterStore:
    table = unique_name("ring")
    create_ring_table(client, table)
    return PasswordParameterStore(client, table, aes())


@pytest.fixture
def verified(monkeypatch) -> Counter:
    """Every Argon2 verify of this process, by the parameters of the hash verified."""
    counts: Counter = Counter()
    real = argon2.PasswordHasher.verify

    def spy(self, hash, password):
        counts[hash_parameters(hash)] += 1
        return real(self, hash, password)
    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy)
    return counts


def item(store: PasswordParameterStore, key_id) -> dict:
    key_id = key_id if isinstance(key_id, str) else key_of(key_id)
    return store.client.get_item(TableName=store.table, ConsistentRead=True, Key={
        "ring": {"S": RING}, "key_id": {"S": key_id}})["Item"]


def put(store: PasswordParameterStore, key_id: str, attributes: dict) -> None:
    """An item written straight into DynamoDB, as a writer without the key-encryption key can."""
    store.client.put_item(TableName=store.table, Item={**attributes, "ring": {"S": RING}, "key_id": {"S": key_id}})


def delete(store: PasswordParameterStore, key_id: str) -> None:
    store.client.delete_item(TableName=store.table, Key={"ring": {"S": RING}, "key_id": {"S": key_id}})


def recorded_by_a_process(store: PasswordParameterStore, parameters, *, now: int) -> None:
    """What the start of a process hashing with `parameters` at `now` writes."""
    PasswordParameters(store, hasher_of(parameters), reload_seconds=60, clock=lambda: float(now)).start()


def started(store: PasswordParameterStore, parameters=CURRENT_SET, **more) -> PasswordHasher:
    hasher = hasher_of(parameters, **more)
    PasswordParameters(store, hasher, reload_seconds=60).start()
    return hasher


def reasons(store: PasswordParameterStore) -> set[tuple[str, str]]:
    return {(refusal.name, refusal.reason) for refusal in store.load().refused}


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]


# --- the records ----------------------------------------------------------------------------

def test_a_set_in_use_is_recorded_sealed_once_and_its_last_use_only_moves_forward(store):
    recorded_by_a_process(store, CURRENT_SET, now=NOW)
    recorded_by_a_process(store, CURRENT_SET, now=NOW + 60)
    recorded_by_a_process(store, CURRENT_SET, now=NOW + 30)  # a process whose clock is behind
    record = dynamo.from_item(item(store, CURRENT_SET))
    assert (record["first_used"], record["last_used"]) == (NOW, NOW + 60)
    assert record["sealed_with"] == "aes-gcm" and record["list_sets"] == "t=1,m=8,p=1" and record["list_version"] == 1
    add_sets(store, [OLD_SET], current=CURRENT_SET, now=NOW + 90)  # a hash met
    loaded = store.load()
    assert {p: r.last_used for p, r in loaded.records.items()} == {CURRENT_SET: NOW + 60, OLD_SET: NOW + 90}
    assert loaded.listed.version == 2 and loaded.refused == []
    assert dynamo.from_item(item(store, CURRENT_SET))["list_sets"] == "t=1,m=16,p=1; t=1,m=8,p=1"  # every record


def test_records_that_name_no_set_are_refused(store, caplog):
    for key_id in ("nonsense", "t=1,m=8,p=1;t=1,m=16,p=1", "t=01,m=8,p=1"):
        put(store, key_id, {"first_used": {"N": "1"}, "last_used": {"S": "x"}})
    hasher = started(store)
    assert reasons(store) == {("'nonsense'", UNUSABLE), ("'t=1,m=8,p=1;t=1,m=16,p=1'", UNUSABLE),
                              ("'t=01,m=8,p=1'", UNUSABLE)}
    assert hasher.known_sets() == [CURRENT_SET] and len(errors(caplog)) == 3


def test_the_key_ring_s_own_partition_is_untouched(store):
    started(store)
    keys = [dynamo.from_item(i) for i in store.client.scan(TableName=store.table)["Items"]]
    assert {k["ring"] for k in keys} == {RING}  # never ring "main", which the key ring reads alone
    assert {k["key_id"] for k in keys} == {key_of(CURRENT_SET), MANIFEST_KEY_ID}


@given(st.tuples(st.integers(1, 30), st.integers(1, 5_000_000), st.integers(1, 20)),
       st.text(alphabet="tmp=,; 0+-\t\u0663", max_size=3), st.integers(0, 30))
def test_a_record_s_key_names_a_set_only_in_the_form_written(parameters, junk, at):
    key_id = key_of(parameters)
    assert parameters_of(key_id) == (parameters if parameters[1] >= 8 * parameters[2] else None)
    edited = key_id[:at] + junk + key_id[at:]
    parsed = parameters_of(edited)
    assert parsed is None or key_of(parsed) == edited  # one key per set: no other spelling is a record


_ATTRIBUTE = st.one_of(st.builds(lambda v: {"S": v}, st.sampled_from(["", "aes-gcm", "kms", "t=1,m=8,p=1",
                                                                       "t=1,m=8,p=1; t=1,m=16,p=1", "1"])),
                       st.builds(lambda v: {"N": str(v)}, st.integers(0, 3)),
                       st.builds(lambda v: {"B": v}, st.binary(max_size=40)),
                       st.builds(lambda v: {"SS": v}, st.lists(st.text(max_size=5), min_size=1, max_size=2)))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["t=1,m=8,p=1", "t=1,m=16,p=1", MANIFEST_KEY_ID, "meta#x", "\n\x00"]),
                       st.dictionaries(st.sampled_from(["list_version", "list_sets", "sealed_with", "sealed_nonce",
                                                        "sealed_ciphertext", "first_used", "last_used"]),
                                       _ATTRIBUTE, max_size=7), max_size=4))
def test_no_item_written_without_the_key_is_listed_or_breaks_a_read(items):
    store = PasswordParameterStore(None, "ring", aes(b"k" * 32))
    store._query = lambda: [{**attributes, "ring": {"S": RING}, "key_id": {"S": key_id}}  # type: ignore[method-assign]
                            for key_id, attributes in items.items()]
    loaded = store.load()
    assert loaded.listed.sets == frozenset() and loaded.records == {}
    assert all("\n" not in refusal.message("ring") for refusal in loaded.refused)


# --- what a process knows -------------------------------------------------------------------

def test_a_process_records_its_set_and_checks_every_recorded_one_without_the_setting(store, verified):
    recorded_by_a_process(store, OLD_SET, now=LONG_AGO)  # an earlier process's
    hasher = hasher_of(CURRENT_SET)
    dormant = hasher_of(OLD_SET).hash("correct horse")
    PasswordParameters(store, hasher, reload_seconds=60).start()
    assert store.load().listed.sets == {CURRENT_SET, OLD_SET}
    assert hasher.known_sets() == [CURRENT_SET, OLD_SET]

    costs = {}
    for name, stored in (("unknown", None), ("current", hasher.hash("correct horse")), ("dormant", dormant)):
        verified.clear()
        assert not hasher.check(stored, "wrong")
        costs[name] = dict(verified)
    assert costs == {name: {CURRENT_SET: 1, OLD_SET: 1} for name in costs}
    assert hasher.check(dormant, "correct horse")


def test_a_running_process_learns_a_set_recorded_later_at_its_next_read(store, verified):
    hasher = hasher_of(CURRENT_SET)
    known = PasswordParameters(store, hasher, reload_seconds=60)
    known.start()
    recorded_by_a_process(store, OLD_SET, now=NOW)  # another process, started since
    known.refresh()  # read less than a reload interval ago: not yet
    assert hasher.known_sets() == [CURRENT_SET]
    known.refresh(max_age=0)
    assert hasher.known_sets() == [CURRENT_SET, OLD_SET]
    verified.clear()
    hasher.check(None, "wrong")
    assert verified == {CURRENT_SET: 1, OLD_SET: 1}


def test_a_set_met_in_a_stored_hash_is_recorded_and_learnt_off_the_check(store, verified, caplog):
    hasher = hasher_of(CURRENT_SET)
    known = PasswordParameters(store, hasher, reload_seconds=60)
    known.start()
    hasher.on_unknown_set = known.record_met
    imported = hasher_of(OLDER_SET).hash("correct horse")  # made elsewhere: no process recorded it
    assert not hasher.check(imported, "wrong")
    known.settle()
    assert OLDER_SET in store.load().records
    assert hasher.known_sets() == [CURRENT_SET, OLDER_SET]
    verified.clear()
    hasher.check(None, "wrong")
    assert verified == {CURRENT_SET: 1, OLDER_SET: 1}
    assert "t=1,m=24,p=1 met in a stored hash are recorded" in caplog.text
    assert "CITYLOGIN_ARGON2_LEGACY_PARAMETERS" not in caplog.text  # nothing left to the operator
    hasher.check(imported, "wrong")
    assert caplog.text.count("did not know") == 1


def test_the_setting_still_adds_sets_of_its_own(store):
    hasher = started(store, legacy=[OLDER_SET])
    assert hasher.known_sets() == [CURRENT_SET, OLDER_SET]
    assert store.load().listed.sets == {CURRENT_SET}  # declared, not recorded


def test_a_dynamodb_outage_keeps_the_sets_known_and_is_one_log_line(store, caplog):
    recorded_by_a_process(store, OLD_SET, now=NOW)
    hasher = started(store)
    with refused_endpoint() as endpoint, caplog.at_level(logging.WARNING, logger=LOGGER):
        down = dynamo.make_client(region="us-east-1", endpoint_url=endpoint, connect_timeout=0.2, read_timeout=0.2,
                                  max_attempts=1)
        known = PasswordParameters(PasswordParameterStore(down, store.table, store.encryptor), hasher,
                                   reload_seconds=60)
        for _ in range(5):
            known.refresh(max_age=0)
    assert hasher.known_sets() == [CURRENT_SET, OLD_SET]
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 1 and "keeping the 2 known" in lines[0], lines


def test_a_process_records_its_set_again_while_it_runs(store):
    clock = [float(NOW)]
    known = PasswordParameters(store, hasher_of(CURRENT_SET), reload_seconds=60, clock=lambda: clock[0])
    known.start()
    clock[0] += 600
    known.refresh(max_age=0)
    assert dynamo.from_item(item(store, CURRENT_SET))["last_used"] == NOW  # not every read writes
    clock[0] += 3600
    known.refresh()
    assert dynamo.from_item(item(store, CURRENT_SET))["last_used"] == NOW + 4200  # a heartbeat: retire keeps it


def test_processes_adding_sets_at_once_all_end_in_the_list(store):
    sets = [(1, 8 + i, 1) for i in range(6)]
    barrier = threading.Barrier(len(sets))

    def start(parameters) -> None:
        barrier.wait()
        recorded_by_a_process(store, parameters, now=NOW)
    threads = [threading.Thread(target=start, args=(parameters,)) for parameters in sets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    loaded = store.load()
    assert loaded.listed.sets == set(sets) and set(loaded.records) == set(sets) and loaded.refused == []


# --- sealed: what a writer without the key-encryption key can do ----------------------------------

@pytest.fixture
def deployment(store) -> PasswordParameterStore:
    """Two sealed sets, as two processes recorded them."""
    recorded_by_a_process(store, OLD_SET, now=NOW)
    recorded_by_a_process(store, CURRENT_SET, now=NOW)
    return store


def test_records_put_or_edited_without_the_key_are_refused_and_never_learnt(deployment, verified, caplog):
    store = deployment
    put(store, "t=4,m=8,p=1", {"first_used": {"N": "1"}, "last_used": {"N": str(NOW)}})  # as the previous release
    sealed = item(store, OLD_SET)
    put(store, "t=1,m=32,p=1", sealed)  # a sealed record's seal copied to another key
    edited = {**item(store, CURRENT_SET), "list_sets": {"S": "t=1,m=8,p=1; t=1,m=16,p=1; t=1,m=28,p=1"}}
    put(store, "t=1,m=28,p=1", edited)  # its list edited to name itself, the seal kept
    put(store, "t=2,m=16,p=1", sealed)  # the record of OLD_SET, moved: its t changed, the seal kept
    delete(store, key_of(OLD_SET))
    put(store, "t=3,m=8,p=1", {**sealed, "sealed_ciphertext": {"B": b"\x00" * 38}, "sealed_nonce": {"B": b""}})
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        hasher = started(store)
        verified.clear()
        assert not hasher.check(None, "wrong")
    assert hasher.known_sets() == [CURRENT_SET, OLD_SET]  # the deleted set stays: the sealed list names it
    assert verified == {CURRENT_SET: 1, OLD_SET: 1}
    assert reasons(store) == {("t=4,m=8,p=1", UNSEALED), ("t=1,m=32,p=1", NOT_OPENING), ("t=1,m=28,p=1", NOT_OPENING),
                              ("t=2,m=16,p=1", NOT_OPENING), ("t=3,m=8,p=1", NOT_OPENING), ("t=1,m=16,p=1", MISSING)}
    lines = errors(caplog)
    assert len(lines) == 6, lines
    for key_id in ("t=4,m=8,p=1", "t=1,m=32,p=1", "t=1,m=28,p=1", "t=2,m=16,p=1", "t=3,m=8,p=1", "t=1,m=16,p=1"):
        assert sum(f"record {key_id} in {store.table}" in line for line in lines) == 1, (key_id, lines)
    assert "citylogin password-parameters record" in next(line for line in lines if "t=4,m=8,p=1" in line)


def test_a_seal_copied_onto_another_listed_set_s_record_does_not_open(deployment):
    store = deployment
    put(store, key_of(CURRENT_SET), item(store, OLD_SET))  # the seals name the same list: only the key differs
    put(store, key_of(OLD_SET), item(store, MANIFEST_KEY_ID))
    assert reasons(store) == {(key_of(CURRENT_SET), NOT_OPENING), (key_of(OLD_SET), NOT_OPENING),
                              (key_of(CURRENT_SET), MISSING), (key_of(OLD_SET), MISSING)}
    assert store.load().listed.sets == {CURRENT_SET, OLD_SET}  # the manifest's list holds


def test_under_kms_a_record_is_sealed_in_a_context_naming_it():
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        key_id, other_key = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_ring_table(client, "ring")
        store = PasswordParameterStore(client, "ring", KmsKeyEncryptor(kms, key_id))
        recorded_by_a_process(store, OLD_SET, now=NOW)
        recorded_by_a_process(store, CURRENT_SET, now=NOW)
        assert item(store, CURRENT_SET)["sealed_with"] == {"S": "kms"} and reasons(store) == set()
        put(store, "t=1,m=32,p=1", item(store, OLD_SET))
        assert reasons(store) == {("t=1,m=32,p=1", NOT_OPENING)}
        assert reasons(PasswordParameterStore(client, "ring", KmsKeyEncryptor(kms, other_key))) >= {
            (key_of(OLD_SET), NOT_OPENING), (key_of(CURRENT_SET), NOT_OPENING)}


def test_each_refusal_is_one_error_per_process_not_one_per_read(deployment, caplog):
    put(deployment, "t=4,m=8,p=1", {"last_used": {"N": str(NOW)}})
    known = PasswordParameters(deployment, hasher_of(CURRENT_SET), reload_seconds=60)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        known.start()
        for _ in range(3):
            known.refresh(max_age=0)
        PasswordParameters(deployment, hasher_of(CURRENT_SET), reload_seconds=60).start()  # another process
    assert len(errors(caplog)) == 2


def test_a_deleted_record_or_manifest_leaves_the_sealed_list_whole(deployment, caplog):
    store = deployment
    delete(store, MANIFEST_KEY_ID)
    delete(store, key_of(OLD_SET))
    assert reasons(store) == {(key_of(OLD_SET), MISSING), (MANIFEST_KEY_ID, MANIFEST_BEHIND)}
    assert started(store, OLDER_SET).known_sets() == [OLDER_SET, CURRENT_SET, OLD_SET]  # its start rewrites all
    assert reasons(store) == set() and store.load().listed.sets == {CURRENT_SET, OLD_SET, OLDER_SET}


def test_a_record_put_back_after_its_retirement_stays_retired(deployment, caplog):
    store = deployment
    before, old_manifest = item(store, OLD_SET), item(store, MANIFEST_KEY_ID)
    done = retire_unused(store, count_hashes=Counter, current=CURRENT_SET, now=NOW + RETIRE_AFTER_SECONDS + 1)
    assert {r.record.parameters: r.outcome for r in done} == {CURRENT_SET: CURRENT, OLD_SET: RETIRED}
    put(store, key_of(OLD_SET), before)  # its sealed record from before, put back
    assert reasons(store) == {(key_of(OLD_SET), PUT_BACK)}
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert started(store).known_sets() == [CURRENT_SET]
    assert "put back" in errors(caplog)[0]
    put(store, MANIFEST_KEY_ID, old_manifest)  # the manifest as it was too: the newest list holds still
    assert store.load().listed.sets == {CURRENT_SET}
    assert reasons(store) == {(key_of(OLD_SET), PUT_BACK), (MANIFEST_KEY_ID, MANIFEST_BEHIND)}


# --- bounded --------------------------------------------------------------------------------

def test_a_set_met_in_a_stored_hash_costlier_than_four_times_the_current_one_is_not_recorded(store, caplog):
    hasher = started(store)
    known = PasswordParameters(store, hasher, reload_seconds=60)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        known.record_met(FIVE_TIMES)  # a stored hash of a set 5 × the current cost, met at a check
        known.record_met(FOUR_TIMES)
        known.settle()
    assert store.load().listed.sets == {CURRENT_SET, FOUR_TIMES}  # nobody with the key vouched for FIVE_TIMES
    assert [line for line in errors(caplog) if "t=5,m=8,p=1" in line and "4 × the current set" in line]


def test_a_sealed_set_is_verified_whatever_it_costs_and_a_costly_one_is_warned_of_once(store, verified, caplog):
    # SPEC §6: parity comes first. A set five times the current cost, sealed by one with the key (a process
    # whose own setting it was), is verified on every check like any other, and reported once.
    started(store, FIVE_TIMES)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        later = hasher_of(CURRENT_SET)
        known = PasswordParameters(store, later, reload_seconds=60)
        known.start()
        known.refresh(max_age=0)
        known.refresh(max_age=0)
        verified.clear()
        later.check(None, "wrong")
    assert later.known_sets() == [CURRENT_SET, FIVE_TIMES] and verified == {CURRENT_SET: 1, FIVE_TIMES: 1}
    warned = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
              and "t=5,m=8,p=1" in r.getMessage()]
    assert len(warned) == 1 and errors(caplog) == [], caplog.records
    assert "5.0 × the current set t=1,m=8,p=1" in warned[0] and "adds about 5.0 × a current check's work" in warned[0]
    assert "`citylogin password-parameters retire`" in warned[0]


def test_at_most_eight_sets_are_recorded_or_verified(store, verified, caplog):
    eight = [CURRENT_SET, *((1, 8 + 2 * i, 1) for i in range(1, 8))]  # costs 8, 10, ... 22
    add_sets(store, eight, current=CURRENT_SET, now=NOW)
    hasher = started(store)
    assert sorted(hasher.known_sets()) == sorted(eight)
    ninth = (1, 30, 1)
    known = PasswordParameters(store, hasher, reload_seconds=60)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        known.record_met(ninth)
        known.settle()
    assert ninth not in store.load().listed.sets and ninth not in hasher.known_sets()
    assert [line for line in errors(caplog) if "record t=1,m=30,p=1" in line and "8 sets" in line]
    loaded = store.load()
    store.change(loaded, loaded.listed.changed(add=[ninth, (1, 9, 1)]), now=NOW)  # by hand, with the key
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        later = started(store)
        verified.clear()
        later.check(None, "wrong")
    kept = [CURRENT_SET, (1, 9, 1), *((1, 8 + 2 * i, 1) for i in range(1, 7))]  # its own, then the cheapest
    assert later.known_sets() == kept and verified == dict.fromkeys(kept, 1)
    assert {line.split()[3] for line in errors(caplog)} == {"t=1,m=22,p=1", "t=1,m=30,p=1"}


def test_bounded_keeps_the_own_set_first_then_the_cheapest():
    kept, refused = bounded([(1, 16, 1), FIVE_TIMES, (2, 8, 1), (20, 99, 1), (21, 8, 1)], current=CURRENT_SET)
    assert kept == [CURRENT_SET, (1, 16, 1), (2, 8, 1), FIVE_TIMES, (20, 99, 1)]  # whatever each costs
    assert {(r.name, r.reason) for r in refused} == {("t=21,m=8,p=1", "beyond the settings")}
    assert bounded([(1, 8 + i, 1) for i in range(20)], current=(1, 12, 1))[1][0].reason == TOO_MANY


# --- upgrading from the release whose records had no seal ----------------------------------------

def previous_release_records(store: PasswordParameterStore, *sets) -> None:
    for parameters in sets:
        put(store, key_of(parameters), {"first_used": {"N": str(LONG_AGO)}, "last_used": {"N": str(LONG_AGO)}})


def test_a_process_seals_its_own_set_and_refuses_the_others_until_record(store, caplog):
    previous_release_records(store, CURRENT_SET, OLD_SET, OLDER_SET)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        hasher = started(store)
    assert hasher.known_sets() == [CURRENT_SET]  # its own setting vouches for its own set, nothing for the others
    assert set(store.load().records) == {CURRENT_SET}
    assert {line.split()[3] for line in errors(caplog)} == {"t=1,m=16,p=1", "t=1,m=24,p=1"}
    assert all("`citylogin password-parameters record`" in line for line in errors(caplog))

    asked = []
    done = record_found(store, counts=Counter({OLD_SET: 2}), current=CURRENT_SET, now=NOW,
                        confirm=lambda unsealed: asked.append(unsealed) or False)
    assert done.recorded == [OLD_SET] and done.refused == []  # its stored hashes vouch for it: not asked
    assert [[r.parameters for r in unsealed] for unsealed in asked] == [[OLDER_SET]]
    assert [r.parameters for r in done.left_unsealed] == [OLDER_SET]
    assert started(store).known_sets() == [CURRENT_SET, OLD_SET]
    done = record_found(store, counts=Counter(), current=CURRENT_SET, now=NOW, confirm=lambda unsealed: True)
    assert done.recorded == [OLDER_SET]
    assert store.load().records[OLDER_SET].first_used == LONG_AGO  # sealed, its history kept
    assert started(store).known_sets() == [CURRENT_SET, OLD_SET, OLDER_SET] and reasons(store) == set()


def test_retire_removes_an_unsealed_record_no_hash_uses(store):
    previous_release_records(store, OLD_SET, OLDER_SET)
    started(store)
    done = retire_unused(store, count_hashes=lambda: Counter({OLDER_SET: 1}), current=CURRENT_SET, now=NOW)
    assert {(r.record.parameters, r.outcome, r.sealed) for r in done} == {
        (CURRENT_SET, CURRENT, True), (OLD_SET, RETIRED, False), (OLDER_SET, HASHES_LEFT, False)}
    assert set(store.load().unsealed) == {OLDER_SET}


# --- retiring -------------------------------------------------------------------------------

def test_retire_removes_only_sets_no_hash_and_no_recent_process_uses(store):
    for parameters in (CURRENT_SET, OLD_SET, OLDER_SET):  # OLD_SET: no hash left; OLDER_SET: hashes left
        recorded_by_a_process(store, parameters, now=LONG_AGO)
    recorded_by_a_process(store, (1, 32, 1), now=NOW - 3600)  # no hash, but a process used it an hour ago
    done = retire_unused(store, count_hashes=lambda: Counter({CURRENT_SET: 5, OLDER_SET: 2}), current=CURRENT_SET,
                         now=NOW)
    assert {r.record.parameters: (r.outcome, r.hashes) for r in done} == {
        CURRENT_SET: (CURRENT, 5), OLD_SET: (RETIRED, 0), OLDER_SET: (HASHES_LEFT, 2), (1, 32, 1): (RECENTLY_USED, 0)}
    assert store.load().listed.sets == {CURRENT_SET, OLDER_SET, (1, 32, 1)} and reasons(store) == set()


def test_retire_keeps_a_set_a_process_starts_hashing_with_during_the_count(store):
    recorded_by_a_process(store, OLD_SET, now=LONG_AGO)

    def count_while_a_process_starts():
        recorded_by_a_process(store, OLD_SET, now=NOW)  # its start records the set before it can hash
        return Counter()
    done = retire_unused(store, count_hashes=count_while_a_process_starts, current=CURRENT_SET, now=NOW)
    assert [r.outcome for r in done] == [RECENTLY_USED]
    assert store.load().listed.sets == {OLD_SET}


def test_sets_the_stored_hashes_use_and_no_process_recorded_are_recorded_on_demand(store):
    recorded_by_a_process(store, CURRENT_SET, now=LONG_AGO)
    done = record_found(store, counts=Counter({CURRENT_SET: 3, OLD_SET: 2, (99, 8, 1): 1, FIVE_TIMES: 1}), now=NOW,
                        current=CURRENT_SET)
    assert done.recorded == [OLD_SET, FIVE_TIMES]  # the operator's command records a costly set too
    assert {(r.name, r.reason) for r in done.refused} == {("t=99,m=8,p=1", "beyond the settings")}
    assert {p: r.last_used for p, r in store.load().records.items()} == {
        CURRENT_SET: LONG_AGO, OLD_SET: NOW, FIVE_TIMES: NOW}


# --- every password check goes through PasswordHasher.check -----------------------------------

def test_no_password_is_verified_but_through_the_one_check():
    # login, the pairing token's password form, device/register, device/recover and every
    # re-authentication reach the password through accounts.credential_service, which calls check()
    root = Path(__file__).resolve().parents[3]
    sources = product.source_files()
    # (an imported hash too: its schemes' verifier is common.crypto.imported_hashes, which only check() calls)
    direct = re.compile(r"passwords\.verify\(|imported_hashes\.verify\(|^(import|from) (argon2|bcrypt)\b", re.MULTILINE)
    verifiers = {"common/crypto/passwords.py", "common/crypto/imported_hashes.py"}
    verifies = [p.relative_to(root).as_posix() for p in sources
                if p.relative_to(root).as_posix() not in verifiers and direct.search(p.read_text())]
    checks = [p.relative_to(root).as_posix() for p in sources if ".passwords.check(" in p.read_text()]
    assert verifies == [] and checks == ["accounts/credential_service.py"], (verifies, checks)


def test_a_check_in_flight_keeps_the_sets_it_started_with():
    hasher = hasher_of(CURRENT_SET)
    taken = hasher._dummies
    assert hasher.learn([OLD_SET, CURRENT_SET]) == [OLD_SET]
    assert list(taken) == [CURRENT_SET] and hasher.known_sets() == [CURRENT_SET, OLD_SET]  # replaced, not changed
    assert hasher.learn([OLD_SET]) == []
