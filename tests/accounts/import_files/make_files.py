"""Writes the import fixtures of this folder, each in the shape its product writes, with hashes made by the
real libraries for the passwords of tests/accounts/import_passwords.py (new salts on every run: run it
only to change the files). `PYTHONPATH=. .venv/bin/python tests/accounts/import_files/make_files.py`"""
from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import bcrypt
from argon2 import PasswordHasher
from argon2.low_level import Type, hash_secret_raw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from import_passwords import PASSWORDS  # noqa: E402

from accounts.import_csv import HEADER  # noqa: E402

HERE = Path(__file__).resolve().parent
CREATED = 1718000000000  # 2024-06-10, Keycloak's createdTimestamp in milliseconds


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def keycloak_pbkdf2(password: str, algorithm: str, iterations: int) -> dict[str, str]:
    """Keycloak's Pbkdf2PasswordHashProvider: a 16-byte salt, a 512-bit key, both in padded base64."""
    salt = os.urandom(16)
    digest = {"pbkdf2": "sha1", "pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512"}[algorithm]
    value = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations, 64)
    return {"secretData": json.dumps({"value": b64(value), "salt": b64(salt), "additionalParameters": {}},
                                     separators=(",", ":")),
            "credentialData": json.dumps({"hashIterations": iterations, "algorithm": algorithm,
                                          "additionalParameters": {}}, separators=(",", ":"))}


def keycloak_argon2(password: str) -> dict[str, str]:
    """Keycloak 24+'s default (Argon2PasswordHashProviderFactory): argon2id v1.3, 7168 KiB, 5 passes, 1 lane."""
    salt = os.urandom(16)
    value = hash_secret_raw(password.encode(), salt, time_cost=5, memory_cost=7168, parallelism=1, hash_len=32,
                            type=Type.ID, version=19)
    parameters = {"hashLength": ["32"], "memory": ["7168"], "type": ["id"], "version": ["1.3"], "parallelism": ["1"]}
    return {"secretData": json.dumps({"value": b64(value), "salt": b64(salt), "additionalParameters": {}},
                                     separators=(",", ":")),
            "credentialData": json.dumps({"hashIterations": 5, "algorithm": "argon2",
                                          "additionalParameters": parameters}, separators=(",", ":"))}


def password_credential(user_id: str, stored: dict[str, str]) -> dict[str, Any]:
    return {"id": f"{user_id[:8]}-0000-4000-8000-00000000c0de", "type": "password", "userLabel": "My password",
            "createdDate": CREATED, **stored}


OTP = {"id": "0c1d2e3f-aaaa-4bbb-8ccc-000000000001", "type": "otp", "userLabel": "Smartphone", "createdDate": CREATED,
       "secretData": "{\"value\":\"KVKFKRCPNZQUYMLXOVYDSQKJKZDTSRLD\"}",
       "credentialData": "{\"subType\":\"totp\",\"digits\":6,\"counter\":0,\"period\":30,\"algorithm\":\"HmacSHA1\"}"}
WEBAUTHN = {"id": "0c1d2e3f-aaaa-4bbb-8ccc-000000000002", "type": "webauthn", "userLabel": "YubiKey 5",
            "createdDate": CREATED, "secretData": "{}",
            "credentialData": json.dumps({"aaguid": "cb69481e-8ff7-4039-93ec-0a2729a154a8",
                                          "credentialId": "q1w2e3r4t5y6u7i8o9p0", "counter": 12,
                                          "attestationStatement": None,
                                          "credentialPublicKey": "pQECAyYgASFYIBmWk1Ln0pJ0lS",
                                          "attestationStatementFormat": "none", "transports": ["usb"]},
                                         separators=(",", ":"))}
PASSKEY = {**WEBAUTHN, "id": "0c1d2e3f-aaaa-4bbb-8ccc-000000000003", "type": "webauthn-passwordless",
           "userLabel": "iPhone"}
RECOVERY = {"id": "0c1d2e3f-aaaa-4bbb-8ccc-000000000004", "type": "recovery-authn-codes",
            "userLabel": "Recovery codes", "createdDate": CREATED,
            "secretData": json.dumps({"codes": [{"number": n, "encodedHashedValue": b64(os.urandom(64))}
                                                for n in range(1, 13)]}, separators=(",", ":")),
            "credentialData": "{\"hashIterations\":1,\"algorithm\":\"RS512\",\"totalCodes\":12,\"remainingCodes\":12}"}


