"""Dormant accounts cost what unknown names cost even when their hashes' set is costly (SPEC §6: parity
comes first). Accounts registered by a process at argon2-cffi's own default parameters (t=3, 64 MiB, p=4:
5 × the cost of today's defaults), then a process at today's defaults with nothing declared: a wrong
password for such an account and for a name nobody has costs the same CPU, at the login and at the
pairing request, and the costly set is reported once as a WARNING. Its own tables: the costly set it
records would make every check of the other tests of a shared module costly. CPU time of this process,
which serves the app (the machine's load does not count); run alone (tests/conftest.py SERIAL)."""
from __future__ import annotations

import logging
import secrets
import statistics
import time
from collections.abc import Callable

import pytest
import requests

from accounts import user_service as users
from citylogin.client.api import sign_challenge
from common.config import Settings
from common.crypto.passwords import hash_parameters
from tests.support.fixtures import app_servers
from tests.support.live import register_device

WRONG = "not the password at all"
ARGON2_CFFI_DEFAULTS = {"argon2_time_cost": 3, "argon2_memory_cost": 65536, "argon2_parallelism": 4}
TODAYS_DEFAULTS = {name: Settings.model_fields[name].default for name in ARGON2_CFFI_DEFAULTS}
NO_LOCKOUT = {"login_max_failures": 100000, "login_max_failures_per_ip": 100000}
ROUNDS = 5


@pytest.fixture
def make_server(base_config):
    with app_servers({**base_config, **NO_LOCKOUT}) as start:
        yield start


def refused_in_cpu_seconds(call: Callable[[], requests.Response]) -> float:
    started = time.process_time()
    answer = call()
    spent = time.process_time() - started
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_credentials", answer.text
    return spent


def test_a_dormant_account_of_a_costly_set_costs_what_an_unknown_name_costs(make_server, caplog):
    old_url, old = make_server(**ARGON2_CFFI_DEFAULTS)
    dormant = register_device(old_url)
    assert hash_parameters(users.get_user(old, user_uuid=dormant.key_file.user_uuid).password_hash) == (3, 65536, 4)
    assert TODAYS_DEFAULTS == {"argon2_time_cost": 2, "argon2_memory_cost": 19456, "argon2_parallelism": 1}
    with caplog.at_level(logging.WARNING, logger="common.keys.password_parameters"):
        url, ctx = make_server(**TODAYS_DEFAULTS)        # restarted at today's defaults, nothing declared
    assert ctx.settings.argon2_legacy_parameters == ""
    assert (3, 65536, 4) in ctx.passwords.known_sets()
    warned = [r.getMessage() for r in caplog.records if "t=3,m=65536,p=4" in r.getMessage()]
    assert len(warned) == 1 and "adds about 5.1 × a current check's work" in warned[0], warned

    cert, key, fp = dormant.key_file.client_cert_b64(), dormant.key_file.private_key(), dormant.key_file.fingerprint

    def login(username: str) -> requests.Response:
        challenge = requests.post(url + "/login/challenge", json={}, timeout=10).json()["challenge"]
        return requests.post(url + "/login/", json={"username": username, "password": WRONG, "client_cert": cert,
                                                    "challenge": challenge,
                                                    "signature": sign_challenge(key, challenge)}, timeout=30)

    def pairing(username: str) -> requests.Response:
        return requests.post(url + "/registration/request_pairing_token",
                             json={"username": username, "password": WRONG, "client_cert_fp": fp}, timeout=30)

    names = {"dormant": dormant.key_file.username, "unknown": "nobody" + secrets.token_hex(6)}
    for route in (login, pairing):
        times: dict[str, list[float]] = {"dormant": [], "unknown": []}
        for _ in range(ROUNDS):
            for who, username in names.items():  # interleaved, so drifts hit both alike
                times[who].append(refused_in_cpu_seconds(lambda r=route, u=username: r(u)))
        ratio = statistics.median(times["dormant"]) / statistics.median(times["unknown"])
        assert 0.67 <= ratio <= 1.5, (route.__name__, times)
