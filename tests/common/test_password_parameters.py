"""common.password_parameters and its store (SPEC §6): the Argon2id parameter sets a deployment has hashed with,
recorded in the key_ring table by the processes themselves, read by every process at start and on
reload, and retired only when no stored hash and no recent process uses them. Against DynamoDB
Local, with tiny parameters. Across processes and routes: tests/citylogin/test_dormant_passwords.py."""
from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import argon2
import pytest

from common import dynamo
from common.crypto import PasswordHasher, hash_parameters
from common.password_parameter_store import RING, PasswordParameterStore, key_of
from common.password_parameters import (CURRENT, HASHES_LEFT, RECENTLY_USED, RETIRE_AFTER_SECONDS, RETIRED,
                                        PasswordParameters, record_found, retire_unused)
from tests.common.test_key_ring import create_ring_table
from tests.conftest import unique_name
from tests.support.tcp_faults import refused_endpoint

# Tiny sets (t, m KiB, p): a hash costs microseconds.
CURRENT_SET, OLD_SET, OLDER_SET = (1, 8, 1), (1, 16, 1), (1, 24, 1)
NOW = 1_750_000_000
LONG_AGO = NOW - RETIRE_AFTER_SECONDS - 1


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
    return PasswordParameterStore(client, table)


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


def item(store: PasswordParameterStore, parameters) -> dict:
    return dynamo.from_item(store.client.get_item(TableName=store.table, ConsistentRead=True, Key={
        "ring": {"S": RING}, "key_id": {"S": key_of(parameters)}})["Item"])


# --- the records ----------------------------------------------------------------------------

def test_a_set_in_use_is_recorded_once_and_its_last_use_only_moves_forward(store):
    store.record_in_use(CURRENT_SET, now=NOW)
    store.record_in_use(CURRENT_SET, now=NOW + 60)
    store.record_in_use(CURRENT_SET, now=NOW + 30)  # a process whose clock is behind
    assert item(store, CURRENT_SET) == {"ring": RING, "key_id": "t=1,m=8,p=1", "first_used": NOW,
                                        "last_used": NOW + 60}
    store.record_met(CURRENT_SET, now=NOW + 90)  # a hash met: the record says no process hashed later
    assert item(store, CURRENT_SET)["last_used"] == NOW + 60
    store.record_met(OLD_SET, now=NOW)
    assert {r.parameters: r.last_used for r in store.load()} == {CURRENT_SET: NOW + 60, OLD_SET: NOW}


def test_records_that_name_no_usable_set_are_ignored(store, caplog):
    for key_id in ("t=1,m=8,p=1", "t=99,m=8,p=1", "t=1,m=99999999,p=1", "nonsense", "t=1,m=8,p=1;t=1,m=16,p=1"):
        store.client.put_item(TableName=store.table, Item={"ring": {"S": RING}, "key_id": {"S": key_id},
                                                           "first_used": {"N": "1"}, "last_used": {"N": "1"}})
    assert [r.parameters for r in store.load()] == [CURRENT_SET]
    assert [r.parameters for r in store.load()] == [CURRENT_SET]  # a reload: no new warnings
    assert caplog.text.count("names no Argon2id set") == 4


def test_the_key_ring_s_own_partition_is_untouched(store):
    store.record_in_use(CURRENT_SET, now=NOW)
    keys = [dynamo.from_item(i) for i in store.client.scan(TableName=store.table)["Items"]]
    assert [k["ring"] for k in keys] == [RING]  # never ring "main", which the key ring reads alone


# --- what a process knows -------------------------------------------------------------------

def test_a_process_records_its_set_and_checks_every_recorded_one_without_the_setting(store, verified):
    store.record_in_use(OLD_SET, now=LONG_AGO)  # an earlier process's
    hasher = hasher_of(CURRENT_SET)
    dormant = hasher_of(OLD_SET).hash("correct horse")
    PasswordParameters(store, hasher, reload_seconds=60).start()
    assert {r.parameters for r in store.load()} == {CURRENT_SET, OLD_SET}
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
    store.record_in_use(OLD_SET, now=NOW)  # another process, started since
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
    assert OLDER_SET in {r.parameters for r in store.load()}
    assert hasher.known_sets() == [CURRENT_SET, OLDER_SET]
    verified.clear()
    hasher.check(None, "wrong")
    assert verified == {CURRENT_SET: 1, OLDER_SET: 1}
    assert "t=1,m=24,p=1 met in a stored hash are recorded" in caplog.text
    assert "CITYLOGIN_ARGON2_LEGACY_PARAMETERS" not in caplog.text  # nothing left to the operator
    hasher.check(imported, "wrong")
    assert caplog.text.count("did not know") == 1


def test_the_setting_still_adds_sets_of_its_own(store):
    hasher = hasher_of(CURRENT_SET, legacy=[OLDER_SET])
    PasswordParameters(store, hasher, reload_seconds=60).start()
    assert hasher.known_sets() == [CURRENT_SET, OLDER_SET]
    assert [r.parameters for r in store.load()] == [CURRENT_SET]  # declared, not recorded