def keycloak_user(user_id: str, username: str, email: str | None, *, credentials: list[dict[str, Any]],
                  **extra: Any) -> dict[str, Any]:
    """A UserRepresentation in the member order Keycloak's export writes."""
    user: dict[str, Any] = {"id": user_id, "username": username, "firstName": username.split(".")[0].title(),
                            "lastName": "Example"}
    if email is not None:
        user["email"] = email
    user |= {"emailVerified": extra.pop("emailVerified", True), "createdTimestamp": CREATED,
             "enabled": extra.pop("enabled", True), "totp": extra.pop("totp", False)}
    user |= extra.pop("before_credentials", {})
    user |= {"credentials": credentials, "disableableCredentialTypes": [], "requiredActions": [],
             "realmRoles": ["default-roles-acme"], "notBefore": 0, "groups": []}
    user |= extra
    return user


def keycloak_users() -> list[dict[str, Any]]:
    legacy = {"id": "7e57aa11-0000-4000-8000-00000000c0de", "type": "password",
              "hashedSaltedValue": "", "salt": "", "hashIterations": 27500, "algorithm": "pbkdf2-sha256",
              "digits": 0, "period": 0, "createdDate": CREATED, "config": {}}
    stored = json.loads(keycloak_pbkdf2(PASSWORDS["keycloak:frank"], "pbkdf2-sha256", 27500)["secretData"])
    legacy |= {"hashedSaltedValue": stored["value"], "salt": stored["salt"]}
    google = {"identityProvider": "google", "userId": "109876543210987654321", "userName": "carol@gmail.com"}
    github = {"identityProvider": "github", "userId": "5811147", "userName": "carol-codes"}
    return [
        keycloak_user("0b6c1f7e-2a3d-4e5f-8a9b-0c1d2e3f4a01", "alice", "alice@example.org",
                      credentials=[password_credential("0b6c1f7e", keycloak_pbkdf2(PASSWORDS["keycloak:alice"],
                                                                                   "pbkdf2-sha256", 27500))],
                      before_credentials={"attributes": {"locale": ["ja"]}}),
        keycloak_user("0b6c1f7e-2a3d-4e5f-8a9b-0c1d2e3f4a02", "bob", "Bob@Example.org", totp=True,
                      credentials=[password_credential("1b6c1f7e", keycloak_pbkdf2(PASSWORDS["keycloak:bob"],
                                                                                   "pbkdf2-sha512", 210000)), OTP]),
        keycloak_user("0b6c1f7e-2a3d-4e5f-8a9b-0c1d2e3f4a03", "carol", "carol@example.org",
                      credentials=[password_credential("2b6c1f7e", keycloak_argon2(PASSWORDS["keycloak:carol"])),
                                   WEBAUTHN, PASSKEY, RECOVERY],
                      before_credentials={"attributes": {"locale": ["fr"]}},
                      federatedIdentities=[google, github]),
        keycloak_user("0b6c1f7e-2a3d-4e5f-8a9b-0c1d2e3f4a04", "dave", "dave@example.org", enabled=False,
                      credentials=[password_credential("3b6c1f7e", keycloak_argon2(PASSWORDS["keycloak:dave"]))]),
        keycloak_user("0b6c1f7e-2a3d-4e5f-8a9b-0c1d2e3f4a05", "erin", "erin@gmail.com", credentials=[],
                      federatedIdentities=[{"identityProvider": "google", "userId": "104242424242424242424",
                                            "userName": "erin@gmail.com"}]),
        keycloak_user("0b6c1f7e-2a3d-4e5f-8a9b-0c1d2e3f4a06", "frank", "frank@example.org", credentials=[legacy]),
        keycloak_user("0b6c1f7e-2a3d-4e5f-8a9b-0c1d2e3f4a07", "grace", None, emailVerified=False,
                      credentials=[password_credential("6b6c1f7e", keycloak_pbkdf2(PASSWORDS["keycloak:grace"],
                                                                                   "pbkdf2", 20000))]),
        keycloak_user("0b6c1f7e-2a3d-4e5f-8a9b-0c1d2e3f4a08", "service-account-backend", None, emailVerified=False,
                      credentials=[], serviceAccountClientId="backend"),
        keycloak_user("0b6c1f7e-2a3d-4e5f-8a9b-0c1d2e3f4a09", "henry", "henry@corp.example.org", credentials=[],
                      before_credentials={"federationLink": "7d3e5f10-ldap-4c2b-9e8f-000000000001"}),
        keycloak_user("0b6c1f7e-2a3d-4e5f-8a9b-0c1d2e3f4a0a", "judy@example.org", "judy@example.org",
                      credentials=[password_credential("9b6c1f7e", keycloak_argon2("judy never signs in here"))]),
    ]


