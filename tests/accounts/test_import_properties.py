"""Whatever a CSV line, an NDJSON line or a Keycloak user holds, a reader gives rows or refusals, never an
exception (SPEC §17): an import file is data from elsewhere, and one bad row must not stop the others."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.import_formats import read_rows
from accounts.import_rows import ImportRow, RowRefusal

HEADER = b"username,email,email_verified,password_hash,locale\n"
GOOD_AUTH0 = b'{"user_id": "auth0|a", "username": "ann", "email": "ann@example.com"}\n'

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)
# Values an attacker would put around valid ones: near-misses of hashes, addresses and names.
tricky_text = st.sampled_from([
    "", " ", "\x00", "ann", "ann@example.com", "$2b$10$", "$2b$04$" + "a" * 53, "$argon2id$v=19$m=65536,t=3,p=4$$",
    "$pbkdf2-sha256$29000$$", "$scrypt$ln=40,r=8,p=1$AA$AA", "ja", "true", "\ud800", "\u202e", "a" * 300,
    "@", "ann@", "@example.com", "ann@[127.0.0.1]", "auth0|", "google-oauth2|1"]) | st.text(max_size=60)
loose_values = json_values | tricky_text


def read_all(data: bytes, fmt: str, name: str = "file") -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        for row in read_rows(path, fmt):
            assert isinstance(row, (ImportRow, RowRefusal))
            if isinstance(row, RowRefusal):
                assert row.where and row.detail


@settings(max_examples=150)
@given(st.binary(max_size=300))
def test_any_bytes_in_a_csv_line(line):
    read_all(HEADER + line + b"\n" + b"bea,bea@example.com,true,,en\n", "csv")


@settings(max_examples=150)
@given(st.lists(tricky_text, min_size=0, max_size=7))
def test_any_fields_in_a_csv_line(fields):
    line = ",".join(f'"{f}"' if "," in f else f for f in fields)
    read_all(HEADER + line.encode("utf-8", "surrogatepass") + b"\n", "csv")


@settings(max_examples=150)
@given(st.binary(max_size=300))
def test_any_bytes_in_an_ndjson_line(line):
    read_all(GOOD_AUTH0 + line + b"\n" + GOOD_AUTH0, "auth0")


auth0_user = st.fixed_dictionaries({}, optional={
    name: loose_values for name in ("user_id", "email", "email_verified", "username", "blocked", "created_at",
                                    "locale", "user_metadata", "alt_id", "passwordHash", "identifiers")
} | {"_id": st.fixed_dictionaries({"$oid": loose_values}) | loose_values,
     "identities": st.lists(st.fixed_dictionaries({}, optional={
         name: loose_values for name in ("provider", "user_id", "connection", "isSocial", "profileData")}),
         max_size=3) | loose_values})


@settings(max_examples=200)
@given(auth0_user)
def test_any_auth0_user(user):
    read_all(GOOD_AUTH0 + json.dumps(user).encode("utf-8", "surrogatepass") + b"\n", "auth0")


credential = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["password", "otp", "webauthn", "recovery-authn-codes"]) | loose_values,
    "secretData": loose_values.map(lambda v: json.dumps(v) if not isinstance(v, str) else v),
    "credentialData": st.fixed_dictionaries({}, optional={
        "algorithm": st.sampled_from(["pbkdf2-sha256", "pbkdf2-sha512", "pbkdf2", "argon2"]) | loose_values,
        "hashIterations": loose_values, "additionalParameters": loose_values}).map(json.dumps) | loose_values,
    "hashedSaltedValue": loose_values, "salt": loose_values, "hashIterations": loose_values,
    "algorithm": loose_values, "value": loose_values})
keycloak_user = st.fixed_dictionaries({}, optional={
    name: loose_values for name in ("id", "username", "email", "emailVerified", "enabled", "createdTimestamp",
                                    "attributes", "serviceAccountClientId", "federationLink")
} | {"credentials": st.lists(credential, max_size=3) | loose_values,
     "federatedIdentities": st.lists(st.fixed_dictionaries({}, optional={
         name: loose_values for name in ("identityProvider", "userId", "userName")}), max_size=2) | loose_values})


@settings(max_examples=200)
@given(st.lists(keycloak_user | loose_values, max_size=3))
def test_any_keycloak_users(users):
    realm = {"id": "r", "realm": "acme", "users": users}
    read_all(json.dumps(realm).encode("utf-8", "surrogatepass"), "keycloak")
