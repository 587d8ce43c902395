"""The devices table: key (user_uuid, device_id), GSI on fingerprint (SPEC §8)."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from common import dynamo
from device_manager.models import DeviceRecord


class DeviceStore:
    def __init__(self, client, table: str) -> None:
        self.client, self.table = client, table

    @staticmethod
    def _key(user_uuid: str, device_id: str) -> dict[str, Any]:
        return {"user_uuid": {"S": user_uuid}, "device_id": {"S": device_id}}

    @staticmethod
    def _record(item: dict[str, Any] | None) -> DeviceRecord | None:
        data = dynamo.from_item(item)
        if data is None:
            return None
        fields = DeviceRecord.__dataclass_fields__
        return DeviceRecord(**{k: v for k, v in data.items() if k in fields})

    def put_new_item(self, record: DeviceRecord) -> dict[str, Any]:
        """A TransactWriteItems entry that creates `record` if its id is new."""
        return {"Put": {"TableName": self.table, "Item": dynamo.to_item(asdict(record)),
                        "ConditionExpression": "attribute_not_exists(device_id)"}}

    def get(self, *, user_uuid: str, device_id: str) -> DeviceRecord | None:
        response = self.client.get_item(TableName=self.table, Key=self._key(user_uuid, device_id),
                                        ConsistentRead=True)
        return self._record(response.get("Item"))

    def list_for_user(self, user_uuid: str) -> list[DeviceRecord]:
        """All devices of one user, strongly consistent (a user has at most a few dozen)."""
        records, start = [], None
        while True:
            args: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True,
                                    "KeyConditionExpression": "#u = :u",
                                    "ExpressionAttributeNames": {"#u": "user_uuid"},
                                    "ExpressionAttributeValues": {":u": {"S": user_uuid}}}
            if start:
                args["ExclusiveStartKey"] = start
            page = self.client.query(**args)
            records += [self._record(item) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return records
