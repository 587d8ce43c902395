"""SPEC §10: a retired key stays retired for a process started later, even if a writer with access to
the key_ring table but without the key-encryption key puts old items back (one or several): the
ring's records (its manifest, every tombstone, every key added since a retirement) each name the keys
retired when they were written, under the KEK, and a fresh process refuses a key that any of them
names, logging an ERROR that names it. Each test builds its ring through the functions the CLI uses,
copies items with get_item as an attacker would, puts them back with put_item, then reads the ring
as a newly started process does."""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
import types
from typing import Any

import boto3
import jwt
import pytest
import requests
from click.testing import CliRunner
from moto import mock_aws

from citylogin.cli.main import main
from citylogin.client.api import Client
from common.config import load_settings
from common.database import dynamo
from common.keys.encryption import KmsKeyEncryptor
from common.keys.ring import CA, JWT, ROTATED_KINDS, RingContents, ensure_ring, read_ring, retire, rotate
from common.keys.ring_import import initial_entries
from common.keys.ring_reader import RingReader
from common.keys.ring_store import MANIFEST_KEY_ID, KeyRingStore, RingMoved
from tests.conftest import config_env, unique_name
from tests.common.keys.test_key_ring import aes, create_ring_table
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device

Item = dict[str, Any]


@pytest.fixture
def ring(dynamodb_endpoint, tmp_path) -> KeyRingStore:
    """A key ring on a table of its own: one JWT key, then two rotations (three JWT keys, oldest first)."""
    client = dynamo.make_client(region="us-east-1", endpoint_url=dynamodb_endpoint, read_timeout=20)
    table = unique_name("ring")
    create_ring_table(client, table)
    store = KeyRingStore(client, table, aes())
    ensure_ring(store, initial=lambda: initial_entries(settings(tmp_path)))
    rotate(store)
    rotate(store)
    return store


def settings(tmp_path):
    return load_settings({"data_dir": str(tmp_path)}, environ={})


def jwt_kids(store: KeyRingStore) -> list[str]:
    return [entry.kid for entry in read_ring(store).of(JWT)]


def retire_now(store: KeyRingStore, kid: str, tmp_path) -> None:
    """`citylogin keys retire --force KID`."""
    retire(store, kid=kid, settings=settings(tmp_path), force=True)


def items(store: KeyRingStore) -> list[Item]:
    return store.client.query(TableName=store.table, KeyConditionExpression="#r = :main", ConsistentRead=True,
                              ExpressionAttributeNames={"#r": "ring"},
                              ExpressionAttributeValues={":main": {"S": "main"}})["Items"]


def copied(store: KeyRingStore, kid: str) -> Item:
    """The item of key `kid` as get_item hands it out (what an attacker keeps)."""
    key_id = next(item["key_id"]["S"] for item in items(store) if item.get("kid", {}).get("S") == kid)
    return get(store, key_id)


def get(store: KeyRingStore, key_id: str) -> Item:
    return store.client.get_item(TableName=store.table, Key={"ring": {"S": "main"}, "key_id": {"S": key_id}},
                                 ConsistentRead=True).get("Item", {})


def put_back(store: KeyRingStore, *copies: Item) -> None:
    for item in copies:
        store.client.put_item(TableName=store.table, Item=item)


def delete_manifest(store: KeyRingStore) -> None:
    store.client.delete_item(TableName=store.table, Key={"ring": {"S": "main"}, "key_id": {"S": MANIFEST_KEY_ID}})


def fresh_process(store: KeyRingStore) -> RingContents:
    """The ring as a process started now reads it: a new store, nothing remembered."""
    return read_ring(KeyRingStore(store.client, store.table, store.encryptor))