def realm(users: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A realm export's members around its users, in Keycloak's order (abridged: roles, clients...)."""
    head = {"id": "9a8b7c6d-acme-4e5f-8a9b-realm0000001", "realm": "acme", "displayName": "ACME", "notBefore": 0,
            "defaultSignatureAlgorithm": "RS256", "accessTokenLifespan": 300, "enabled": True,
            "sslRequired": "external", "registrationAllowed": False, "loginWithEmailAllowed": True,
            "duplicateEmailsAllowed": False, "bruteForceProtected": True,
            "roles": {"realm": [{"id": "5c1e0f2a-role-4000-8000-000000000001", "name": "default-roles-acme",
                                 "composite": True, "clientRole": False,
                                 "containerId": "9a8b7c6d-acme-4e5f-8a9b-realm0000001"}], "client": {}},
            "groups": [], "requiredCredentials": ["password"], "passwordPolicy": "hashAlgorithm(argon2)",
            "otpPolicyType": "totp", "otpPolicyAlgorithm": "HmacSHA1", "otpPolicyDigits": 6,
            "webAuthnPolicyRpEntityName": "keycloak", "internationalizationEnabled": True,
            "supportedLocales": ["en", "ja", "fr"], "defaultLocale": "en"}
    tail = {"scopeMappings": [], "clients": [{"id": "4d2c1b0a-clnt-4000-8000-000000000001", "clientId": "backend",
                                              "serviceAccountsEnabled": True, "publicClient": False}],
            "identityProviders": [{"alias": "google", "providerId": "google", "enabled": True},
                                  {"alias": "github", "providerId": "github", "enabled": True}],
            "keycloakVersion": "26.0.5"}
    return head | ({"users": users} if users is not None else {}) | tail


def write_json(name: str, data: Any) -> None:
    # Keycloak's Jackson pretty printer: two-space indent, " : " between a name and its value.
    (HERE / name).write_text(json.dumps(data, indent=2, separators=(",", " : "), ensure_ascii=False) + "\n")


def auth0_files() -> None:
    users = [
        {"user_id": "auth0|65f0c0ffee0000000000a001", "email": "kenji@example.jp", "email_verified": True,
         "username": "kenji", "name": "Kenji", "created_at": "2024-03-12T09:15:27.482Z", "blocked": False,
         "user_metadata": {"locale": "ja-JP"},
         "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0",
                         "user_id": "65f0c0ffee0000000000a001", "isSocial": False}]},
        {"user_id": "auth0|65f0c0ffee0000000000a002", "email": "lena@example.com", "email_verified": False,
         "name": "lena@example.com", "created_at": "2024-04-01T12:00:00.000Z", "blocked": True,
         "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0",
                         "user_id": "65f0c0ffee0000000000a002", "isSocial": False}]},
        {"user_id": "google-oauth2|109999888877776666555", "email": "mike.r@gmail.com", "email_verified": True,
         "name": "Mike R", "created_at": "2024-05-20T08:30:00.000Z", "locale": "en",
         "identities": [{"connection": "google-oauth2", "provider": "google-oauth2",
                         "user_id": "109999888877776666555", "isSocial": True}]},
        {"user_id": "auth0|65f0c0ffee0000000000a004", "email": "olga@example.com", "email_verified": True,
         "username": "olga", "created_at": "2024-06-02T10:00:00.000Z",
         "identities": [{"connection": "Username-Password-Authentication", "provider": "auth0",
                         "user_id": "65f0c0ffee0000000000a004", "isSocial": False},
                        {"connection": "github", "provider": "github", "user_id": 5811148, "isSocial": True,
                         "profileData": {"email": "olga@users.noreply.github.com", "nickname": "olga"}}]},
        {"user_id": "samlp|acme-corp|nora@acme.example", "email": "nora@acme.example", "email_verified": True,
         "created_at": "2024-06-03T10:00:00.000Z",
         "identities": [{"connection": "acme-corp", "provider": "samlp", "user_id": "acme-corp|nora@acme.example",
                         "isSocial": False}]},
    ]
    (HERE / "auth0-users.ndjson").write_text("".join(json.dumps(u, separators=(",", ":")) + "\n" for u in users))

    def hashed(name: str) -> str:
        return bcrypt.hashpw(PASSWORDS[name].encode(), bcrypt.gensalt(10)).decode()

    def entry(oid: str, email: str, verified: bool, name: str, **extra: Any) -> dict[str, Any]:
        return {"_id": {"$oid": oid}, "email_verified": verified, "email": email, "passwordHash": hashed(name),
                "password_set_date": {"$date": "2024-06-10T18:36:12.412Z"}, "tenant": "acme-prod",
                "connection": "Username-Password-Authentication", "_tmp_is_unique": True, **extra}
    passwords = [
        entry("65f0c0ffee0000000000a001", "kenji@example.jp", True, "auth0:kenji"),
        entry("65f0c0ffee0000000000a002", "lena@example.com", False, "auth0:lena"),
        entry("65f0c0ffee0000000000a004", "olga@example.com", True, "auth0:olga"),
        {**entry("65f0c0ffee0000000000a005", "", False, "auth0:euclid"), "alt_id": "euclid"},
    ]
    del passwords[3]["email"], passwords[3]["email_verified"]
    passwords[3]["identifiers"] = [{"type": "email", "value": "euclid@example.com", "verified": True}]
    (HERE / "auth0-passwords.ndjson").write_text("".join(json.dumps(p, separators=(",", ":")) + "\n"
                                                         for p in passwords))


def ab64(data: bytes) -> str:
    """passlib's adapted base64: "." for "+", no padding."""
    return b64(data).rstrip("=").replace("+", ".")


def csv_file() -> None:
    salt = os.urandom(16)
    passlib_pbkdf2 = (f"$pbkdf2-sha256$29000${ab64(salt)}$"
                      f"{ab64(hashlib.pbkdf2_hmac('sha256', PASSWORDS['csv:quinn'].encode(), salt, 29000, 32))}")
    salt = os.urandom(16)
    derived = hashlib.scrypt(PASSWORDS["csv:rosa"].encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    scrypt = f"$scrypt$ln=14,r=8,p=1${b64(salt).rstrip('=')}${b64(derived).rstrip('=')}"
    paula = bcrypt.hashpw(PASSWORDS["csv:paula"].encode(), bcrypt.gensalt(10)).decode()
    php_bcrypt = bcrypt.hashpw(PASSWORDS["csv:sam"].encode(), bcrypt.gensalt(10)).decode().replace("$2b$", "$2y$", 1)
    rows = [
        HEADER,
        ("paula", "paula@example.net", "true", paula,
         "ja"),
        ("quinn", "quinn@example.net", "false", passlib_pbkdf2, "en"),
        ("rosa", "rosa@example.net", "1", scrypt, ""),
        ("sam", "sam@example.net", "true", php_bcrypt, "en-GB"),
        ("tomoko", "tomoko@example.jp", "true", PasswordHasher().hash(PASSWORDS["csv:tomoko"]), "ja-JP"),
        ("uma", "uma@example.net", "false", "", "en"),
        ("victor", "victor@example.net", "true", "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", "en"),
    ]
    # As a database's or a spreadsheet's export writes it: csv's quoting (argon2's and scrypt's commas), CRLF.
    with (HERE / "accounts.csv").open("w", newline="") as out:
        csv.writer(out).writerows(rows)


def main() -> None:
    users = keycloak_users()
    write_json("keycloak-realm.json", realm(users))
    directory = HERE / "keycloak-dir"
    directory.mkdir(exist_ok=True)
    write_json("keycloak-dir/acme-realm.json", realm(None))
    for index, part in enumerate((users[:4], users[4:])):
        write_json(f"keycloak-dir/acme-users-{index}.json", {"realm": "acme", "users": part})
    auth0_files()
    csv_file()


if __name__ == "__main__":
    main()
