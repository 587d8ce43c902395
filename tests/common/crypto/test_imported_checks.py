"""PasswordHasher.check of hashes an import brought (SPEC §17, §6): verified by their own scheme, and every
check verifies a dummy of each imported scheme key in use, so that an unknown name, a native hash and an
imported one of each scheme cost the same."""
from __future__ import annotations

import base64
import hashlib
import secrets
import statistics

import argon2
import bcrypt
import pytest

from common.crypto.imported_hashes import canonical_hash, scheme_key
from common.crypto.passwords import IMPORTED_PREFIX, PasswordHasher
from tests.support.cpu_time import cpu_median

FAST_ARGON2 = {"time_cost": 1, "memory_cost": 8192, "parallelism": 1}
PASSWORD = "correct horse"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def imported_hashes(password: str = PASSWORD) -> dict[str, str]:
    """One stored hash of each scheme, each costing some milliseconds (p=1: this process's CPU)."""
    salt = secrets.token_bytes(16)
    return {
        "bcrypt": bcrypt.hashpw(password.encode(), bcrypt.gensalt(7)).decode(),
        "argon2id": argon2.PasswordHasher(time_cost=1, memory_cost=16384, parallelism=1).hash(password),
        "pbkdf2": f"$pbkdf2-sha256$i=40000,l=32${b64(salt)}$"
                  f"{b64(hashlib.pbkdf2_hmac('sha256', password.encode(), salt, 40000))}",
        "scrypt": f"$scrypt$ln=12,r=8,p=1${b64(salt)}$"
                  f"{b64(hashlib.scrypt(password.encode(), salt=salt, n=1 << 12, r=8, p=1, dklen=32))}",
    }


@pytest.fixture(scope="module")
def stored() -> dict[str, str]:
    return {name: IMPORTED_PREFIX + canonical_hash(text) for name, text in imported_hashes().items()}


def learnt_hasher(stored: dict[str, str]) -> PasswordHasher:
    hasher = PasswordHasher(**FAST_ARGON2)
    keys = [scheme_key(text[len(IMPORTED_PREFIX):]) for text in stored.values()]
    assert hasher.learn_imported(keys) == keys
    assert hasher.learn_imported(keys) == []
    return hasher




def test_an_imported_hash_verifies_by_its_scheme(stored):
    hasher = learnt_hasher(stored)
    native = hasher.hash(PASSWORD)
    for text in stored.values():
        assert hasher.check(text, PASSWORD)
        assert not hasher.check(text, PASSWORD + "!")
        assert hasher.needs_rehash(text)
    assert hasher.check(native, PASSWORD) and not hasher.check(native, "wrong")
    assert not hasher.check(None, PASSWORD)
    assert not hasher.check(IMPORTED_PREFIX + "$2b$04$" + "." * 53, PASSWORD)
    assert not hasher.check(IMPORTED_PREFIX + "not a hash", PASSWORD)


def test_every_check_costs_the_same_whichever_scheme_made_the_hash(stored):
    hasher = learnt_hasher(stored)
    native = hasher.hash(PASSWORD)
    checks = {"unknown": None, "native": native, **stored}
    costs: dict[str, list[float]] = {name: [] for name in checks}
    for _ in range(3):
        for name, text in checks.items():  # interleaved, so drifts hit all alike
            costs[name].append(cpu_median(lambda text=text: hasher.check(text, "wrong"), times=1))
    medians = {name: statistics.median(samples) for name, samples in costs.items()}
    assert max(medians.values()) < 1.5 * min(medians.values()), medians


def test_an_imported_scheme_not_learnt_is_what_leaked(stored, caplog):
    hasher = PasswordHasher(**FAST_ARGON2)  # the import's keys not learnt: an imported hash costs more
    unknown = cpu_median(lambda: hasher.check(None, "wrong"))
    assert cpu_median(lambda: hasher.check(stored["bcrypt"], "wrong")) > 2 * unknown
    assert "bcrypt$7" in caplog.text and "did not know" in caplog.text


def test_a_key_beyond_the_bounds_is_not_learnt(caplog):
    hasher = PasswordHasher(**FAST_ARGON2)
    assert hasher.learn_imported(["bcrypt$17", "scrypt$10,8,1", "nonsense"]) == ["scrypt$10,8,1"]
    assert hasher.imported_keys() == ["scrypt$10,8,1"]
    assert hasher.learn_imported(["bcrypt$17"]) == []  # read again at each reload: reported once
    assert caplog.text.count("beyond citylogin's bounds") == 2  # bcrypt$17 and nonsense
