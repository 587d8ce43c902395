"""Password hashing as a login sees it: a burst beyond the hash slots gets 503 with Retry-After
at once, and stored hashes move to the configured Argon2id parameters at the next login, both
towards cheaper and towards stronger settings."""
from __future__ import annotations

import threading
import time

import requests

from citylogin.client.api import sign_challenge
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device

SLOW_ARGON2 = {"argon2_time_cost": 3, "argon2_memory_cost": 65536, "argon2_parallelism": 1}


def _stored_hash(ctx, user_uuid: str) -> str:
    item = ctx.dynamodb.get_item(TableName=ctx.tables.users, Key={"user_uuid": {"S": user_uuid}},
                                 ConsistentRead=True)["Item"]
    return item["password_hash"]["S"]


def _login_body(url: str, client) -> dict:
    key_file = client.key_file
    challenge = requests.post(f"{url}/login/challenge", json={}, timeout=10).json()["challenge"]
    return {"username": key_file.username, "password": PASSWORD, "client_cert": key_file.client_cert_b64(),
            "challenge": challenge, "signature": sign_challenge(key_file.private_key(), challenge), "force": True}


def test_a_burst_beyond_the_hash_slots_gets_503_with_retry_after(make_server):
    url, _ = make_server(**SLOW_ARGON2, password_hash_slots=1, password_hash_queue=1)
    client = register_device(url)
    bodies = [_login_body(url, client) for _ in range(8)]
    start = threading.Barrier(len(bodies))
    answers: list[requests.Response] = []

    def log_in(body: dict) -> None:
        start.wait(60)
        answers.append(requests.post(f"{url}/login/", json=body, timeout=30))

    threads = [threading.Thread(target=log_in, args=(b,)) for b in bodies]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    elapsed = time.monotonic() - began
    busy = [a for a in answers if a.status_code == 503]
    served = [a for a in answers if a.status_code != 503]
    assert len(answers) == 8 and busy and served, [a.status_code for a in answers]
    assert {a.status_code for a in served} <= {200, 409}, [a.text for a in served]
    for answer in busy:
        assert problem(answer)[:2] == (503, "service_unavailable")
        assert answer.headers["Retry-After"] == "1"
    # one slot and one place in the queue: the served ones ran one after the other, the rest were
    # refused at once, so the whole burst takes a few hashes' time, not eight
    assert elapsed < 30, elapsed


def test_stored_hashes_follow_the_configured_parameters_both_ways(make_server):
    cheap = {"argon2_time_cost": 1, "argon2_memory_cost": 8192, "argon2_parallelism": 1}
    strong = {"argon2_time_cost": 2, "argon2_memory_cost": 12288, "argon2_parallelism": 2}
    url, ctx = make_server(**cheap)
    client = register_device(url)
    user_uuid = client.key_file.user_uuid
    assert "$m=8192,t=1,p=1$" in _stored_hash(ctx, user_uuid)

    stronger_url, _ = make_server(**strong)      # the same tables, stronger settings
    client.base_url = stronger_url
    client.login(PASSWORD, force=True)
    assert "$m=12288,t=2,p=2$" in _stored_hash(ctx, user_uuid)

    client.base_url = url                         # and back to the cheaper ones
    client.login(PASSWORD, force=True)
    assert "$m=8192,t=1,p=1$" in _stored_hash(ctx, user_uuid)
    client.login(PASSWORD, force=True)            # unchanged when it already matches
    assert "$m=8192,t=1,p=1$" in _stored_hash(ctx, user_uuid)
