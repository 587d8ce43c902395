"""Imported password hashes (SPEC §17): each form the sources write reads into one canonical form that
the scheme's own library verifies; anything else is UnknownScheme or InvalidHash, never another error,
and no hash costs more than the bounds."""
from __future__ import annotations

import base64
import hashlib
import json
import secrets

import argon2
import bcrypt
import pytest
from argon2 import low_level
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.crypto.imported_hashes import (
    InvalidHash,
    UnknownScheme,
    canonical_hash,
    check_scheme_key,
    dummy_hash,
    keycloak_hash,
    scheme_key,
    verify,
)

PASSWORD = "correct horse battery staple ✓"
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def ab64(data: bytes) -> str:
    """passlib's adapted base64: '.' for '+', no padding."""
    return b64(data).replace("+", ".")


def check(text: str, *, key: str) -> str:
    """Canonical, idempotent, of `key`, verifying PASSWORD and nothing else."""
    canonical = canonical_hash(text)
    assert canonical_hash(canonical) == canonical
    assert scheme_key(canonical) == key
    assert verify(canonical, PASSWORD)
    assert not verify(canonical, PASSWORD + "x")
    assert not verify(canonical, "")
    return canonical


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_bcrypt_of_every_prefix_becomes_2b(prefix):
    made = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(5)).decode()
    canonical = check(prefix + made[4:], key="bcrypt$5")
    assert canonical == made


def test_bcrypt_verifies_the_first_72_bytes_as_the_source_did():
    long = "é" * 50  # 100 bytes: the source hashed (and compared) the first 72
    made = bcrypt.hashpw(long.encode()[:72], bcrypt.gensalt(4)).decode()
    assert verify(made, long)
    assert verify(made, "é" * 36 + "anything after 72 bytes")
    assert not verify(made, "é" * 35)


@pytest.mark.parametrize("variant", [argon2.Type.ID, argon2.Type.I, argon2.Type.D])
def test_argon2_hashes_of_argon2_cffi(variant):
    made = argon2.PasswordHasher(time_cost=2, memory_cost=1024, parallelism=2, type=variant).hash(PASSWORD)
    name = made.split("$")[1]
    assert check(made, key=f"{name}$1024,2,2") == made


def test_argon2_version_1_0_and_a_missing_version():
    salt = secrets.token_bytes(16)
    raw = low_level.hash_secret_raw(PASSWORD.encode(), salt, time_cost=1, memory_cost=512, parallelism=1,
                                    hash_len=24, type=low_level.Type.ID, version=16)
    with_version = check(f"$argon2id$v=16$m=512,t=1,p=1${b64(salt)}${b64(raw)}", key="argon2id$512,1,1")
    assert check(f"$argon2id$m=512,t=1,p=1${b64(salt)}${b64(raw)}", key="argon2id$512,1,1") == with_version


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
def test_pbkdf2_in_passlibs_form_and_the_phc_form(digest):
    salt = secrets.token_bytes(16)
    derived = hashlib.pbkdf2_hmac(digest, PASSWORD.encode(), salt, 2900)
    name = "pbkdf2" if digest == "sha1" else f"pbkdf2-{digest}"
    passlib = check(f"${name}$2900${ab64(salt)}${ab64(derived)}", key=f"pbkdf2-{digest}$2900,{len(derived)}")
    assert passlib == f"$pbkdf2-{digest}$i=2900,l={len(derived)}${b64(salt)}${b64(derived)}"
    assert canonical_hash(f"$pbkdf2-{digest}$i=2900${b64(salt)}${b64(derived)}==") == passlib


@pytest.mark.parametrize("digest", ["sha256", "sha1"])
def test_django_pbkdf2_argon2_and_bcrypt(digest):
    salt = "X7vQ2mKp9LrT4wZs8NcY1e"  # Django's: text, used as its bytes
    derived = hashlib.pbkdf2_hmac(digest, PASSWORD.encode(), salt.encode(), 2600)
    django = f"pbkdf2_{digest}$2600${salt}${base64.b64encode(derived).decode()}"
    canonical = check(django, key=f"pbkdf2-{digest}$2600,{len(derived)}")
    assert canonical == f"$pbkdf2-{digest}$i=2600,l={len(derived)}${b64(salt.encode())}${b64(derived)}"
    made = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    assert check("argon2" + made, key="argon2id$1024,1,1") == made
    made = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    assert check("bcrypt$" + made, key="bcrypt$4") == made
    with pytest.raises(InvalidHash):
        canonical_hash(f"pbkdf2_{digest}$2600$a$b$c")


