"""Registration is limited per client IP, and so are its username_taken answers, so that they
cannot enumerate accounts at scale (SPEC §4; issue 16 item 12); an e-mail address another account
holds is not an answer of its own and counts as any registration. Counters live in DynamoDB: every
process sees them."""
from __future__ import annotations

import random

import requests

from accounts import user_service as users
from tests.conftest import unique_name
from tests.support.fixtures import problem

LIMITS = {"trusted_proxies": 1, "registrations_per_hour_per_ip": 4, "registration_refusals_per_hour_per_ip": 2}


# Drawn without repeats: the tables are this process's, so no other test counts against an address.
_ADDRESSES = iter(random.sample([f"198.51.{a}.{b}" for a in range(256) for b in range(1, 255)], k=1000))


def new_ip() -> str:
    """A client address of the test's own (the module's tables are shared), sent through the
    trusted proxy's X-Forwarded-For."""
    return next(_ADDRESSES)


def register(url, *, ip, username=None, email=None):
    name = unique_name()
    return requests.post(url + "/registration/", headers={"X-Forwarded-For": ip}, timeout=60, json={
        "username": username or name, "email": email or f"{name}@example.com", "password": "a long passphrase"})


def assert_too_many(response):
    assert problem(response)[:2] == (429, "too_many_attempts")
    assert 0 < int(response.headers["Retry-After"]) <= 3600


def test_one_address_registers_at_most_the_limit_an_hour(make_server):
    url, _ = make_server(**LIMITS)
    ip = new_ip()
    assert [register(url, ip=ip).status_code for _ in range(4)] == [201] * 4
    assert_too_many(register(url, ip=ip))
    assert register(url, ip=new_ip()).status_code == 201  # per address


def test_taken_answers_stop_at_the_limit_and_then_nothing_is_told(make_server):
    url, ctx = make_server(**LIMITS)
    other_url, _ = make_server(**LIMITS)  # another process on the same tables sees the same counters
    ip, name = new_ip(), unique_name()
    assert register(url, ip=new_ip(), username=name, email=f"{name}@example.com").status_code == 201
    assert problem(register(url, ip=ip, username=name))[:2] == (409, "username_taken")
    assert register(other_url, ip=ip, email=f"{name}@example.com").status_code == 201  # held: not a refusal
    assert problem(register(other_url, ip=ip, username=name))[:2] == (409, "username_taken")
    assert_too_many(register(url, ip=ip, username=name))       # taken, but no longer said
    free = unique_name()
    assert_too_many(register(other_url, ip=ip, username=free))  # free: the same answer
    assert users.find_user(ctx, username=free) is None
