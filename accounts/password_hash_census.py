"""How many stored password hashes each Argon2 parameter set made, and how many each imported scheme key
holds (accounts an import brought that have not signed in since, SPEC §17): what `citylogin
password-parameters` needs to tell a set or a key still in use from one that can be retired. One strongly
consistent Scan of the users table, of `password_hash` alone: an operator's command, never a request
(SPEC §8: no request path scans)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from common.crypto.imported_hashes import scheme_key
from common.crypto.passwords import IMPORTED_PREFIX, Argon2Parameters, hash_parameters, is_imported


@dataclass
class HashCensus:
    """The stored hashes per Argon2 parameter set, and per imported scheme key ("unreadable" counts the
    imported hashes no scheme reads: each is verified as a failure at once)."""

    by_parameters: Counter[Argon2Parameters] = field(default_factory=Counter)
    by_imported_key: Counter[str] = field(default_factory=Counter)


UNREADABLE = "unreadable"


def _stored_hashes(client: Any, users_table: str) -> Iterator[str]:
    start: dict[str, Any] = {}
    while True:
        page = client.scan(TableName=users_table, ProjectionExpression="#h",
                           ExpressionAttributeNames={"#h": "password_hash"}, ConsistentRead=True, **start)
        for item in page["Items"]:
            yield item.get("password_hash", {}).get("S", "")
        if "LastEvaluatedKey" not in page:
            return
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def hash_census(client: Any, users_table: str) -> HashCensus:
    """Every users' password hash counted, by parameter set or imported scheme key (an erased one: none)."""
    census = HashCensus()
    for stored in _stored_hashes(client, users_table):
        if is_imported(stored):
            census.by_imported_key[_imported_key(stored[len(IMPORTED_PREFIX):])] += 1
        elif (parameters := hash_parameters(stored)) is not None:
            census.by_parameters[parameters] += 1
    return census


def _imported_key(canonical: str) -> str:
    try:
        return scheme_key(canonical)
    except ValueError:
        return UNREADABLE


def hashes_by_parameters(client: Any, users_table: str) -> Counter[Argon2Parameters]:
    """The number of users' password hashes per parameter set (an erased or unreadable hash: none)."""
    return hash_census(client, users_table).by_parameters


def hashes_by_imported_key(client: Any, users_table: str) -> Counter[str]:
    """The number of users' imported password hashes per scheme key."""
    return hash_census(client, users_table).by_imported_key
