"""Whole items as stored, for a person's data export (flows/data_export.py): one partition by a Query,
the items a sparse user index lists, or items by their keys. No Scan: each goes by a key the tables
already have (SPEC §8). The stores call these; nothing here knows a table's layout."""
from __future__ import annotations

import time
from typing import Any

from common.errors import StorageUnavailable
from common.database import dynamo

MAX_KEYS = 100          # BatchGetItem's limit per call
UNPROCESSED_RETRIES = 5


def partition_items(client: Any, table: str, *, partition: tuple[str, str],
                    index: str | None = None) -> list[dict[str, Any]]:
    """Every item of one partition (`partition` = (attribute, value)) as plain values: a paged Query,
    strongly consistent on the table, eventually consistent on a secondary `index` (projecting ALL)."""
    args: dict[str, Any] = {"TableName": table, "KeyConditionExpression": "#p = :p",
                            "ExpressionAttributeNames": {"#p": partition[0]},
                            "ExpressionAttributeValues": {":p": {"S": partition[1]}}}
    args.update({"IndexName": index} if index else {"ConsistentRead": True})
    items: list[dict[str, Any]] = []
    while True:
        page = client.query(**args)
        items += [dynamo.from_item(item) for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def items_of_keys(client: Any, table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items of `keys` (low-level key values) that exist, as plain values: strongly consistent
    BatchGetItem calls of 100, unprocessed keys retried; 503 if DynamoDB leaves some unread throughout."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(keys), MAX_KEYS):
        request: dict[str, Any] = {table: {"Keys": keys[start:start + MAX_KEYS], "ConsistentRead": True}}
        for attempt in range(UNPROCESSED_RETRIES + 1):
            response = client.batch_get_item(RequestItems=request)
            found += [dynamo.from_item(item) for item in response.get("Responses", {}).get(table, [])]
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.01 * 2 ** attempt)
        else:
            raise StorageUnavailable()
    return found


def items_of_user(client: Any, table: str, *, key_name: str, user_uuid: str) -> list[dict[str, Any]]:
    """The items of `table` that its sparse user index lists for `user_uuid`: the index's keys, then the
    items themselves read strongly consistent (an item gone meanwhile is left out)."""
    keys = dynamo.query_keys(client, table, key_names=(key_name,), partition=("user_uuid", user_uuid),
                             index=dynamo.ITEMS_BY_USER)
    return items_of_keys(client, table, keys)
