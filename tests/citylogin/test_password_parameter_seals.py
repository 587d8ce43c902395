"""The parameter-set records are sealed like the key ring's keys (SPEC §6), across processes and the CLI: a
record put straight into DynamoDB without the key-encryption key, one edited (its t changed, the seal
kept), a seal copied to another key, a 9th set and a set 5 × the current cost are each refused with an
ERROR naming it, and what every password check verifies does not change (counted with a spy on Argon2's
verify, never timed); `citylogin password-parameters record` refuses to write a set beyond the bounds and
seals the previous release's records once the operator confirms them. The store's own tests:
tests/common/keys/test_password_parameters.py."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import argon2
import pytest
from click.testing import CliRunner

from accounts import user_service as users
from citylogin.cli.main import main
from common.crypto.passwords import PasswordHasher
from common.keys.password_parameter_store import MANIFEST_KEY_ID, RING, PasswordParameterStore, key_of
from common.keys.password_parameters import add_sets
from tests.citylogin.test_dormant_passwords import NO_LOCKOUT, OLD, WRONG, Verifications
from tests.conftest import FAST_ARGON2
from tests.support.fixtures import app_servers
from tests.support.live import PASSWORD, register_device

# servers and the CLI; tests/common/keys/test_password_parameters.py keeps the rules in the fast tier
pytestmark = pytest.mark.slow

LOGGER = "common.keys.password_parameters"
SECOND = (1, 8400, 1)                  # recorded, sealed, by a process of its own
FIVE_TIMES = (5, OLD[1], 1)            # OLD is the current set of every process here: t × m five times its own


@pytest.fixture
def make_server(base_config) -> Iterator:
    # No refresher thread reads the records on its own during a test: each process's ERRORs are counted.
    with app_servers({**base_config, **NO_LOCKOUT, "key_ring_reload_seconds": 3600}) as start:
        yield start


@pytest.fixture
def env(base_config) -> dict[str, str]:
    """The CLI's environment: this module's tables, the data directory's key-encryption key, the apps' set."""
    return {"CITYLOGIN_DYNAMODB_ENDPOINT_URL": base_config["dynamodb_endpoint_url"],
            "CITYLOGIN_TABLE_PREFIX": base_config["table_prefix"], "CITYLOGIN_DATA_DIR": base_config["data_dir"],
            **{f"CITYLOGIN_{k.upper()}": str(v) for k, v in FAST_ARGON2.items()}}


@pytest.fixture
def verifications(monkeypatch) -> Verifications:
    spy = Verifications()
    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy.spy(argon2.PasswordHasher.verify))
    return spy


@pytest.fixture
def fresh(base_config, dynamodb_endpoint) -> None:
    """No record of an earlier test of this module (their tables are shared): each starts from none."""
    from common.database import dynamo

    client = dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, read_timeout=20)
    table = dynamo.TableNames.with_prefix(base_config["table_prefix"]).key_ring
    try:
        items = client.query(TableName=table, KeyConditionExpression="#r = :ring", ExpressionAttributeNames={
            "#r": "ring"}, ExpressionAttributeValues={":ring": {"S": RING}}, ConsistentRead=True)["Items"]
    except client.exceptions.ResourceNotFoundException:
        return
    for item in items:
        client.delete_item(TableName=table, Key={"ring": item["ring"], "key_id": item["key_id"]})


@pytest.fixture
def imported_hash() -> Iterator[Callable]:
    """(ctx, person, parameters) -> the person's stored hash, now one of `parameters` (imported from
    elsewhere); a hash of the current set again after the test: another test's `record` must not meet it."""
    replaced = []

    def replace(ctx, person, parameters: tuple[int, int, int]) -> str:
        stored = hash_of(parameters)
        users.replace_password_hash(ctx, user_uuid=person.key_file.user_uuid, password_hash=stored)
        replaced.append((ctx, person.key_file.user_uuid))
        return stored
    yield replace
    for ctx, user_uuid in replaced:
        users.replace_password_hash(ctx, user_uuid=user_uuid, password_hash=hash_of(OLD))


def raw(ctx, key_id: str) -> dict:
    return ctx.dynamodb.get_item(TableName=ctx.tables.key_ring, ConsistentRead=True,
                                 Key={"ring": {"S": RING}, "key_id": {"S": key_id}})["Item"]


def put(ctx, key_id: str, attributes: dict) -> None:
    """Straight into DynamoDB Local, as a writer with the table's rights and without the key-encryption key."""
    ctx.dynamodb.put_item(TableName=ctx.tables.key_ring,
                          Item={**attributes, "ring": {"S": RING}, "key_id": {"S": key_id}})


def errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]


def naming(lines: list[str], key_id: str) -> list[str]:
    return [line for line in lines if f"password parameter record {key_id} in " in line]


def hash_of(parameters: tuple[int, int, int]) -> str:
    t, m, p = parameters
    return PasswordHasher(time_cost=t, memory_cost=m, parallelism=p).hash(PASSWORD)


def line_of(output: str, key_id: str) -> str:
    """The CLI's line about one set."""
    return next((line for line in output.splitlines() if line.startswith(key_id + " ")), "")