def errors(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def assert_refused(contents: RingContents, kid: str, caplog) -> None:
    """Neither signs nor verifies, counts as retired, and an ERROR names it (and no secret)."""
    assert kid not in [key.kid for key in contents.signing_keys()]
    assert kid not in [entry.kid for entry in contents.of(JWT)] and kid in [e.kid for e in contents.retired()]
    named = [message for message in errors(caplog) if f"jwt#{kid} " in message]
    assert len(named) == 1 and "contradicts the ring" in named[0], errors(caplog)


# --- one record or several put back --------------------------------------------------------

def test_the_old_item_of_a_retired_key_alone_is_refused(ring, tmp_path, caplog):
    old = jwt_kids(ring)[0]
    before = copied(ring, old)
    retire_now(ring, old, tmp_path)

    put_back(ring, before)  # the tombstone is gone; the manifest names the key
    assert_refused(fresh_process(ring), old, caplog)


def test_the_old_item_and_the_manifest_of_before_are_refused_by_a_key_added_since(ring, tmp_path, caplog):
    first, second, _ = jwt_kids(ring)
    retire_now(ring, first, tmp_path)
    manifest_before, second_before = get(ring, MANIFEST_KEY_ID), copied(ring, second)
    retire_now(ring, second, tmp_path)
    rotate(ring)  # `keys rotate`: the new keys carry both retirements

    put_back(ring, second_before, manifest_before)  # neither the manifest nor the first tombstone names it
    contents = fresh_process(ring)
    assert_refused(contents, second, caplog)
    assert first in [entry.kid for entry in contents.retired()]
    assert any("manifest" in message and "older" in message for message in errors(caplog))


def test_an_old_manifest_alone_leaves_the_key_retired_and_the_next_retirement_keeps_it(ring, tmp_path, caplog):
    first, second, third = jwt_kids(ring)
    manifest_before = get(ring, MANIFEST_KEY_ID)
    assert manifest_before == {}  # none before the first retirement
    retire_now(ring, first, tmp_path)
    manifest_one = get(ring, MANIFEST_KEY_ID)
    retire_now(ring, second, tmp_path)

    put_back(ring, manifest_one)  # version 1: names the first only
    contents = fresh_process(ring)
    assert {first, second} <= {entry.kid for entry in contents.retired()} and jwt_kids(ring) == [third]
    assert [message for message in errors(caplog) if "manifest" in message and "older" in message]

    rotate(ring)
    retire_now(ring, third, tmp_path)  # written on top of the version stored, above every version seen
    manifest = ring.load().manifest
    assert manifest is not None and manifest.version == 3
    assert manifest.retired == {f"jwt#{kid}" for kid in (first, second, third)}


def test_the_old_item_with_the_manifest_deleted_is_refused_by_a_later_tombstone(ring, tmp_path, caplog):
    first, second, _ = jwt_kids(ring)
    first_before = copied(ring, first)
    retire_now(ring, first, tmp_path)
    retire_now(ring, second, tmp_path)

    put_back(ring, first_before)
    delete_manifest(ring)
    assert_refused(fresh_process(ring), first, caplog)
    assert any("manifest" in message and "missing" in message for message in errors(caplog))


def test_two_old_items_and_the_manifest_between_their_retirements_are_refused(ring, tmp_path, caplog):
    first, second, _ = jwt_kids(ring)
    first_before, second_before = copied(ring, first), copied(ring, second)
    retire_now(ring, first, tmp_path)
    manifest_between = get(ring, MANIFEST_KEY_ID)
    retire_now(ring, second, tmp_path)
    rotate(ring)

    put_back(ring, first_before, second_before, manifest_between)
    contents = fresh_process(ring)
    assert_refused(contents, first, caplog)  # the manifest put back names it
    assert_refused(contents, second, caplog)  # the keys added since name it


def test_a_manifest_of_another_ring_does_not_open_here(ring, tmp_path, caplog):
    other = KeyRingStore(ring.client, unique_name("ring"), ring.encryptor)  # same KEK, another table
    create_ring_table(other.client, other.table)
    ensure_ring(other, initial=lambda: initial_entries(settings(tmp_path / "other")))
    rotate(other)
    retire_now(other, jwt_kids(other)[0], tmp_path)  # its manifest: version 1, naming its own key
    first, second, _ = jwt_kids(ring)
    first_before = copied(ring, first)
    retire_now(ring, first, tmp_path)
    rotate(ring)

    put_back(ring, first_before, get(other, MANIFEST_KEY_ID))  # the other table's, sealed under this KEK
    with caplog.at_level(logging.WARNING):
        contents = fresh_process(ring)
    assert_refused(contents, first, caplog)
    assert any(record.levelno == logging.ERROR and "meta#manifest" in record.getMessage()
               and "does not open" in record.getMessage() for record in caplog.records)
    assert ring.load().manifest is None

    retire_now(ring, second, tmp_path)  # the next retirement overwrites it, knowing the first
    manifest = ring.load().manifest
    assert manifest is not None and manifest.retired == {f"jwt#{first}", f"jwt#{second}"} and manifest.version == 2


def test_under_kms_the_ring_state_is_in_the_encryption_context(tmp_path, caplog):
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_ring_table(client, "ring")
        store = KeyRingStore(client, "ring", KmsKeyEncryptor(kms, kms.create_key()["KeyMetadata"]["KeyId"]))
        ensure_ring(store, initial=lambda: initial_entries(settings(tmp_path)))
        rotate(store)
        old = jwt_kids(store)[0]
        before = copied(store, old)
        retire_now(store, old, tmp_path)
        assert {item["sealed_with"]["S"] for item in items(store) if "sealed_with" in item} == {"kms"}

        put_back(store, before)
        assert_refused(fresh_process(store), old, caplog)


# --- what the records carry cannot be edited ----------------------------------------------------

def test_a_key_added_since_a_retirement_cannot_shed_or_change_what_it_carries(ring, tmp_path, caplog):
    first, second, _ = jwt_kids(ring)
    retire_now(ring, first, tmp_path)
    rotate(ring)
    newest = jwt_kids(ring)[-1]
    added = copied(ring, newest)
    assert added["ring_retired"] == {"SS": [f"jwt#{first}"]} and added["key_id"]["S"] != f"jwt#{newest}"

    for edited in ({k: v for k, v in added.items() if k not in ("ring_version", "ring_retired")},
                   {**added, "ring_retired": {"SS": [f"jwt#{second}"]}}, {**added, "ring_version": {"N": "9"}}):
        put_back(ring, edited)
        assert newest not in jwt_kids(ring)  # does not open: it neither signs nor refuses another key
        assert second in jwt_kids(ring)
    put_back(ring, added)
    assert newest in jwt_kids(ring)

    # A ring state added to a key that carries none counts for nothing: it could only refuse keys.
    plain = copied(ring, second)
    put_back(ring, {**plain, "ring_version": {"N": "5"}, "ring_retired": {"SS": [f"jwt#{newest}"]}})
    assert newest in jwt_kids(ring) and second in jwt_kids(ring)


def test_an_old_item_put_back_under_another_kid_does_not_open(ring, tmp_path):
    old = jwt_kids(ring)[0]
    before = copied(ring, old)
    retire_now(ring, old, tmp_path)
    put_back(ring, {**before, "key_id": {"S": "jwt#renamed"}, "kid": {"S": "renamed"}})
    put_back(ring, {**before, "key_id": {"S": before["key_id"]["S"]}, "kid": {"S": "renamed"}})
    assert "renamed" not in jwt_kids(ring) and old not in jwt_kids(ring)


def test_a_tombstone_whose_ring_state_was_edited_still_retires_its_key(ring, tmp_path, caplog):
    first, second, _ = jwt_kids(ring)
    retire_now(ring, first, tmp_path)
    retire_now(ring, second, tmp_path)
    tombstone = copied(ring, second)
    assert tombstone["ring_retired"] == {"SS": sorted([f"jwt#{first}", f"jwt#{second}"])}
    put_back(ring, {**tombstone, "ring_retired": {"SS": [f"jwt#{second}"]}})
    with caplog.at_level(logging.WARNING):
        contents = fresh_process(ring)
    assert {first, second} <= {entry.kid for entry in contents.retired()}
    assert any("ring state" in record.getMessage() and f"jwt#{second}" in record.getMessage()
               for record in caplog.records)


# --- retirements racing, a running process ---------------------------------------------------

class ReadTogether(KeyRingStore):
    """Each thread's first read of the ring waits for the others': every retirement reads the same
    manifest version, so all but one find it moved."""

    def __init__(self, store: KeyRingStore, parties: int) -> None:
        super().__init__(store.client, store.table, store.encryptor)
        self.barrier, self.first_reads, self.moved = threading.Barrier(parties), threading.local(), 0

    def load(self):
        loaded = super().load()
        if not getattr(self.first_reads, "done", False):
            self.first_reads.done = True
            self.barrier.wait(timeout=30)
        return loaded

    def retire(self, *args, **kwargs):
        try:
            return super().retire(*args, **kwargs)
        except RingMoved:
            self.moved += 1
            raise


def test_retirements_racing_are_all_kept(ring, tmp_path):
    rotate(ring)
    kids = jwt_kids(ring)[:3]
    racing = ReadTogether(ring, len(kids))
    failures: list[Exception] = []

    def retire_one(kid: str) -> None:
        try:
            retire_now(racing, kid, tmp_path)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=retire_one, args=(kid,)) for kid in kids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and racing.moved >= len(kids) - 1
    manifest = ring.load().manifest
    assert manifest is not None and manifest.version == len(kids)
    assert manifest.retired == {f"jwt#{kid}" for kid in kids}
    assert not set(kids) & set(jwt_kids(ring))


