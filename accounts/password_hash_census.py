"""How many stored password hashes each Argon2 parameter set made: what `citylogin
password-parameters` needs to tell a set still in use from one that can be retired. One strongly
consistent Scan of the users table, of `password_hash` alone: an operator's command, never a
request (SPEC §8: no request path scans)."""
from __future__ import annotations

from collections import Counter
from typing import Any

from common.crypto.passwords import Argon2Parameters, hash_parameters


def hashes_by_parameters(client: Any, users_table: str) -> Counter[Argon2Parameters]:
    """The number of users' password hashes per parameter set (an erased or unreadable hash: none)."""
    counts: Counter[Argon2Parameters] = Counter()
    start: dict[str, Any] = {}
    while True:
        page = client.scan(TableName=users_table, ProjectionExpression="#h",
                           ExpressionAttributeNames={"#h": "password_hash"}, ConsistentRead=True, **start)
        for item in page["Items"]:
            parameters = hash_parameters(item.get("password_hash", {}).get("S", ""))
            if parameters is not None:
                counts[parameters] += 1
        if "LastEvaluatedKey" not in page:
            return counts
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