def test_records_written_without_the_key_are_refused_by_every_process(fresh, make_server, verifications, caplog):
    url, ctx = make_server()
    make_server(argon2_memory_cost=SECOND[1])
    ctx.password_parameters.refresh(max_age=0)
    known = set(ctx.passwords.known_sets())
    assert known == {OLD, SECOND}

    put(ctx, "t=8,m=8192,p=1", {"first_used": {"N": "1"}, "last_used": {"N": "1"}})  # forged: every login pays
    second = raw(ctx, key_of(SECOND))
    ctx.dynamodb.delete_item(TableName=ctx.tables.key_ring, Key={"ring": {"S": RING}, "key_id": second["key_id"]})
    put(ctx, "t=4,m=8400,p=1", second)                    # edited: its t changed, the seal kept
    put(ctx, "t=2,m=8192,p=1", raw(ctx, key_of(OLD)))     # a seal copied to another key
    forged = ("t=8,m=8192,p=1", "t=4,m=8400,p=1", "t=2,m=8192,p=1")

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        later_url, later = make_server()
        ctx.password_parameters.refresh(max_age=0)        # the running process reads them too
        ctx.password_parameters.refresh(max_age=0)
    lines = errors(caplog)
    for key_id in forged:                                 # once per process and record
        assert len(naming(lines, key_id)) == 2, (key_id, lines)
    assert len(naming(lines, key_of(SECOND))) == 2       # deleted: noticed, and still verified
    assert "`citylogin password-parameters record`" in naming(lines, "t=8,m=8192,p=1")[0]
    for process in (ctx, later):
        assert set(process.passwords.known_sets()) == known
        assert verifications.of(lambda p=process: p.passwords.check(None, WRONG)) == dict.fromkeys(known, 1)
    person = register_device(later_url)                   # and a login is what it was
    assert verifications.of(lambda: person.login(PASSWORD)) == dict.fromkeys(known, 1)


def test_a_ninth_set_and_one_met_at_five_times_the_cost_are_refused_by_processes_and_the_cli(
        fresh, make_server, imported_hash, env, verifications, caplog):
    url, ctx = make_server()
    store = PasswordParameterStore(ctx.dynamodb, ctx.tables.key_ring, ctx.key_ring.encryptor)
    eight = [(1, OLD[1] + 8 * i, 1) for i in range(1, 8)]  # and OLD: 8 sets, as processes of each recorded them
    add_sets(store, eight, current=OLD, now=1)
    ninth = (1, OLD[1] + 80, 1)
    imported = [imported_hash(ctx, register_device(url), parameters) for parameters in (ninth, FIVE_TIMES)]
    ctx.password_parameters.refresh(max_age=0)
    known = set(ctx.passwords.known_sets())
    assert known == {OLD, *eight}

    with caplog.at_level(logging.ERROR, logger=LOGGER):
        for stored in imported:                          # each met at a check: neither recorded, nor learnt
            ctx.passwords.check(stored, WRONG)
        ctx.password_parameters.settle()
    lines = errors(caplog)
    assert naming(lines, key_of(ninth)) and "8 sets" in naming(lines, key_of(ninth))[0]
    assert naming(lines, key_of(FIVE_TIMES)) and "4 × the current set" in naming(lines, key_of(FIVE_TIMES))[0]
    assert set(ctx.passwords.known_sets()) == known
    assert verifications.of(lambda: ctx.passwords.check(None, WRONG)) == dict.fromkeys(known, 1)

    done = CliRunner().invoke(main, ["password-parameters", "record"], env=env)
    assert done.exit_code == 1, done.output
    assert f"{key_of(ninth)}: 8 sets are recorded already" in done.output
    assert f"{key_of(FIVE_TIMES)}: 8 sets are recorded already" in done.output
    assert store.load().listed.sets == known

    # written past the bounds by one with the key (by hand): a process started later refuses them too
    loaded = store.load()
    store.change(loaded, loaded.listed.changed(add=[ninth, FIVE_TIMES]), now=1)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        _, later = make_server()
    assert naming(errors(caplog), key_of(ninth)) and naming(errors(caplog), key_of(FIVE_TIMES))
    assert set(later.passwords.known_sets()) == known
    assert verifications.of(lambda: later.passwords.check(None, WRONG)) == dict.fromkeys(known, 1)
    listed = CliRunner().invoke(main, ["password-parameters", "list"], env=env)
    assert listed.exit_code == 0 and f"refused: password parameter record {key_of(ninth)}" in listed.output


def test_the_previous_release_s_records_are_sealed_by_record_once_confirmed(fresh, make_server, imported_hash, env,
                                                                            caplog):
    url, ctx = make_server()
    ctx.dynamodb.delete_item(TableName=ctx.tables.key_ring, Key={"ring": {"S": RING}, "key_id": {"S": MANIFEST_KEY_ID}})
    dormant, unused = (1, 8700, 1), (1, 8800, 1)        # what the previous release wrote: no seal
    for parameters in (OLD, dormant, unused):
        put(ctx, key_of(parameters), {"first_used": {"N": "1700000000"}, "last_used": {"N": "1700000000"}})
    imported_hash(ctx, register_device(url), dormant)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        _, upgraded = make_server()                      # the first process of the new release
    assert upgraded.passwords.known_sets() == [OLD]     # its own set, sealed from its own settings
    assert naming(errors(caplog), key_of(dormant)) and naming(errors(caplog), key_of(unused))

    listed = CliRunner().invoke(main, ["password-parameters", "list"], env=env)
    assert f"refused: password parameter record {key_of(unused)} in " in listed.output
    declined = CliRunner().invoke(main, ["password-parameters", "record"], env=env, input="n\n")
    assert declined.exit_code == 0, declined.output
    assert "recorded, sealed: 1 stored hashes use it" in line_of(declined.output, key_of(dormant))  # not asked
    assert "Seal them" in declined.output and "left unsealed" in line_of(declined.output, key_of(unused))
    confirmed = CliRunner().invoke(main, ["password-parameters", "record", "--yes"], env=env)
    assert confirmed.exit_code == 0 and "recorded, sealed" in line_of(confirmed.output, key_of(unused))
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        _, later = make_server()
    assert set(later.passwords.known_sets()) == {OLD, dormant, unused} and errors(caplog) == []
