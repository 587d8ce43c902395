"""Dormant accounts do not show by timing, with nothing declared (SPEC §6): a process started with
other Argon2id parameters, without CITYLOGIN_ARGON2_LEGACY_PARAMETERS, knows the sets earlier
processes hashed with (recorded in the key_ring table), so every password check of every route
verifies one hash of each set, for an unknown name as for a dormant account. Counted per
parameter set with a spy on Argon2's verify, not timed. The unit tests:
tests/common/keys/test_password_parameters.py."""
from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable

import argon2
import pytest
import requests
from click.testing import CliRunner

from accounts import user_service as users
from citylogin.cli.main import main
from citylogin.client.api import CityloginError, sign_challenge
from common.crypto.passwords import PasswordHasher, hash_parameters
from common.keys.password_parameter_store import RING, PasswordParameterStore, key_of
from tests.conftest import FAST_ARGON2
from tests.support.fixtures import app_servers
from tests.support.live import PASSWORD, register_device

WRONG = "not the password at all"
OLD = (FAST_ARGON2["argon2_time_cost"], FAST_ARGON2["argon2_memory_cost"], FAST_ARGON2["argon2_parallelism"])
NEW = (2, 8192, 1)
NEW_SETTINGS = {"argon2_time_cost": 2, "argon2_memory_cost": 8192, "argon2_parallelism": 1}
NO_LOCKOUT = {"login_max_failures": 100000, "login_max_failures_per_ip": 100000}


@pytest.fixture
def make_server(base_config):
    with app_servers({**base_config, **NO_LOCKOUT}) as start:
        yield start