def test_pbkdf2_with_a_length_other_than_its_hash_is_invalid():
    derived = hashlib.pbkdf2_hmac("sha256", b"x", b"saltsalt", 10, dklen=32)
    with pytest.raises(InvalidHash):
        canonical_hash(f"$pbkdf2-sha256$i=10,l=64${b64(b'saltsalt')}${b64(derived)}")


def test_scrypt_in_passlibs_form():
    salt = secrets.token_bytes(16)
    derived = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=1 << 10, r=8, p=1, dklen=32)
    canonical = check(f"$scrypt$ln=10,r=8,p=1${ab64(salt)}${ab64(derived)}", key="scrypt$10,8,1")
    assert canonical == f"$scrypt$ln=10,r=8,p=1${b64(salt)}${b64(derived)}"


def keycloak_pbkdf2(algorithm: str, digest: str, iterations: int, key_bytes: int) -> tuple[dict, dict]:
    """A password credential as Keycloak (>= 12) writes it in a realm export: two JSON strings."""
    salt = secrets.token_bytes(16)
    value = hashlib.pbkdf2_hmac(digest, PASSWORD.encode(), salt, iterations, dklen=key_bytes)
    secret = json.dumps({"value": base64.b64encode(value).decode(), "salt": base64.b64encode(salt).decode(),
                         "additionalParameters": {}})
    credential = json.dumps({"hashIterations": iterations, "algorithm": algorithm, "additionalParameters": {}})
    return json.loads(secret), json.loads(credential)


@pytest.mark.parametrize(("algorithm", "digest", "key_bytes"),
                         [("pbkdf2-sha256", "sha256", 64), ("pbkdf2-sha512", "sha512", 64), ("pbkdf2", "sha1", 64)])
def test_keycloak_pbkdf2_credentials(algorithm, digest, key_bytes):
    secret, credential = keycloak_pbkdf2(algorithm, digest, 2750, key_bytes)
    canonical = keycloak_hash(secret, credential)
    check(canonical, key=f"pbkdf2-{digest}$2750,{key_bytes}")


def test_a_credential_keycloak_made():
    # The default realm's pbkdf2-sha256 at 27500 iterations; the password is "test".
    secret = {"value": "/bVkHA4G/VOskjaCgNYyTz1BhgD+9X8bxCNEPGGpnDCJbWHDXIW0G8IlSBhDdJsXTjrXt/7yQguBwJ3sxSmSKA==",
              "salt": "lZtleWv1DeEcNIr8MTzdeg==", "additionalParameters": {}}
    canonical = keycloak_hash(secret, {"hashIterations": 27500, "algorithm": "pbkdf2-sha256",
                                       "additionalParameters": {}})
    assert scheme_key(canonical) == "pbkdf2-sha256$27500,64"
    assert verify(canonical, "test") and not verify(canonical, "Test")


@pytest.mark.parametrize(("kind", "version", "variant"),
                         [("id", "1.3", low_level.Type.ID), ("i", "1.3", low_level.Type.I),
                          ("d", "1.0", low_level.Type.D)])
def test_keycloak_argon2_credentials(kind, version, variant):
    salt = secrets.token_bytes(16)
    raw = low_level.hash_secret_raw(PASSWORD.encode(), salt, time_cost=5, memory_cost=7168, parallelism=1,
                                    hash_len=32, type=variant, version=19 if version == "1.3" else 16)
    secret = {"value": base64.b64encode(raw).decode(), "salt": base64.b64encode(salt).decode(),
              "additionalParameters": {}}
    credential = {"hashIterations": 5, "algorithm": "argon2", "additionalParameters": {
        "hashLength": ["32"], "memory": ["7168"], "type": [kind], "version": [version], "parallelism": ["1"]}}
    check(keycloak_hash(secret, credential), key=f"argon2{kind}$7168,5,1")
    credential["additionalParameters"]["hashLength"] = ["64"]
    with pytest.raises(InvalidHash):
        keycloak_hash(secret, credential)