def test_a_running_process_logs_a_contradiction_once(ring, tmp_path, caplog):
    first, second, _ = jwt_kids(ring)
    reader = RingReader(ring, read_ring(ring))
    first_before, second_before = copied(ring, first), copied(ring, second)
    retire_now(ring, first, tmp_path)
    put_back(ring, first_before)  # before this process re-read: the manifest still names it
    for _ in range(3):
        assert first not in [entry.kid for entry in reader.reload().of(JWT)]
    assert len([message for message in errors(caplog) if f"jwt#{first} " in message]) == 1

    # The ring put back whole as it was before the next retirement: a fresh process cannot tell, this one saw it.
    manifest_one = get(ring, MANIFEST_KEY_ID)
    retire_now(ring, second, tmp_path)
    reader.reload()
    put_back(ring, second_before, manifest_one)
    for _ in range(3):
        assert second not in [entry.kid for entry in reader.reload().of(JWT)]
    named = [message for message in errors(caplog) if f"jwt#{second} " in message]
    assert len(named) == 1 and "is back" in named[0]
    assert second in [entry.kid for entry in fresh_process(ring).of(JWT)]  # README: only an outside anchor tells


# --- the previous release ---------------------------------------------------------------------

def previous_release_store() -> types.ModuleType:
    """The key ring's store of the previous release (common/key_ring_store.py then), imported beside the
    current one; the modules it imports are today's, where they stand now."""
    from tests.support.previous_release import REPO, release_commit
    commit = release_commit("v0.1.0")
    source = subprocess.run(["git", "show", f"{commit}:common/key_ring_store.py"], cwd=REPO, capture_output=True,
                            text=True, timeout=60, check=True).stdout
    source = source.replace("from common import dynamo", "from common.database import dynamo").replace(
        "from common.key_encryption import", "from common.keys.encryption import")
    module = types.ModuleType("previous_key_ring_store")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    try:
        exec(compile(source, "previous/keys/ring_store.py", "exec"), module.__dict__)  # noqa: S102
    finally:
        del sys.modules[module.__name__]
    return module