class Verifications:
    """Every Argon2 verify of this process (the servers run in it), by the parameters of the hash."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self._lock = threading.Lock()

    def spy(self, real):
        def verify(hasher, hash, password):
            with self._lock:
                self.counts[hash_parameters(hash)] += 1
            return real(hasher, hash, password)
        return verify

    def of(self, call: Callable[[], object]) -> dict:
        with self._lock:
            self.counts.clear()
        call()
        with self._lock:
            return dict(self.counts)


@pytest.fixture
def verifications(monkeypatch) -> Verifications:
    spy = Verifications()
    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy.spy(argon2.PasswordHasher.verify))
    return spy


def hash_of(parameters: tuple[int, int, int]) -> str:
    """PASSWORD hashed as a process with `parameters` would, without recording them."""
    t, m, p = parameters
    return PasswordHasher(time_cost=t, memory_cost=m, parallelism=p).hash(PASSWORD)


def refused(status: int, code: str, call: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        with pytest.raises(CityloginError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (status, code), caught.value.body
    return run


def posted(url: str, body: dict, code: str = "invalid_credentials") -> Callable[[], None]:
    def run() -> None:
        response = requests.post(url, json=body, timeout=30)
        assert response.status_code == 401 and response.json()["code"] == code, response.text
    return run


def test_every_password_check_of_a_later_process_verifies_each_set_once(make_server, verifications):
    old_url, _ = make_server()                    # hashes with OLD, and recorded it at its start
    dormant = register_device(old_url)
    dormant.login(PASSWORD)                       # signed in: its tokens serve the re-authentications below
    url, ctx = make_server(**NEW_SETTINGS)        # a later process, the setting empty
    assert ctx.settings.argon2_legacy_parameters == "" and ctx.passwords.parameters == NEW
    known = ctx.passwords.known_sets()
    assert OLD in known and NEW in known
    every_set_once = {parameters: 1 for parameters in known}

    dormant.base_url = url
    name, unknown, fp = dormant.key_file.username, "nobody" + secrets.token_hex(6), dormant.key_file.fingerprint
    qr = dormant.request_pairing()["qr_payload"]

    def login(username: str) -> Callable[[], None]:
        def run() -> None:
            challenge = requests.post(url + "/login/challenge", json={}, timeout=10).json()["challenge"]
            posted(url + "/login/", {"username": username, "password": WRONG,
                                     "client_cert": dormant.key_file.client_cert_b64(), "challenge": challenge,
                                     "signature": sign_challenge(dormant.key_file.private_key(), challenge)})()
        return run

    checks = {
        "login": login,
        "pairing token, password form": lambda username: posted(url + "/registration/request_pairing_token", {
            "username": username, "password": WRONG, "client_cert_fp": fp}),
        "device/register": lambda username: posted(
            url + "/device/register", {"qr_code": qr, "username": username, "password": WRONG}),
        "device/recover": lambda username: posted(
            url + "/device/recover", {"username": username, "password": WRONG, "recovery_code": "2345-6789-abcd"}),
    }
    for route, check in checks.items():
        costs = {who: verifications.of(check(username)) for who, username in (("dormant", name), ("unknown", unknown))}
        assert costs == {"dormant": every_set_once, "unknown": every_set_once}, route
    reauthentications = {
        "password change": refused(401, "invalid_credentials", lambda: dormant.change_password(
            current_password=WRONG, new_password="another fine password")),
        "e-mail change": refused(401, "invalid_credentials", lambda: dormant.change_email(
            password=WRONG, new_email="new@example.com")),
        "deletion": refused(401, "invalid_credentials", lambda: dormant.delete_account(WRONG)),
    }
    for route, check in reauthentications.items():
        assert verifications.of(check) == every_set_once, route

    assert verifications.of(lambda: dormant.login(PASSWORD, force=True)) == every_set_once  # and it succeeds
    assert hash_parameters(users.get_user(ctx, user_uuid=dormant.key_file.user_uuid).password_hash) == NEW


def test_a_running_process_learns_a_set_recorded_by_a_process_started_after_it(make_server, verifications):
    url, ctx = make_server(key_ring_reload_seconds=1.0)
    later = (1, 8200, 1)
    assert later not in ctx.passwords.known_sets()
    make_server(argon2_memory_cost=8200)          # records its set at its start
    deadline = time.monotonic() + 60              # the refresher thread reads once a reload interval
    while later not in ctx.passwords.known_sets():
        assert time.monotonic() < deadline, "the set recorded by the later process was never learnt"
        time.sleep(0.1)
    assert verifications.of(lambda: ctx.passwords.check(None, WRONG))[later] == 1


def test_a_hash_of_a_set_no_process_recorded_is_recorded_at_its_first_check(make_server, verifications):
    url, ctx = make_server()
    imported = register_device(url)
    elsewhere = (1, 8300, 1)                      # e.g. accounts imported from another system
    users.replace_password_hash(ctx, user_uuid=imported.key_file.user_uuid, password_hash=hash_of(elsewhere))
    imported.login(PASSWORD)                       # met, recorded, and rehashed to the current set
    ctx.password_parameters.settle()
    store = PasswordParameterStore(ctx.dynamodb, ctx.tables.key_ring, ctx.key_ring.encryptor)
    assert elsewhere in store.load().listed.sets
    assert elsewhere in ctx.passwords.known_sets()
    _, fresh = make_server()                       # and a process started now knows it from the start
    assert elsewhere in fresh.passwords.known_sets()


def test_the_retire_command_removes_a_set_no_hash_uses_and_keeps_one_still_in_use(make_server, base_config, tmp_path):
    still_used, given_up = (1, 8400, 1), (1, 8500, 1)
    register_device(make_server(argon2_memory_cost=8400)[0])  # a dormant account: keeps its hash of still_used
    moved = register_device(make_server(argon2_memory_cost=8500)[0])
    url, ctx = make_server()                      # the current set; the login rehashes to it
    moved.base_url = url
    moved.login(PASSWORD)
    assert hash_parameters(users.get_user(ctx, user_uuid=moved.key_file.user_uuid).password_hash) == OLD
    env = {"CITYLOGIN_DYNAMODB_ENDPOINT_URL": base_config["dynamodb_endpoint_url"],
           "CITYLOGIN_TABLE_PREFIX": base_config["table_prefix"],
           "CITYLOGIN_DATA_DIR": base_config["data_dir"],  # its key-encryption key: the records are sealed
           **{f"CITYLOGIN_{k.upper()}": str(v) for k, v in FAST_ARGON2.items()}}

    def run(*args: str) -> dict[str, str]:
        done = CliRunner().invoke(main, ["password-parameters", *args], env=env)
        assert done.exit_code == 0, done.output
        return {line.split()[0]: line for line in done.output.splitlines() if line.startswith("t=")}

    early = run("retire")                         # the process of given_up stopped only now
    assert "kept: a process hashed with it less than a day ago" in early["t=1,m=8500,p=1"]
    assert "kept: 1 stored hashes use it" in early["t=1,m=8400,p=1"]
    assert "kept: the current set" in early[key_of(OLD)]

    record = {"ring": {"S": RING}, "key_id": {"S": key_of(given_up)}}
    ctx.dynamodb.update_item(TableName=ctx.tables.key_ring, Key=record,
                             UpdateExpression="SET last_used = :then",  # a day and more later
                             ExpressionAttributeValues={":then": {"N": str(int(time.time()) - 2 * 86400)}})
    listed = run("list")
    assert "hashes        0" in listed["t=1,m=8500,p=1"] and "hashes        1" in listed["t=1,m=8400,p=1"]
    retired = run("retire")
    assert "retired: no stored hash uses it" in retired["t=1,m=8500,p=1"]
    assert "kept: 1 stored hashes use it" in retired["t=1,m=8400,p=1"]
    recorded = PasswordParameterStore(ctx.dynamodb, ctx.tables.key_ring, ctx.key_ring.encryptor).load().listed.sets
    assert given_up not in recorded and {still_used, OLD} <= recorded

    # hashes of a release that recorded no set (or imported): listed, and recorded on demand
    older = register_device(url)
    users.replace_password_hash(ctx, user_uuid=older.key_file.user_uuid, password_hash=hash_of((1, 8600, 1)))
    assert "not recorded" in run("list")["t=1,m=8600,p=1"]
    assert "recorded, sealed: 1 stored hashes use it" in run("record")["t=1,m=8600,p=1"]
    assert "hashes        1" in run("list")["t=1,m=8600,p=1"] and run("record") == {}
    _, fresh = make_server()                      # a process started now no longer pays for it
    assert given_up not in fresh.passwords.known_sets()
    assert {still_used, (1, 8600, 1)} <= set(fresh.passwords.known_sets())
