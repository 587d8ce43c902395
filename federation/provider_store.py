"""Upstream providers' records: a partition of the apps table of their own (`registry = "idp"`, the provider's
name as `client_id`), as initial access tokens have one, so that listing them is one Query that never meets an
app, and the apps' Query never meets a provider. The only code that touches these items.

Each invariant is one conditional write: a name is taken once (attribute_not_exists), a change applies only to
the record it was computed from (its `version`), and a removal only to a record that is there."""
from __future__ import annotations

import dataclasses
from typing import Any

from botocore.exceptions import ClientError

from common.database import dynamo
from federation.models import ProviderRecord

PARTITION = "idp"
_FIELDS = tuple(field.name for field in dataclasses.fields(ProviderRecord))
# The item's key names the provider (`client_id` is the table's sort key); the client id citylogin has at the
# provider is kept under a name of its own.
_ATTRIBUTE = {"client_id": "upstream_client_id"}


class ProviderTaken(dynamo.StoreRefusal):
    """A provider of this name exists already."""


class ProviderMissing(dynamo.StoreRefusal):
    """No provider has this name."""


class ProviderChanged(dynamo.StoreRefusal):
    """The provider's version moved since the record a change was computed from was read."""


def _item(provider: ProviderRecord) -> dict[str, Any]:
    values = {_ATTRIBUTE.get(name, name): getattr(provider, name) for name in _FIELDS
              if name not in ("name", "sealed_secret")}
    item = dynamo.to_item({"registry": PARTITION, "client_id": provider.name, **values})
    item["sealed_secret"] = {"M": {part: {"B": value} for part, value in provider.sealed_secret.items()}}
    return item


def _record(item: dict[str, Any]) -> ProviderRecord:
    data = dynamo.from_item({name: value for name, value in item.items() if name != "sealed_secret"})
    sealed = {part: value["B"] for part, value in item.get("sealed_secret", {}).get("M", {}).items()}
    fields = {name: data[_ATTRIBUTE.get(name, name)] for name in _FIELDS if _ATTRIBUTE.get(name, name) in data}
    return ProviderRecord(**{**fields, "name": data["client_id"], "sealed_secret": sealed})


class ProviderStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    @staticmethod
    def _key(name: str) -> dict[str, Any]:
        return {"registry": {"S": PARTITION}, "client_id": {"S": name}}

    def create(self, provider: ProviderRecord) -> None:
        """The new provider; ProviderTaken if its name is."""
        self._conditional("put_item", ProviderTaken(provider.name), Item=_item(provider),
                          ConditionExpression="attribute_not_exists(client_id)")

    def get(self, name: str) -> ProviderRecord | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(name), ConsistentRead=True).get("Item")
        return _record(item) if item else None

    def list(self) -> list[ProviderRecord]:
        """Every provider, by name."""
        providers: list[ProviderRecord] = []
        args: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "registry = :r",
                                "ExpressionAttributeValues": {":r": {"S": PARTITION}}, "ConsistentRead": True}
        while True:
            page = self.client.query(**args)
            providers += [_record(item) for item in page["Items"]]
            if not page.get("LastEvaluatedKey"):
                return providers
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def replace(self, provider: ProviderRecord, *, read_version: int) -> None:
        """`provider` in place of the record of `read_version` (its version is read_version + 1); ProviderChanged
        if the stored one is of another version, ProviderMissing if it was removed meanwhile."""
        try:
            self._conditional("put_item", ProviderChanged(provider.name), Item=_item(provider),
                              ConditionExpression="attribute_exists(client_id) AND #v = :v",
                              ExpressionAttributeNames={"#v": "version"},
                              ExpressionAttributeValues={":v": {"N": str(read_version)}})
        except ProviderChanged:
            if self.get(provider.name) is None:
                raise ProviderMissing(provider.name) from None
            raise

    def delete(self, name: str) -> None:
        self._conditional("delete_item", ProviderMissing(name), Key=self._key(name),
                          ConditionExpression="attribute_exists(client_id)")

    def _conditional(self, call: str, refusal: dynamo.StoreRefusal, **args: Any) -> None:
        """One conditional write; `refusal` if its condition fails, every other error as it is."""
        try:
            getattr(self.client, call)(TableName=self.table, **args)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise refusal from None
            raise
