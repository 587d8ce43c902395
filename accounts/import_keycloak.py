"""Keycloak's realm export (SPEC §17): `kc.sh export --file realm.json` ({"realm": ..., "users": [...]}) or
`--dir` (the users in `<realm>-users-<N>.json`), read as a stream so a realm of millions of users is never
held whole. Each user's password credential comes as Keycloak stores it (≥ 12: `secretData` and
`credentialData`, two JSON strings; before: `hashedSaltedValue`, `salt`, `hashIterations`, `algorithm`);
its other credentials (OTP, WebAuthn, recovery codes) stay behind as notes."""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Iterable

import ijson
import orjson

from accounts.import_fields import (RowProblem, email_value, epoch_ms_value, flag_member, id_value,
                                    keycloak_imported_hash, locale_value, username_value)
from accounts.import_lines import open_import_file
from accounts.import_rows import FileRefused, ImportedIdentity, ImportRow, RefusalReason, RowRefusal

# What citylogin cannot bring of a credential, by Keycloak's type: each person enrols anew (SPEC §17).
NOT_BROUGHT = {
    "otp": "an OTP secret is not brought",
    "webauthn": "a security key (WebAuthn) is not brought",
    "webauthn-passwordless": "a passkey is not brought",
    "recovery-authn-codes": "recovery codes are not brought",
}
OTHER_CREDENTIAL = "a credential of another kind is not brought"
USERNAME_FROM_EMAIL = "the username was the e-mail address: its local part is the username"
FEDERATED_PASSWORD = "the password is kept by a user federation provider (LDAP, Kerberos), not in the export"
_USERS_FILE = re.compile(r".+-users-(\d+)\.json")


def read_keycloak(path: Path) -> Iterator[ImportRow | RowRefusal]:
    """The users of the export at `path` (a file, or the directory of a dir export); FileRefused at once
    when one of its files is not a realm export with users: each is read through before any row."""
    files = _export_files(path)
    for file in files:
        _check_realm_file(file)
    return _rows(files, named=path.is_dir())


def _export_files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    numbered = sorted((int(m.group(1)), p) for p in path.iterdir() if (m := _USERS_FILE.fullmatch(p.name)))
    files = [p for _, p in numbered] or sorted(path.glob("*-realm.json"))  # usersExportStrategy REALM_FILE
    if not files:
        raise FileRefused(f"{path}: no <realm>-users-<N>.json or <realm>-realm.json in it, not a Keycloak dir export")
    return files


def _check_realm_file(file: Path) -> None:
    """The whole file parses as JSON, an object whose `realm` is text and `users` a list; read as events,
    in constant memory. Nothing of the file's text is quoted back (the parser's messages do)."""
    with open_import_file(file) as stream:
        try:
            members = _top_level_members(ijson.basic_parse(stream))
        except ijson.JSONError:
            raise FileRefused(f"{file.name}: not JSON (or cut short), not a Keycloak realm export") from None
    if members.get("realm") != "string":
        raise FileRefused(f"{file.name}: no realm in it, not a Keycloak realm export")
    if members.get("users") != "start_array":
        raise FileRefused(f"{file.name}: holds no users (export with them: kc.sh export --users realm_file or "
                          "different_files, and give the directory of a dir export)")


