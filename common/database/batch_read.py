"""Several domains' items in one strongly consistent BatchGetItem: each domain's service hands
out a `KeyRead` (its table, its key, and how its item becomes its record); the caller reads them
all at once and gets the records back by name. The read-side twin of `GuardedWrite`: no domain
sees another's table layout, and no caller matches items to keys by position."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Generic, Hashable, Mapping, TypeVar

from common.errors import StorageUnavailable

T = TypeVar("T")
MAX_KEYS = 100          # BatchGetItem's limit per call
UNPROCESSED_RETRIES = 5  # throttling leaves keys unprocessed; each retry is one more call


@dataclass(frozen=True)
class KeyRead(Generic[T]):
    table: str
    key: dict[str, Any]                             # low-level attribute values
    parse: Callable[[dict[str, Any] | None], T]     # the low-level item, or None if absent -> the record


def _identity(table: str, key: Mapping[str, Any]) -> Hashable:
    # Which item a key names, whatever order its attributes come in: (table, sorted (name, type, value)).
    # Sorted only when there is more than one (issue 66: every protected request's session read comes
    # through here, a key and an item at a time).
    parts = [(name, kind, value) for name, attr in key.items() for kind, value in attr.items()]
    if len(parts) > 1:
        parts.sort()
    return table, tuple(parts)


def read_together(client: Any, reads: Mapping[str, KeyRead[Any]]) -> dict[str, Any]:
    """{name: parsed record} for every read, from one BatchGetItem (more only when DynamoDB leaves
    keys unprocessed). The same key asked twice is read once."""
    identities = {name: _identity(read.table, read.key) for name, read in reads.items()}  # once a read
    wanted: dict[Hashable, dict[str, Any]] = {}
    for name, read in reads.items():
        wanted.setdefault(identities[name], {"table": read.table, "key": read.key})
    if len(wanted) > MAX_KEYS:
        raise ValueError(f"{len(wanted)} keys: a BatchGetItem reads at most {MAX_KEYS}")
    found = _fetch(client, list(wanted.values()))
    return {name: read.parse(found.get(identities[name])) for name, read in reads.items()}


def _fetch(client: Any, keys: list[dict[str, Any]]) -> dict[Hashable, dict[str, Any]]:
    request: dict[str, Any] = {}
    for entry in keys:
        request.setdefault(entry["table"], {"Keys": [], "ConsistentRead": True})["Keys"].append(entry["key"])
    names = {entry["table"]: list(entry["key"]) for entry in keys}
    found: dict[Hashable, dict[str, Any]] = {}
    for attempt in range(UNPROCESSED_RETRIES + 1):
        response = client.batch_get_item(RequestItems=request)
        for table, items in response.get("Responses", {}).items():
            for item in items:
                found[_identity(table, {n: item[n] for n in names[table]})] = item
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(0.01 * 2 ** attempt)
    raise StorageUnavailable()  # throttled throughout: answer 503, the client retries