def test_rings_of_the_previous_release_and_this_one_open_in_both(ring, tmp_path, caplog):
    previous = previous_release_store().KeyRingStore(ring.client, ring.table, ring.encryptor)
    first, second, third = jwt_kids(ring)
    first_before = copied(ring, first)
    entry = next(entry for entry in previous.load() if entry.kid == first)
    assert previous.retire(entry, now=read_ring(ring).newest(JWT).created_at)
    # A tombstone of the previous release (no ring state) retires its key here, and the first retirement
    # made here writes the manifest naming it too.
    assert first in [entry.kid for entry in read_ring(ring).retired()] and ring.load().manifest is None
    retire_now(ring, second, tmp_path)
    rotate(ring)
    assert ring.load().manifest.retired == {f"jwt#{first}", f"jwt#{second}"}
    put_back(ring, first_before)
    assert_refused(fresh_process(ring), first, caplog)
    retire_now(ring, first, tmp_path)  # the operator's repair: its tombstone written again
    assert get(ring, f"jwt#{first}")["state"] == {"S": "retired"}

    # The previous release opens every key and tombstone written here, drops the manifest, warns of nothing.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        entries = previous.load()
    by_kid = {entry.kid: entry.state for entry in entries}
    assert by_kid[first] == by_kid[second] == "retired" and by_kid[third] == "active"
    current = read_ring(ring)
    for kind in (CA, *ROTATED_KINDS):  # the newest of each kind carries both retirements in its item's key
        assert by_kid[current.newest(kind).kid] == "active"
        assert kind == CA or current.newest(kind).known is not None
    assert [record.getMessage() for record in caplog.records if record.name == "previous_key_ring_store"] == []


# --- end to end -------------------------------------------------------------------------------

def me(url: str, client: Client, token: str) -> requests.Response:
    """GET /session/me with `token` (bound to the client's key) and a fresh DPoP proof."""
    headers = {"Authorization": f"DPoP {token}", "DPoP": client.proof("GET", url + "/session/me", access_token=token)}
    return requests.get(url + "/session/me", headers=headers, timeout=10)


def test_a_token_of_a_retired_key_put_back_is_refused_by_a_process_started_later(make_server, base_config, caplog):
    prefix = unique_name("putback") + "_"
    url, ctx = make_server(table_prefix=prefix)
    client = register_device(url)
    client.login(PASSWORD)
    token = client.access_token
    old_kid = jwt.get_unverified_header(token)["kid"]
    assert me(url, client, token).status_code == 200
    before = copied(ctx.key_ring, old_kid)

    env = config_env({**base_config, "table_prefix": prefix})
    for command in (["keys", "rotate"], ["keys", "retire", "--force", old_kid]):
        result = CliRunner().invoke(main, command, env=env)
        assert result.exit_code == 0, result.output
    put_back(ctx.key_ring, before)  # a writer without the KEK, after the retirement

    caplog.clear()
    fresh_url, _ = make_server(table_prefix=prefix)  # a deploy, a scale-out, a restart
    assert problem(me(fresh_url, client, token))[:2] == (401, "invalid_token")
    assert any(f"jwt#{old_kid} " in message and "contradicts the ring" in message for message in errors(caplog))