@pytest.mark.parametrize("algorithm", ["bcrypt", "sha256", "", None, 7])
def test_keycloak_algorithms_not_verified(algorithm):
    with pytest.raises((UnknownScheme, InvalidHash)):
        keycloak_hash({"value": "AAAA", "salt": "AAAA"}, {"hashIterations": 1, "algorithm": algorithm})


@pytest.mark.parametrize("text", [
    "$2b$17$" + "a" * 53,  # bcrypt beyond cost 16
    "$2b$03$" + "a" * 53,
    "$2b$12$" + "a" * 52,
    "$pbkdf2-sha256$i=10000001,l=32$c2FsdHNhbHQ$" + "A" * 43,
    "$pbkdf2-sha256$i=0$c2FsdHNhbHQ$" + "A" * 43,
    "$pbkdf2-sha256$i=1000$c2FsdA$" + "A" * 43,  # a 4-byte salt
    "$scrypt$ln=21,r=8,p=1$c2FsdHNhbHQ$" + "A" * 43,
    "$scrypt$ln=15,r=8,p=64$c2FsdHNhbHQ$" + "A" * 43,
    "$argon2id$v=19$m=1048576,t=1,p=1$c2FsdHNhbHQ$" + "A" * 43,  # 1 GiB
    "$argon2id$v=19$m=65536,t=32,p=1$c2FsdHNhbHQ$" + "A" * 43,
    "$argon2id$v=19$m=65536,t=3,p=4,keyid=x$c2FsdHNhbHQ$" + "A" * 43,
    "$argon2id$v=18$m=65536,t=3,p=4$c2FsdHNhbHQ$" + "A" * 43,
    "$argon2id$v=19$m=٦٥٥٣٦,t=3,p=4$c2FsdHNhbHQ$" + "A" * 43,  # digits of another script
    "$scrypt$ln=10,r=8,p=1$c2FsdH.+c2FsdA$" + "A" * 43,
])
def test_invalid_or_too_costly_hashes(text):
    with pytest.raises(InvalidHash):
        canonical_hash(text)
    assert not verify(text, PASSWORD)


@pytest.mark.parametrize("text", ["", "plain", "$1$abc$def", "$2x$10$" + "a" * 53, "$5$rounds=5000$a$b",
                                  "$pbkdf2-md5$1000$c2FsdA$AAAA", "$argon2$v=19$m=1,t=1,p=1$a$b",
                                  "bcrypt_sha256$$2b$12$" + "a" * 53, "md5$salt$hash", "{SSHA}abc",
                                  "pbkdf2_sha256" + "é" * 2000])
def test_unknown_schemes(text):
    with pytest.raises(UnknownScheme):
        canonical_hash(text)


def test_errors_never_carry_the_hash():
    text = "$pbkdf2-sha256$i=99999999$c2VjcmV0c2FsdA$c2VjcmV0aGFzaHNlY3JldGhhc2g"
    with pytest.raises(InvalidHash) as refused:
        canonical_hash(text)
    assert "c2VjcmV0" not in str(refused.value) and "99999999" not in str(refused.value)


@pytest.mark.parametrize("key", ["bcrypt$4", "argon2id$1024,1,1", "argon2d$512,2,1", "pbkdf2-sha512$1000,64",
                                 "scrypt$10,8,1"])
def test_a_dummy_has_its_keys_cost(key):
    dummy = dummy_hash(key)
    assert scheme_key(dummy) == key
    assert not verify(dummy, PASSWORD)


@pytest.mark.parametrize("key", ["bcrypt$17", "bcrypt$", "bcrypt$4,4", "bcrypt$04", "argon2id$1048576,1,1",
                                 "pbkdf2-sha256$1000,4096", "scrypt$24,8,1", "scrypt$15,8", "scrypt$015,8,1",
                                 "x" * 100])
