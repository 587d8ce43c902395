"""common/database/batch_read.py: each distinct key is asked once, whatever name or attribute order it comes
under, and each record comes back under every name that asked for it (a stand-in client: what is
tested is the matching of items to keys, not DynamoDB)."""
from __future__ import annotations

from typing import Any

from common.database.batch_read import KeyRead, read_together


class FakeClient:
    """Answers BatchGetItem from `items` ({table: [item]}); the first `unprocessed` calls leave
    every key but the first of each table unprocessed."""

    def __init__(self, items: dict[str, list[dict[str, Any]]], *, unprocessed: int = 0) -> None:
        self.items, self.unprocessed, self.requests = items, unprocessed, []

    def batch_get_item(self, *, RequestItems):  # noqa: N803 (boto3's argument name)
        self.requests.append(RequestItems)
        responses: dict[str, list] = {}
        left: dict[str, Any] = {}
        for table, request in RequestItems.items():
            keys = request["Keys"]
            if self.unprocessed:
                keys, rest = keys[:1], keys[1:]
                if rest:
                    left[table] = {**request, "Keys": rest}
            responses[table] = [i for i in self.items.get(table, []) if any(_holds(i, k) for k in keys)]
        self.unprocessed = max(0, self.unprocessed - 1)
        return {"Responses": responses, "UnprocessedKeys": left}


def _holds(item: dict[str, Any], key: dict[str, Any]) -> bool:
    return all(item.get(name) == value for name, value in key.items())


def _read(table: str, key: dict[str, Any]) -> KeyRead:
    return KeyRead(table, key, lambda item: None if item is None else item["data"]["S"])


DEVICE = {"user_uuid": {"S": "u1"}, "device_id": {"S": "d1"}}
DEVICE_ITEM = {**DEVICE, "data": {"S": "the device"}}


def test_the_same_key_under_two_names_and_either_attribute_order_is_read_once():
    client = FakeClient({"devices": [DEVICE_ITEM], "users": [{"user_uuid": {"S": "u1"}, "data": {"S": "the user"}}]})
    reversed_key = {"device_id": {"S": "d1"}, "user_uuid": {"S": "u1"}}
    found = read_together(client, {"a": _read("devices", DEVICE), "b": _read("devices", reversed_key),
                                   "user": _read("users", {"user_uuid": {"S": "u1"}}),
                                   "absent": _read("devices", {"user_uuid": {"S": "u1"}, "device_id": {"S": "d2"}})})
    assert found == {"a": "the device", "b": "the device", "user": "the user", "absent": None}
    [request] = client.requests
    assert len(request["devices"]["Keys"]) == 2 and len(request["users"]["Keys"]) == 1
    assert request["devices"]["ConsistentRead"] is True


def test_keys_that_differ_in_a_type_table_or_value_are_distinct_reads():
    client = FakeClient({"t": [{"k": {"S": "1"}, "data": {"S": "text"}}, {"k": {"N": "1"}, "data": {"S": "number"}}],
                         "u": [{"k": {"S": "1"}, "data": {"S": "other table"}}]})
    found = read_together(client, {"s": _read("t", {"k": {"S": "1"}}), "n": _read("t", {"k": {"N": "1"}}),
                                   "u": _read("u", {"k": {"S": "1"}}), "x": _read("t", {"k": {"S": "2"}})})
    assert found == {"s": "text", "n": "number", "u": "other table", "x": None}
    assert len(client.requests[0]["t"]["Keys"]) == 3


def test_unprocessed_keys_are_asked_again_and_matched_to_their_names():
    items = [{"k": {"S": str(i)}, "data": {"S": f"item {i}"}} for i in range(3)]
    client = FakeClient({"t": items}, unprocessed=1)
    found = read_together(client, {f"r{i}": _read("t", {"k": {"S": str(i)}}) for i in range(3)})
    assert found == {f"r{i}": f"item {i}" for i in range(3)}
    assert [len(r["t"]["Keys"]) for r in client.requests] == [3, 2]