def _top_level_members(events: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """{member name: the first event of its value} of the top-level object; {} if the top is not one."""
    members: dict[str, str] = {}
    depth, key = 0, None
    for event, value in events:
        if depth == 0 and event != "start_map":
            return {}
        if depth == 1 and key is not None:
            members[key], key = event, None
        elif depth == 1 and event == "map_key":
            key = value
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
    return members


def _rows(files: list[Path], *, named: bool) -> Iterator[ImportRow | RowRefusal]:
    for file in files:
        with open_import_file(file) as stream:
            # Numbers as ints and Decimals (use_float overflows on an integer past 64 bits).
            for index, user in enumerate(ijson.items(stream, "users.item")):
                where = f"{file.name} users[{index}]" if named else f"users[{index}]"
                try:
                    yield _row(where, user)
                except RowProblem as problem:
                    yield RowRefusal(where, problem.reason, problem.detail)


def _row(where: str, user: object) -> ImportRow:
    if not isinstance(user, dict):
        raise RowProblem(RefusalReason.NOT_THE_FORMAT, "not a JSON object")
    if user.get("serviceAccountClientId") is not None:
        raise RowProblem(RefusalReason.SERVICE_ACCOUNT, "the service account of a client, not a person")
    source_id = id_value(user.get("id"), field="id")
    email = email_value(user.get("email"))
    username, named = _username(user.get("username"), email)
    password_hash, notes = _credentials(user.get("credentials"))
    notes = named + notes
    if user.get("federationLink") is not None and not password_hash:
        notes += (FEDERATED_PASSWORD,)
    return ImportRow(where=where, source="keycloak", source_id=source_id, username=username, email=email,
                     email_verified=flag_member(user.get("emailVerified"), field="emailVerified") and bool(email),
                     password_hash=password_hash, locale=locale_value(_attribute(user.get("attributes"), "locale")),
                     # Keycloak's own import enables only a user whose `enabled` is true.
                     disabled=not flag_member(user.get("enabled"), field="enabled"),
                     created_at=epoch_ms_value(user.get("createdTimestamp")),
                     identities=_federated_identities(user.get("federatedIdentities")), notes=notes,
                     unstated=frozenset({"username"}) if named else frozenset())


def _username(value: object, email: str) -> tuple[str, tuple[str, ...]]:
    """The username. A realm that makes the e-mail address the username (registrationEmailAsUsername) stores
    "alice@example.com", which no citylogin username can be: its local part stands in when it is one, with a
    note (the person learns it from the first-device mail, which the address also asks for)."""
    text = value if isinstance(value, str) else None
    if text is None or "@" not in text:
        return username_value(value), ()
    try:
        return username_value(value), ()
    except RowProblem:
        pass
    try:
        return username_value(text.rsplit("@", 1)[0]), (USERNAME_FROM_EMAIL,)
    except RowProblem:
        raise RowProblem(RefusalReason.INVALID_USERNAME, "username is an e-mail address whose local part is not a "
                         "username (3-32 characters of letters, digits, '_', '.' or '-')") from None


def _attribute(attributes: object, name: str) -> object:
    """A user attribute's first value (Keycloak keeps each as a list of strings)."""
    value = attributes.get(name) if isinstance(attributes, dict) else None
    return value[0] if isinstance(value, list) and value else value


def _credentials(value: object) -> tuple[str, tuple[str, ...]]:
    """The password's hash as citylogin stores it ("" if none) and what else there was, as notes."""
    if value is None:
        return "", ()
    if not isinstance(value, list):
        raise RowProblem(RefusalReason.NOT_THE_FORMAT, "credentials is not a list")
    password_hash, notes = "", []
    for index, credential in enumerate(value):
        if not isinstance(credential, dict):
            raise RowProblem(RefusalReason.NOT_THE_FORMAT, f"credentials[{index}] is not an object")
        kind = credential.get("type")
        if kind == "password" and not password_hash:
            password_hash = _password_hash(credential, field=f"credentials[{index}]")
        else:
            notes.append(NOT_BROUGHT.get(kind, OTHER_CREDENTIAL) if isinstance(kind, str) else OTHER_CREDENTIAL)
    return password_hash, tuple(dict.fromkeys(notes))


def _password_hash(credential: Mapping[str, Any], *, field: str) -> str:
    if "secretData" in credential or "credentialData" in credential:
        return keycloak_imported_hash(_json_member(credential.get("secretData"), field=f"{field}.secretData"),
                                      _json_member(credential.get("credentialData"), field=f"{field}.credentialData"),
                                      field=field)
    if "hashedSaltedValue" in credential:  # the representation before Keycloak 12
        secret: dict[str, Any] = {"value": credential.get("hashedSaltedValue"), "salt": credential.get("salt"),
                                  "additionalParameters": {}}
        data: dict[str, Any] = {"hashIterations": credential.get("hashIterations"),
                                "algorithm": credential.get("algorithm"), "additionalParameters": {}}
        return keycloak_imported_hash(secret, data, field=field)
    if "value" in credential:  # a password in clear, which Keycloak hashes at its import: citylogin hashes none
        raise RowProblem(RefusalReason.UNKNOWN_HASH_SCHEME, f"{field}: a password in clear text, not a stored hash")
    raise RowProblem(RefusalReason.INVALID_HASH, f"{field}: a password credential without its hash")


def _json_member(value: object, *, field: str) -> Mapping[str, Any]:
    """secretData / credentialData: a JSON object written as a string (or, from some tools, the object)."""
    if isinstance(value, dict):
        return value
    try:
        data = orjson.loads(value) if isinstance(value, str) else None
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise RowProblem(RefusalReason.INVALID_HASH, f"{field} is not a JSON object")
    return data


def _federated_identities(value: object) -> tuple[ImportedIdentity, ...]:
    """federatedIdentities ([{identityProvider, userId, userName}]): the provider's alias and subject."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RowProblem(RefusalReason.NOT_THE_FORMAT, "federatedIdentities is not a list")
    identities = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise RowProblem(RefusalReason.NOT_THE_FORMAT, f"federatedIdentities[{index}] is not an object")
        identities.append(ImportedIdentity(
            provider=id_value(item.get("identityProvider"), field=f"federatedIdentities[{index}].identityProvider"),
            sub=id_value(item.get("userId"), field=f"federatedIdentities[{index}].userId")))
    return tuple(identities)
