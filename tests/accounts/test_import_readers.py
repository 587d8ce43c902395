"""The readers of SPEC §17 on files shaped as Keycloak, Auth0 and a database's CSV export write them
(tests/accounts/import_files, hashes by the real libraries): every account brought with its hash in the
canonical form, which verifies with the person's password, and what is not brought said as a note."""
from __future__ import annotations

from pathlib import Path

import pytest

from accounts.import_formats import read_rows
from accounts.import_keycloak import FEDERATED_PASSWORD, NOT_BROUGHT, USERNAME_FROM_EMAIL
from accounts.import_rows import ImportedIdentity, ImportRow, RefusalReason, RowRefusal
from common.crypto.imported_hashes import scheme_key, verify
from common.crypto.passwords import IMPORTED_PREFIX
from tests.accounts.import_passwords import PASSWORDS

FILES = Path(__file__).parent / "import_files"


def rows_of(name: str, fmt: str) -> tuple[dict[str, ImportRow], dict[str, RowRefusal]]:
    """The file's rows by username and its refusals by where."""
    rows: dict[str, ImportRow] = {}
    refusals: dict[str, RowRefusal] = {}
    for row in read_rows(FILES / name, fmt):
        if isinstance(row, RowRefusal):
            refusals[row.where] = row
        else:
            rows[row.username] = row
    return rows, refusals


def signs_in(row: ImportRow, password: str) -> bool:
    assert row.password_hash.startswith(IMPORTED_PREFIX)
    return verify(row.password_hash.removeprefix(IMPORTED_PREFIX), password)


def test_keycloak_realm_export_brings_every_password_kind_with_its_hash():
    rows, _ = rows_of("keycloak-realm.json", "keycloak")
    expected_keys = {"alice": "pbkdf2-sha256$27500,64", "bob": "pbkdf2-sha512$210000,64",
                     "carol": "argon2id$7168,5,1", "dave": "argon2id$7168,5,1",
                     "frank": "pbkdf2-sha256$27500,64", "grace": "pbkdf2-sha1$20000,64"}
    for username, key in expected_keys.items():
        row = rows[username]
        assert scheme_key(row.password_hash.removeprefix(IMPORTED_PREFIX)) == key
        assert signs_in(row, PASSWORDS[f"keycloak:{username}"]), username
        assert not signs_in(row, PASSWORDS[f"keycloak:{username}"] + "x")


def test_keycloak_user_fields():
    rows, _ = rows_of("keycloak-realm.json", "keycloak")
    alice = rows["alice"]
    assert (alice.source, alice.source_id, alice.where) == ("keycloak", "0b6c1f7e-2a3d-4e5f-8a9b-0c1d2e3f4a01",
                                                            "users[0]")
    assert (alice.email, alice.email_verified, alice.locale, alice.disabled) == ("alice@example.org", True, "ja",
                                                                                 False)
    assert alice.created_at == "2024-06-10T06:13:20Z" and alice.notes == () and alice.identities == ()
    assert rows["carol"].locale == "en"  # "fr": a language citylogin does not speak
    assert rows["dave"].disabled  # "enabled": false
    assert rows["grace"].email == "" and not rows["grace"].email_verified


def test_keycloak_credentials_not_brought_are_notes():
    rows, _ = rows_of("keycloak-realm.json", "keycloak")
    assert rows["bob"].notes == (NOT_BROUGHT["otp"],)
    assert rows["carol"].notes == (NOT_BROUGHT["webauthn"], NOT_BROUGHT["webauthn-passwordless"],
                                   NOT_BROUGHT["recovery-authn-codes"])
    assert rows["henry"].notes == (FEDERATED_PASSWORD,) and rows["henry"].password_hash == ""


def test_keycloak_federated_identities_and_users_without_password():
    rows, _ = rows_of("keycloak-realm.json", "keycloak")
    assert rows["carol"].identities == (ImportedIdentity("google", "109876543210987654321"),
                                        ImportedIdentity("github", "5811147"))
    erin = rows["erin"]
    assert erin.password_hash == "" and erin.identities == (ImportedIdentity("google", "104242424242424242424"),)


def test_keycloak_service_accounts_and_usernames_outside_the_rules_are_refused():
    rows, refusals = rows_of("keycloak-realm.json", "keycloak")
    assert refusals["users[7]"].reason == RefusalReason.SERVICE_ACCOUNT
    assert "users[9]" not in refusals
    assert len(rows) == 9


