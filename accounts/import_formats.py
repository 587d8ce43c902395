"""The rows of an import file, whatever its format (SPEC §17): the format's reader, then the one rule
that spans rows, that no two rows of one file are one account, or claim one username or one address."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from accounts.import_auth0 import read_auth0
from accounts.import_csv import read_csv
from accounts.import_fields import comparison_key
from accounts.import_keycloak import read_keycloak
from accounts.import_rows import FORMATS, FileRefused, ImportRow, RefusalReason, RowRefusal

Reader = Callable[[Path], Iterator[ImportRow | RowRefusal]]
READERS: dict[str, Reader] = {"keycloak": read_keycloak, "auth0": read_auth0, "csv": read_csv}
assert set(READERS) == set(FORMATS)


def read_rows(path: Path, fmt: str) -> Iterator[ImportRow | RowRefusal]:
    """Each row of `path` read as `fmt`: an ImportRow or the RowRefusal saying why not. FileRefused, raised
    here before any row, when the file is not that format at all."""
    reader = READERS.get(fmt)
    if reader is None:
        raise FileRefused(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    return _refuse_duplicates(reader(path))


def _refuse_duplicates(rows: Iterator[ImportRow | RowRefusal]) -> Iterator[ImportRow | RowRefusal]:
    """The first row of an id, a username or an address goes on; a later one is refused, since which of
    the two the source meant is not the import's to guess."""
    seen: dict[str, dict[str, str]] = {"id": {}, "username": {}, "email": {}}
    for row in rows:
        if isinstance(row, RowRefusal):
            yield row
            continue
        keys = {"id": row.source_id, "username": comparison_key(row.username), "email": comparison_key(row.email)}
        clash = next((name for name, key in keys.items() if key and key in seen[name]), None)
        if clash is not None:
            yield RowRefusal(row.where, RefusalReason.DUPLICATE_IN_FILE,
                             f"its {clash} is that of {seen[clash][keys[clash]]}")
            continue
        for name, key in keys.items():
            if key:
                seen[name].setdefault(key, row.where)
        yield row
