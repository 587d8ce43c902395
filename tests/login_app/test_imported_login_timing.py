"""POST /login/ does not tell an imported account apart by its time (SPEC §17 under §6's timing rules): a wrong
password on an account of each imported scheme, on a native account, and an unknown name cost the same,
since every check verifies one hash of each scheme key in use. CPU time of this process, which serves the
app (as tests/login_app/test_login_failures.py measures a dormant hash): the machine's load does not count."""
from __future__ import annotations

import base64
import hashlib
import secrets
import statistics
import time

import argon2
import bcrypt
import pytest

from common.crypto.imported_hashes import canonical_hash, scheme_key
from common.crypto.passwords import IMPORTED_PREFIX
from common.keys.imported_schemes import record_schemes
from tests.login_app.test_login_failures import WRONG, login_body, post_login
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device

pytestmark = pytest.mark.slow


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def costly_hashes(password: str) -> dict[str, str]:
    """One hash of each scheme costing tens of milliseconds, so that one left out of a check would show
    (p=1: all of it on this process's CPU)."""
    salt, secret = secrets.token_bytes(16), password.encode()
    return {
        "bcrypt": bcrypt.hashpw(secret, bcrypt.gensalt(9)).decode(),
        "argon2id": argon2.PasswordHasher(time_cost=2, memory_cost=32768, parallelism=1).hash(password),
        "pbkdf2": f"$pbkdf2-sha512$i=100000,l=64${b64(salt)}$"
                  f"{b64(hashlib.pbkdf2_hmac('sha512', secret, salt, 100000))}",
        "scrypt": f"$scrypt$ln=14,r=8,p=1${b64(salt)}$"
                  f"{b64(hashlib.scrypt(secret, salt=salt, n=1 << 14, r=8, p=1, dklen=32))}",
    }


def test_an_imported_account_costs_what_an_unknown_name_and_a_native_account_cost(make_server):
    url, ctx = make_server(login_max_failures=1000, login_max_failures_per_ip=100000)
    client = register_device(url)
    stored = {name: IMPORTED_PREFIX + canonical_hash(text) for name, text in costly_hashes(PASSWORD).items()}
    keys = [scheme_key(text[len(IMPORTED_PREFIX):]) for text in stored.values()]
    assert record_schemes(ctx.dynamodb, ctx.tables.key_ring, keys, encryptor=ctx.key_ring.encryptor) == []
    ctx.password_parameters.refresh(max_age=0)
    assert sorted(ctx.passwords.imported_keys()) == sorted(keys)
    usernames = {"unknown": "nobody" + secrets.token_hex(6), "native": register_device(url).key_file.username}
    for name, text in stored.items():
        account = register_device(url)
        ctx.dynamodb.update_item(TableName=ctx.tables.users, Key={"user_uuid": {"S": account.key_file.user_uuid}},
                                 UpdateExpression="SET password_hash = :h", ExpressionAttributeValues={
                                     ":h": {"S": text}})
        usernames[name] = account.key_file.username

    def cpu_seconds(body) -> float:
        started = time.process_time()
        assert problem(post_login(client, body))[1] == "invalid_credentials"
        return time.process_time() - started

    times: dict[str, list[float]] = {name: [] for name in usernames}
    for _ in range(5):
        for name, username in usernames.items():  # interleaved, so drifts hit all alike
            times[name].append(cpu_seconds(login_body(client, WRONG, username=username)))
    medians = {name: statistics.median(samples) for name, samples in times.items()}
    for name, median in medians.items():
        assert 0.67 <= median / medians["unknown"] <= 1.5, (name, times)
