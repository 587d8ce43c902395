"""A CSV of accounts from a team's own database (SPEC §17): the header `username,email,email_verified,
password_hash,locale` in that order and nothing else, then one account a line, its hash in PHC or
modular-crypt form (bcrypt, argon2, pbkdf2, scrypt) or empty for no password."""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from accounts.import_fields import (RowProblem, comparison_key, email_value, imported_hash, locale_value,
                                    text_member, username_value)
from accounts.import_lines import Line, capped_lines, line_rows, open_import_file
from accounts.import_rows import FileRefused, ImportRow, RefusalReason, RowRefusal

HEADER = ("username", "email", "email_verified", "password_hash", "locale")
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no", ""})


def read_csv(path: Path) -> Iterator[ImportRow | RowRefusal]:
    """The rows of the CSV at `path`; FileRefused at once when its first line is not the header."""
    stream = open_import_file(path)
    lines = capped_lines(stream)
    try:
        _check_header(next(lines, None), path)
    except FileRefused:
        stream.close()
        raise
    return line_rows(stream, lines, _read_line)


def _check_header(line: Line | None, path: Path) -> None:
    # The line is not quoted back: a file without its header starts with an account, hash and all.
    expected = ",".join(HEADER)
    if line is None:
        raise FileRefused(f"{path.name}: empty, not a CSV of accounts (its first line must be {expected})")
    fields = _fields(line.text) if line.text is not None else None
    if fields is None or tuple(f.strip() for f in fields) != HEADER:
        raise FileRefused(f"{path.name}: not a CSV of accounts: its first line must be the header {expected}")


def _read_line(where: str, text: str) -> ImportRow | RowRefusal:
    fields = _unquoted_hash_joined(_fields(text))
    if fields is None or len(fields) != len(HEADER):
        return RowRefusal(where, RefusalReason.NOT_THE_FORMAT, f"not the header's {len(HEADER)} comma-separated fields")
    try:
        return _row(where, dict(zip(HEADER, fields, strict=True)))
    except RowProblem as problem:
        return RowRefusal(where, problem.reason, problem.detail)


def _fields(text: str) -> list[str] | None:
    """The line's fields as CSV quotes them; None if its quoting is broken (a quoted line break among
    them: no field of an account holds one)."""
    try:
        return next(csv.reader([text], strict=True), [])
    except csv.Error:
        return None


def _unquoted_hash_joined(fields: list[str] | None) -> list[str] | None:
    """The fields with an unquoted hash's commas put back (argon2's "m=65536,t=3,p=4", scrypt's
    "ln=15,r=8,p=1"): no username, verified flag or locale holds a comma, so a hash is all there is
    between the third field and the last."""
    if fields is None or len(fields) <= len(HEADER) or not fields[3].startswith("$"):
        return fields
    return [*fields[:3], ",".join(fields[3:-1]), fields[-1]]


def _row(where: str, fields: dict[str, str]) -> ImportRow:
    username = username_value(fields["username"])
    email = email_value(fields["email"])
    return ImportRow(where=where, source="csv", source_id=comparison_key(username), username=username, email=email,
                     email_verified=_verified(fields["email_verified"]) and bool(email),
                     password_hash=imported_hash(fields["password_hash"]),
                     locale=locale_value(text_member(fields["locale"], field="locale")))


def _verified(value: str) -> bool:
    word = text_member(value, field="email_verified").strip().lower()
    if word not in _TRUE | _FALSE:
        raise RowProblem(RefusalReason.NOT_THE_FORMAT, "email_verified must be true or false")
    return word in _TRUE
