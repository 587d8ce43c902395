"""The apps table: one partition ("apps") holding every app, so that listing them is one Query."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from botocore.exceptions import ClientError

from apps.models import AppRecord
from common import dynamo

REGISTRY = "apps"


class AppExists(dynamo.StoreRefusal):
    """The client_id is taken (a collision of random ids: draw another)."""


class AppMissing(dynamo.StoreRefusal):
    """No app has this client_id."""


def _record(item: dict[str, Any]) -> AppRecord:
    data = dynamo.from_item(item)
    return AppRecord(**{k: v for k, v in data.items() if k in AppRecord.__dataclass_fields__})


class AppStore:
    def __init__(self, client, table: str) -> None:
        self.client, self.table = client, table

    def _key(self, client_id: str) -> dict[str, Any]:
        return {"registry": {"S": REGISTRY}, "client_id": {"S": client_id}}

    def create(self, app: AppRecord) -> None:
        item = {"registry": REGISTRY, **{k: v for k, v in asdict(app).items() if v is not None}}
        try:
            self.client.put_item(TableName=self.table, Item=dynamo.to_item(item),
                                 ConditionExpression="attribute_not_exists(client_id)")
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise AppExists(app.client_id) from None
            raise

    def get(self, client_id: str) -> AppRecord | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(client_id), ConsistentRead=True).get("Item")
        return _record(item) if item else None

    def list(self) -> list[AppRecord]:
        apps: list[AppRecord] = []
        args: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "registry = :r",
                                "ExpressionAttributeValues": {":r": {"S": REGISTRY}}, "ConsistentRead": True}
        while True:
            page = self.client.query(**args)
            apps += [_record(item) for item in page["Items"]]
            if not page.get("LastEvaluatedKey"):
                return apps
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def replace_secret(self, client_id: str, *, secret_digest: str, at: str) -> AppRecord:
        try:
            item = self.client.update_item(
                TableName=self.table, Key=self._key(client_id), ReturnValues="ALL_NEW",
                UpdateExpression="SET secret_digest = :d, secret_rotated_at = :at",
                ConditionExpression="attribute_exists(client_id)",
                ExpressionAttributeValues={":d": {"S": secret_digest}, ":at": {"S": at}})["Attributes"]
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise AppMissing(client_id) from None
            raise
        return _record(item)

    def update(self, client_id: str, *, changes: dict[str, Any]) -> AppRecord:
        """Set the attributes `changes` gives (None removes one); AppMissing if there is no such app."""
        names = {f"#a{i}": name for i, name in enumerate(changes)}
        sets = [f"#a{i} = :v{i}" for i, value in enumerate(changes.values()) if value is not None]
        removes = [f"#a{i}" for i, value in enumerate(changes.values()) if value is None]
        values = {f":v{i}": dynamo.to_item({"v": value})["v"] for i, value in enumerate(changes.values())
                  if value is not None}
        expression = " ".join(part for part in (f"SET {', '.join(sets)}" if sets else "",
                                                f"REMOVE {', '.join(removes)}" if removes else "") if part)
        args: dict[str, Any] = {"TableName": self.table, "Key": self._key(client_id), "ReturnValues": "ALL_NEW",
                                "UpdateExpression": expression, "ConditionExpression": "attribute_exists(client_id)",
                                "ExpressionAttributeNames": names}
        if values:
            args["ExpressionAttributeValues"] = values
        try:
            item = self.client.update_item(**args)["Attributes"]
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise AppMissing(client_id) from None
            raise
        return _record(item)

    def delete(self, client_id: str) -> None:
        try:
            self.client.delete_item(TableName=self.table, Key=self._key(client_id),
                                    ConditionExpression="attribute_exists(client_id)")
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise AppMissing(client_id) from None
            raise
