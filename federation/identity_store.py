"""The claims of linked upstream identities (SPEC §16): one item per (issuer, sub) in the claims table,
`claim = "identity#" + link_id`, naming the account it is linked to. Its creation with
attribute_not_exists(claim) is what makes a pair linked to one account at most; the account's own list
is the map on its users item (accounts/), written in the same transaction."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from common.database import dynamo, item_listing

PREFIX = "identity#"


class IdentityStore:
    def __init__(self, client: Any, claims_table: str) -> None:
        self.client, self.claims = client, claims_table

    @staticmethod
    def key(link_id: str) -> dict[str, Any]:
        return {"claim": {"S": PREFIX + link_id}}

    @staticmethod
    def owner_from_item(item: dict[str, Any] | None) -> str | None:
        return item["user_uuid"]["S"] if item and "user_uuid" in item else None

    def owner(self, link_id: str) -> str | None:
        """The account the identity is linked to, read strongly consistent."""
        return self.owner_from_item(self.client.get_item(TableName=self.claims, Key=self.key(link_id),
                                                         ConsistentRead=True).get("Item"))

    def claim_item(self, link_id: str, *, user_uuid: str, issuer: str, sub: str, provider: str) -> dict[str, Any]:
        """The claim's creation, for a transaction: refused if the identity is linked already (to anyone)."""
        item = {"claim": PREFIX + link_id, "user_uuid": user_uuid, "issuer": issuer, "sub": sub, "provider": provider}
        return {"Put": {"TableName": self.claims, "Item": dynamo.to_item(item),
                        "ConditionExpression": "attribute_not_exists(claim)"}}

    def release_item(self, link_id: str, *, user_uuid: str) -> dict[str, Any]:
        """The claim's removal, for a transaction: refused unless it is there and `user_uuid`'s."""
        return {"Delete": {"TableName": self.claims, "Key": self.key(link_id),
                           "ConditionExpression": "user_uuid = :u",
                           "ExpressionAttributeValues": {":u": {"S": user_uuid}}}}

    def held_check_item(self, link_id: str, *, user_uuid: str) -> dict[str, Any]:
        """A check, for a transaction, that the identity is linked to `user_uuid` when it commits."""
        return {"ConditionCheck": {"TableName": self.claims, "Key": self.key(link_id),
                                   "ConditionExpression": "user_uuid = :u",
                                   "ExpressionAttributeValues": {":u": {"S": user_uuid}}}}

    def release_all(self, link_ids: list[str], *, user_uuid: str) -> None:
        """Remove the claims of `link_ids` that are still `user_uuid`'s (an account's deletion; idempotent)."""
        for link_id in link_ids:
            try:
                self.client.delete_item(TableName=self.claims, Key=self.key(link_id),
                                        ConditionExpression="attribute_not_exists(claim) OR user_uuid = :u",
                                        ExpressionAttributeValues={":u": {"S": user_uuid}})
            except ClientError as exc:
                if not dynamo.is_condition_failure(exc):  # linked to another account since: not this one's
                    raise

    def items(self, link_ids: list[str]) -> list[dict[str, Any]]:
        """The claims of `link_ids` that exist, as stored (a person's data export)."""
        return item_listing.items_of_keys(self.client, self.claims, [self.key(link_id) for link_id in link_ids])