def test_a_dynamodb_outage_keeps_the_sets_known_and_is_one_log_line(store, caplog):
    hasher = hasher_of(CURRENT_SET)
    store.record_in_use(OLD_SET, now=NOW)
    PasswordParameters(store, hasher, reload_seconds=60).start()
    with refused_endpoint() as endpoint, caplog.at_level(logging.WARNING, logger="common.password_parameters"):
        down = dynamo.make_client(region="us-east-1", endpoint_url=endpoint, connect_timeout=0.2, read_timeout=0.2,
                                  max_attempts=1)
        known = PasswordParameters(PasswordParameterStore(down, store.table), hasher, reload_seconds=60)
        for _ in range(5):
            known.refresh(max_age=0)
    assert hasher.known_sets() == [CURRENT_SET, OLD_SET]
    lines = [r.getMessage() for r in caplog.records if r.name == "common.password_parameters"]
    assert len(lines) == 1 and "keeping the 2 known" in lines[0], lines


def test_a_process_records_its_set_again_while_it_runs(store):
    clock = [float(NOW)]
    known = PasswordParameters(store, hasher_of(CURRENT_SET), reload_seconds=60, clock=lambda: clock[0])
    known.start()
    clock[0] += 600
    known.refresh(max_age=0)
    assert item(store, CURRENT_SET)["last_used"] == NOW  # not every read writes
    clock[0] += 3600
    known.refresh()
    assert item(store, CURRENT_SET)["last_used"] == NOW + 4200  # a heartbeat: retire keeps it


# --- retiring -------------------------------------------------------------------------------

def test_retire_removes_only_sets_no_hash_and_no_recent_process_uses(store):
    store.record_in_use(CURRENT_SET, now=LONG_AGO)
    store.record_in_use(OLD_SET, now=LONG_AGO)         # no hash left: retired
    store.record_in_use(OLDER_SET, now=LONG_AGO)       # hashes left: kept
    store.record_in_use((1, 32, 1), now=NOW - 3600)    # no hash, but a process used it an hour ago
    done = retire_unused(store, count_hashes=lambda: Counter({CURRENT_SET: 5, OLDER_SET: 2}), current=CURRENT_SET,
                         now=NOW)
    assert {r.record.parameters: (r.outcome, r.hashes) for r in done} == {
        CURRENT_SET: (CURRENT, 5), OLD_SET: (RETIRED, 0), OLDER_SET: (HASHES_LEFT, 2), (1, 32, 1): (RECENTLY_USED, 0)}
    assert {r.parameters for r in store.load()} == {CURRENT_SET, OLDER_SET, (1, 32, 1)}


def test_retire_keeps_a_set_a_process_starts_hashing_with_during_the_count(store):
    store.record_in_use(OLD_SET, now=LONG_AGO)

    def count_while_a_process_starts():
        store.record_in_use(OLD_SET, now=NOW)  # its start records the set before it can hash
        return Counter()
    done = retire_unused(store, count_hashes=count_while_a_process_starts, current=CURRENT_SET, now=NOW)
    assert [r.outcome for r in done] == [RECENTLY_USED]
    assert [r.parameters for r in store.load()] == [OLD_SET]


def test_sets_the_stored_hashes_use_and_no_process_recorded_are_recorded_on_demand(store):
    store.record_in_use(CURRENT_SET, now=LONG_AGO)
    found = record_found(store, counts=Counter({CURRENT_SET: 3, OLD_SET: 2, (99, 8, 1): 1}), now=NOW)
    assert found == [OLD_SET]  # (99, 8, 1): beyond the settings' bounds, never verified on every check
    assert {r.parameters: r.last_used for r in store.load()} == {CURRENT_SET: LONG_AGO, OLD_SET: NOW}


# --- every password check goes through PasswordHasher.check -----------------------------------

def test_no_password_is_verified_but_through_the_one_check():
    # login, the pairing token's password form, device/register, device/recover and every
    # re-authentication reach the password through accounts.credential_service, which calls check()
    root = Path(__file__).resolve().parents[2]
    sources = [p for folder in ("accounts", "flows", "registration", "login_app", "device_manager", "devices",
                                "sessions", "session_manager", "oidc", "apps", "citylogin", "common")
               for p in (root / folder).rglob("*.py")]
    direct = re.compile(r"passwords\.verify\(|^(import|from) argon2\b", re.MULTILINE)
    verifies = [p.relative_to(root).as_posix() for p in sources
                if p.name != "crypto.py" and direct.search(p.read_text())]
    checks = [p.relative_to(root).as_posix() for p in sources if ".passwords.check(" in p.read_text()]
    assert verifies == [] and checks == ["accounts/credential_service.py"], (verifies, checks)


def test_a_check_in_flight_keeps_the_sets_it_started_with():
    hasher = hasher_of(CURRENT_SET)
    taken = hasher._dummies
    assert hasher.learn([OLD_SET, CURRENT_SET]) == [OLD_SET]
    assert list(taken) == [CURRENT_SET] and hasher.known_sets() == [CURRENT_SET, OLD_SET]  # replaced, not changed
    assert hasher.learn([OLD_SET]) == []
