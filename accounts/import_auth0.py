"""Auth0's exports (SPEC §17), NDJSON with one user a line, in either of its two shapes: the user export
job's (`user_id` "auth0|<id>", email, identities, blocked...) and the password hashes export support
sends (`_id` {"$oid": "<id>"}, `alt_id`?, email, `passwordHash` "$2b$10$..."). Both give the person the
same source_id (the id without its "auth0|"), so they make one account."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from itertools import chain
from pathlib import Path
from typing import Any

import orjson

from accounts.import_fields import (RowProblem, email_value, flag_member, id_value, imported_hash, iso_value,
                                    locale_value, username_value)
from accounts.import_lines import Line, capped_lines, line_rows, open_import_file
from accounts.import_rows import FileRefused, ImportedIdentity, ImportRow, RefusalReason, RowRefusal

DATABASE_PREFIX = "auth0|"  # the user_id of a database connection's user: "auth0|" + the password export's id
# What each of Auth0's two exports does not hold (ImportRow.unstated).
USER_EXPORT_UNSTATED = frozenset({"password_hash"})
PASSWORD_EXPORT_UNSTATED = frozenset({"locale", "disabled", "created_at", "identities"})
USERNAME_FROM_EMAIL = "no username in the export: the e-mail address's local part is the username"


def read_auth0(path: Path) -> Iterator[ImportRow | RowRefusal]:
    """The rows of the NDJSON at `path`; FileRefused at once when its first line is not an Auth0 user."""
    stream = open_import_file(path)
    lines = capped_lines(stream)
    try:
        head = _first_line(lines, path)
    except FileRefused:
        stream.close()
        raise
    return line_rows(stream, chain(head, lines), _read_line)


def _first_line(lines: Iterator[Line], path: Path) -> list[Line]:
    """The blank lines and the first user's, once it is seen to be one (its text is not quoted back)."""
    head = []
    for line in lines:
        head.append(line)
        if line.text is not None and not line.text.strip():
            continue
        data = _json_object(line.text) if line.text is not None else None
        if data is None or not ("user_id" in data or "_id" in data):
            raise FileRefused(f"{path.name}: not Auth0's NDJSON of users (a JSON object with user_id or _id a line)")
        return head
    raise FileRefused(f"{path.name}: empty, not Auth0's NDJSON of users")


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:  # also a lone surrogate, a nesting past 1024 or an integer past 64 bits
        return None
    return data if isinstance(data, dict) else None


def _read_line(where: str, text: str) -> ImportRow | RowRefusal:
    data = _json_object(text)
    if data is None:
        return RowRefusal(where, RefusalReason.NOT_THE_FORMAT, "not a JSON object")
    try:
        return _password_export_row(where, data) if "_id" in data else _user_export_row(where, data)
    except RowProblem as problem:
        return RowRefusal(where, problem.reason, problem.detail)


def _user_export_row(where: str, data: Mapping[str, Any]) -> ImportRow:
    source_id = id_value(data.get("user_id"), field="user_id").removeprefix(DATABASE_PREFIX)
    email = email_value(data.get("email"))
    username, notes = _username(data.get("username"), email)
    identities, identity_notes = _identities(data.get("identities"))
    metadata = data.get("user_metadata")
    locale = metadata.get("locale") if isinstance(metadata, dict) and "locale" in metadata else data.get("locale")
    return ImportRow(where=where, source="auth0", source_id=source_id, username=username, email=email,
                     email_verified=flag_member(data.get("email_verified"), field="email_verified") and bool(email),
                     password_hash="", locale=locale_value(locale),
                     disabled=flag_member(data.get("blocked"), field="blocked"),
                     created_at=iso_value(data.get("created_at")), identities=identities,
                     notes=notes + identity_notes, unstated=USER_EXPORT_UNSTATED | _derived(notes))


def _password_export_row(where: str, data: Mapping[str, Any]) -> ImportRow:
    oid = data.get("_id")
    alt_id = data.get("alt_id")  # a custom database's or the Management API's own id: user_id "auth0|<alt_id>"
    source_id = id_value(alt_id if alt_id is not None else (oid.get("$oid") if isinstance(oid, dict) else oid),
                          field="alt_id" if alt_id is not None else "_id.$oid")
    identifiers = _identifiers(data.get("identifiers"))
    email = email_value(data["email"] if "email" in data else identifiers.get("email", (None, None))[0])
    verified = data["email_verified"] if "email_verified" in data else identifiers.get("email", (None, None))[1]
    username, notes = _username(data.get("username", identifiers.get("username", (None, None))[0]), email)
    return ImportRow(where=where, source="auth0", source_id=source_id, username=username, email=email,
                     email_verified=flag_member(verified, field="email_verified") and bool(email),
                     password_hash=imported_hash(data.get("passwordHash"), field="passwordHash"), notes=notes,
                     unstated=PASSWORD_EXPORT_UNSTATED | _derived(notes))


def _identifiers(value: object) -> dict[str, tuple[object, object]]:
    """The password export's `identifiers` ([{type, value, verified}]): where some users keep their
    address (and username) instead of the root's members."""
    if not isinstance(value, list):
        return {}
    return {item["type"]: (item.get("value"), item.get("verified")) for item in value
            if isinstance(item, dict) and isinstance(item.get("type"), str)}


def _username(value: object, email: str) -> tuple[str, tuple[str, ...]]:
    """The username; a database connection that asks for none has none, and then the address's local part
    stands in for it if it is one (registration's rules)."""
    if value is not None:
        return username_value(value), ()
    if not email:
        raise RowProblem(RefusalReason.MISSING_FIELD, "username and email are missing")
    try:
        return username_value(email.rsplit("@", 1)[0]), (USERNAME_FROM_EMAIL,)
    except RowProblem:
        raise RowProblem(RefusalReason.INVALID_USERNAME, "no username, and the e-mail address's local part is not "
                         "one (3-32 characters of letters, digits, '_', '.' or '-')") from None


def _derived(notes: tuple[str, ...]) -> frozenset[str]:
    """{"username"} when the username is the address's local part, a stand-in the file did not state."""
    return frozenset({"username"}) if USERNAME_FROM_EMAIL in notes else frozenset()


def _identities(value: object) -> tuple[tuple[ImportedIdentity, ...], tuple[str, ...]]:
    """The social identities (isSocial) to link; the database's own is the account, an enterprise
    connection's (SAML, OIDC, AD) a note."""
    if value is None:
        return (), ()
    if not isinstance(value, list):
        raise RowProblem(RefusalReason.NOT_THE_FORMAT, "identities is not a list")
    identities, notes = [], []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise RowProblem(RefusalReason.NOT_THE_FORMAT, f"identities[{index}] is not an object")
        provider = id_value(item.get("provider"), field=f"identities[{index}].provider")
        if item.get("isSocial") is True:
            identities.append(_identity(item, provider, index))
        elif provider != "auth0":
            notes.append(f"identities[{index}]: an enterprise connection's identity is not brought")
    return tuple(identities), tuple(notes)


def _identity(item: Mapping[str, Any], provider: str, index: int) -> ImportedIdentity:
    sub = item.get("user_id")
    if isinstance(sub, int) and not isinstance(sub, bool):  # GitHub's and others' numeric ids
        sub = str(sub)
    profile = item.get("profileData")
    email = email_value(profile.get("email"), field=f"identities[{index}].profileData.email") \
        if isinstance(profile, dict) else ""
    return ImportedIdentity(provider=provider, sub=id_value(sub, field=f"identities[{index}].user_id"), email=email)
