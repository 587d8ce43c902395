"""The pairing tokens table: keyed by the token's SHA-256 digest, redeemed once (SPEC §4, §8)."""
from __future__ import annotations

from typing import Any

from common.database import dynamo, item_listing

UNUSED, USED = "unused", "used"


class PairingTokenStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def create_item(self, *, digest: str, user_uuid: str, created_by_device: str | None, created_at: str,
                    expires_epoch: int, kept_until: int) -> dict[str, Any]:
        """A new unused token, valid until `expires_epoch`, as a transaction entry; its item stays
        (TTL) until `kept_until`."""
        item = {"token_digest": digest, "user_uuid": user_uuid, "status": UNUSED, "created_at": created_at,
                "created_by_device": created_by_device, "expires_epoch": expires_epoch,
                dynamo.TTL_ATTRIBUTE: kept_until}
        return {"Put": {"TableName": self.table, "Item": dynamo.to_item(item),
                        "ConditionExpression": "attribute_not_exists(token_digest)"}}

    @staticmethod
    def key(digest: str) -> dict[str, Any]:
        return {"token_digest": {"S": digest}}

    @staticmethod
    def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
        return dynamo.from_item(item)

    def get(self, digest: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table, Key={"token_digest": {"S": digest}},
                                    ConsistentRead=True).get("Item")
        return dynamo.from_item(item)

    def redeem_item(self, *, digest: str, user_uuid: str, device_id: str, now: int, at: str) -> dict[str, Any]:
        """A TransactWriteItems entry that marks the token used, only if it is unused, unexpired
        and belongs to `user_uuid`."""
        return {"Update": {
            "TableName": self.table, "Key": {"token_digest": {"S": digest}},
            "UpdateExpression": "SET #s = :used, used_at = :at, used_by_device = :d",
            "ConditionExpression": "#s = :unused AND expires_epoch > :now AND user_uuid = :u",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":used": {"S": USED}, ":unused": {"S": UNUSED}, ":at": {"S": at},
                                          ":d": {"S": device_id}, ":now": {"N": str(now)},
                                          ":u": {"S": user_uuid}}}}

    def items_of_user(self, user_uuid: str) -> list[dict[str, Any]]:
        """Every pairing token of `user_uuid` as stored (a person's data export)."""
        return item_listing.items_of_user(self.client, self.table, key_name="token_digest", user_uuid=user_uuid)

    def delete_all_of_user(self, user_uuid: str) -> int:
        """Delete every pairing token of `user_uuid` (account deletion); returns how many."""
        return dynamo.delete_items_of_user(self.client, self.table, key_name="token_digest", user_uuid=user_uuid)