def test_dummies_of_keys_beyond_bounds_are_refused(key):
    with pytest.raises(InvalidHash):
        dummy_hash(key)
    with pytest.raises(InvalidHash):
        check_scheme_key(key)


@pytest.mark.parametrize("key", ["md5$1", "pbkdf2-md5$1000,16", "", "bcrypt"])
def test_keys_of_unknown_schemes_are_refused(key):
    with pytest.raises((UnknownScheme, InvalidHash)):
        check_scheme_key(key)


def phc_like() -> st.SearchStrategy[str]:
    """Strings an attacker would put around the accepted forms."""
    idents = st.sampled_from(["2a", "2b", "2y", "2x", "argon2id", "argon2i", "argon2d", "pbkdf2", "pbkdf2-sha256",
                              "pbkdf2-sha512", "pbkdf2-", "scrypt", "", "1"])
    django = st.sampled_from(["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt", "argon2$argon2id", "bcrypt$$2b"])
    numbers = st.one_of(st.integers(-5, 10**12).map(str), st.sampled_from(["", "٣", "1e3", "0x10", " 5", "+5"]))
    params = st.lists(st.tuples(st.sampled_from(["v", "m", "t", "p", "i", "l", "ln", "r", "x", ""]), numbers)
                      .map("=".join), max_size=5).map(",".join)
    fields = st.one_of(params, numbers, st.text(alphabet="./+=AZaz09$,", max_size=60), st.text(max_size=20))
    return st.one_of(st.builds(lambda ident, rest: "$".join(["", ident, *rest]), idents, st.lists(fields, max_size=6)),
                     st.builds(lambda ident, rest: "$".join([ident, *rest]), django, st.lists(fields, max_size=6)))


@EXAMPLES
@given(st.one_of(phc_like(), st.text(max_size=200)))
def test_attacker_strings_raise_only_the_two_refusals(text):
    try:
        canonical = canonical_hash(text)
    except (UnknownScheme, InvalidHash):
        assert not verify(text, PASSWORD)
        return
    assert canonical_hash(canonical) == canonical
    scheme_key(canonical)
    verify(canonical, PASSWORD)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=8)


@EXAMPLES
@given(secret=st.one_of(json_values, st.fixed_dictionaries({"value": json_values, "salt": json_values})),
       credential=st.one_of(json_values, st.fixed_dictionaries({
           "algorithm": st.sampled_from(["pbkdf2", "pbkdf2-sha256", "pbkdf2-sha512", "argon2", "bcrypt"]),
           "hashIterations": json_values,
           "additionalParameters": st.dictionaries(
               st.sampled_from(["type", "version", "memory", "parallelism", "hashLength"]),
               st.one_of(json_values, st.lists(st.text(alphabet="0123456789.id", max_size=6), max_size=2)))})))
def test_keycloak_credentials_from_an_attacker_raise_only_the_two_refusals(secret, credential):
    try:
        keycloak_hash(secret, credential)
    except (UnknownScheme, InvalidHash):
        pass


@EXAMPLES
@given(st.text(max_size=100))
def test_verify_never_raises(password):
    assert not verify("$pbkdf2-sha256$i=1,l=32$c2FsdHNhbHQ$" + "A" * 43, password)
    assert not verify("$2b$04$" + "." * 53, password)


@EXAMPLES
@given(st.one_of(st.builds(lambda name, numbers: f"{name}${numbers}",
                           st.sampled_from(["bcrypt", "argon2id", "argon2i", "pbkdf2-sha256", "pbkdf2-md5", "scrypt",
                                            ""]),
                           st.lists(st.one_of(st.integers(-3, 10**9).map(str), st.sampled_from(["", "٣", " 1"])),
                                    max_size=4).map(",".join)),
                 st.text(max_size=80)))
def test_scheme_keys_from_a_record_raise_only_the_two_refusals(key):
    """A key read back from the record is a key as scheme_key writes it, within the bounds, or refused."""
    try:
        checked = check_scheme_key(key)
    except (UnknownScheme, InvalidHash):
        return
    assert checked == key
    if not key.startswith("bcrypt$"):  # the others' dummies cost nothing to make; a bcrypt one is hashed
        assert scheme_key(dummy_hash(key)) == key