def test_keycloak_usernames_that_are_addresses_become_their_local_part_with_a_note():
    # A realm with registrationEmailAsUsername stores "judy@example.org": no citylogin username can be one.
    rows, _ = rows_of("keycloak-realm.json", "keycloak")
    judy = rows["judy"]
    assert (judy.where, judy.email, judy.unstated) == ("users[9]", "judy@example.org", frozenset({"username"}))
    assert USERNAME_FROM_EMAIL in judy.notes


def test_keycloak_dir_export_reads_its_users_files_in_order():
    single, _ = rows_of("keycloak-realm.json", "keycloak")
    rows, refusals = rows_of("keycloak-dir", "keycloak")
    assert {u: (r.source_id, r.password_hash, r.notes) for u, r in rows.items()} == \
        {u: (r.source_id, r.password_hash, r.notes) for u, r in single.items()}
    assert rows["alice"].where == "acme-users-0.json users[0]" and rows["erin"].where == "acme-users-1.json users[0]"
    assert set(refusals) == {"acme-users-1.json users[3]"}  # the service account


def test_auth0_user_export():
    rows, refusals = rows_of("auth0-users.ndjson", "auth0")
    assert not refusals
    kenji = rows["kenji"]
    assert (kenji.source_id, kenji.where, kenji.locale, kenji.email_verified, kenji.password_hash) == \
        ("65f0c0ffee0000000000a001", "line 1", "ja", True, "")
    assert kenji.created_at == "2024-03-12T09:15:27Z" and kenji.identities == ()
    assert rows["lena"].disabled and not rows["lena"].email_verified  # blocked; no username: the address's
    assert rows["mike.r"].identities == (ImportedIdentity("google-oauth2", "109999888877776666555"),)
    assert rows["olga"].identities == (ImportedIdentity("github", "5811148", "olga@users.noreply.github.com"),)
    assert any("enterprise" in note for note in rows["nora"].notes) and rows["nora"].identities == ()


def test_auth0_password_export_gives_the_same_accounts_their_bcrypt_hashes():
    users, _ = rows_of("auth0-users.ndjson", "auth0")
    rows, refusals = rows_of("auth0-passwords.ndjson", "auth0")
    assert not refusals
    for name in ("kenji", "lena", "olga"):
        assert rows[name].user_uuid == users[name].user_uuid  # both exports of one person: one account
        assert scheme_key(rows[name].password_hash.removeprefix(IMPORTED_PREFIX)) == "bcrypt$10"
        assert signs_in(rows[name], PASSWORDS[f"auth0:{name}"])
    # Each export holds half of a person: an --update with one must not undo what the other brought.
    assert users["kenji"].unstated == {"password_hash"}
    assert rows["kenji"].unstated == {"locale", "disabled", "created_at", "identities", "username"}
    assert users["lena"].unstated == {"password_hash", "username"}  # its username is the address's local part
    euclid = rows["euclid"]  # alt_id, and the address only in `identifiers`
    assert (euclid.source_id, euclid.email, euclid.email_verified) == ("euclid", "euclid@example.com", True)
    assert signs_in(euclid, PASSWORDS["auth0:euclid"])


def test_csv_every_hash_form():
    rows, refusals = rows_of("accounts.csv", "csv")
    for name in ("paula", "quinn", "rosa", "sam", "tomoko"):
        assert signs_in(rows[name], PASSWORDS[f"csv:{name}"]), name
    assert rows["sam"].password_hash.startswith(IMPORTED_PREFIX + "$2b$10$")  # PHP's $2y$ is bcrypt's $2b$
    assert rows["uma"].password_hash == ""
    assert refusals["line 8"].reason == RefusalReason.UNKNOWN_HASH_SCHEME  # md5-crypt
    assert "$1$" not in refusals["line 8"].detail


def test_csv_fields():
    rows, _ = rows_of("accounts.csv", "csv")
    assert [(r.where, r.locale, r.email_verified) for r in rows.values()] == [
        ("line 2", "ja", True), ("line 3", "en", False), ("line 4", "en", True), ("line 5", "en", True),
        ("line 6", "ja", True), ("line 7", "en", False)]
    assert rows["paula"].source_id == "paula" and rows["paula"].source == "csv"


@pytest.mark.parametrize("fmt", ["keycloak", "auth0", "csv"])
def test_no_hash_in_any_refusal(fmt):
    name = {"keycloak": "keycloak-realm.json", "auth0": "auth0-passwords.ndjson", "csv": "accounts.csv"}[fmt]
    for row in read_rows(FILES / name, fmt):
        if isinstance(row, RowRefusal):
            assert "$" not in row.detail
