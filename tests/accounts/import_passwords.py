"""The passwords of the accounts in tests/accounts/import_files (source:username -> password): their hashes
there were made from these by each product's own library (tests/accounts/import_files/make_files.py), so
a test of the import, the first login or the first device can sign in with them."""
from __future__ import annotations

PASSWORDS = {
    # keycloak-realm.json and keycloak-dir/
    "keycloak:alice": "alice-pbkdf2-sha256-Keycloak",  # pbkdf2-sha256, 27500 iterations (Keycloak 12-23)
    "keycloak:bob": "bob-pbkdf2-sha512-Keycloak",  # pbkdf2-sha512, 210000 iterations (Keycloak 24, FIPS)
    "keycloak:carol": "carol-argon2id-Keycloak",  # argon2id 7168 KiB, 5 passes (Keycloak 24+ default)
    "keycloak:dave": "dave-disabled-argon2id",  # disabled in Keycloak
    "keycloak:frank": "frank-legacy-shape-pbkdf2",  # the credential shape before Keycloak 12
    "keycloak:grace": "grace-pbkdf2-sha1-20000",  # "pbkdf2" (HMAC-SHA1), Keycloak before 3
    # auth0-passwords.ndjson (bcrypt, cost 10, as Auth0 stores them)
    "auth0:kenji": "kenji-auth0-bcrypt",
    "auth0:lena": "lena-auth0-bcrypt",
    "auth0:olga": "olga-auth0-bcrypt",
    "auth0:euclid": "euclid-auth0-custom-id",
    # accounts.csv
    "csv:paula": "paula-bcrypt-2b-cost10",
    "csv:quinn": "quinn-passlib-pbkdf2-sha256",
    "csv:rosa": "rosa-scrypt-ln14",
    "csv:sam": "sam-php-2y-bcrypt",
    "csv:tomoko": "tomoko-argon2id-cffi-default",
}
