"""Single-use tokens (login and renewal challenges, confirm tokens): items keyed by a token's
digest in the one_time_tokens table (SPEC §6, §8)."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from common.database import dynamo, item_listing
from common.database.batch_read import KeyRead


class OneTimeTokenStore:
    """Items keyed by a token's digest, consumed by one conditional delete."""

    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def create(self, *, digest: str, kind: str, expires_epoch: int, data: dict[str, Any] | None = None) -> None:
        self.client.put_item(**self.create_item(digest=digest, kind=kind, expires_epoch=expires_epoch,
                                                data=data)["Put"])

    def create_item(self, *, digest: str, kind: str, expires_epoch: int,
                    data: dict[str, Any] | None = None) -> dict[str, Any]:
        """The same creation as a TransactWriteItems entry, for another write's transaction."""
        item = {"token_digest": digest, "kind": kind, "expires_epoch": expires_epoch,
                dynamo.TTL_ATTRIBUTE: expires_epoch, **(data or {})}
        return {"Put": {"TableName": self.table, "Item": dynamo.to_item(item),
                        "ConditionExpression": "attribute_not_exists(token_digest)"}}

    @staticmethod
    def key(digest: str) -> dict[str, Any]:
        return {"token_digest": {"S": digest}}

    def consume_item(self, *, digest: str, kind: str, now: int) -> dict[str, Any]:
        """A TransactWriteItems entry that uses the token up, refused unless it exists, is of
        `kind` and is unexpired: of parallel transactions holding it, one commits."""
        return {"Delete": {
            "TableName": self.table, "Key": self.key(digest),
            "ConditionExpression": "attribute_exists(token_digest) AND #k = :k AND expires_epoch > :now",
            "ExpressionAttributeNames": {"#k": "kind"},
            "ExpressionAttributeValues": {":k": {"S": kind}, ":now": {"N": str(now)}}}}

    def consume(self, *, digest: str, kind: str, now: int) -> dict[str, Any] | None:
        """Delete and return the token if it exists, is of `kind` and unexpired; else None."""
        try:
            response = self.client.delete_item(
                TableName=self.table, Key={"token_digest": {"S": digest}}, ReturnValues="ALL_OLD",
                ConditionExpression="attribute_exists(token_digest) AND #k = :k",
                ExpressionAttributeNames={"#k": "kind"}, ExpressionAttributeValues={":k": {"S": kind}})
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return None
            raise
        item = dynamo.from_item(response.get("Attributes"))
        return item if item and item["expires_epoch"] > now else None

    def read(self, *, digest: str, kind: str, now: int) -> KeyRead[dict[str, Any] | None]:
        """`get` for a caller's batch read (common/database/batch_read.py)."""
        def parse(item: dict[str, Any] | None) -> dict[str, Any] | None:
            data = dynamo.from_item(item)
            return data if data and data.get("kind") == kind and data["expires_epoch"] > now else None
        return KeyRead(self.table, self.key(digest), parse)

    def get(self, *, digest: str, kind: str, now: int) -> dict[str, Any] | None:
        """The token if it exists, is of `kind` and unexpired, without using it up (read strongly
        consistent; the write that uses it checks again)."""
        item = dynamo.from_item(self.client.get_item(TableName=self.table, Key=self.key(digest),
                                                     ConsistentRead=True).get("Item"))
        return item if item and item.get("kind") == kind and item["expires_epoch"] > now else None

    def items_of_user(self, user_uuid: str) -> list[dict[str, Any]]:
        """Every item that names `user_uuid`, as stored (a person's data export)."""
        return item_listing.items_of_user(self.client, self.table, key_name="token_digest", user_uuid=user_uuid)

    def delete_all_of_user(self, user_uuid: str) -> int:
        """Delete every token that names `user_uuid` (account deletion); returns how many."""
        return dynamo.delete_items_of_user(self.client, self.table, key_name="token_digest", user_uuid=user_uuid)
