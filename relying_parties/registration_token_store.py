"""Initial access tokens (RFC 7591 §3; SPEC §14 "Apps that register themselves") in a partition of the
apps table of their own (`registration-tokens`), as the registry's version item has one: listing them is
one Query that never meets an app, and a token's use is an entry of the very transaction that writes the
app it registers (relying_parties.store), so that a use is spent only with its app. The token is never stored: its
digest is, beside its id (which the token carries, so that it is found with one GetItem)."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from relying_parties.models import RegistrationToken
from common.database import dynamo

PARTITION = "registration-tokens"
# A spent or expired token stays listed (as such) this long after its expiry, then DynamoDB's TTL sweeps it.
KEPT_AFTER_EXPIRY = 7 * 24 * 3600


class TokenMissing(dynamo.StoreRefusal):
    """No initial access token has this id (revoked, swept, or never made)."""


def _record(item: dict[str, Any]) -> RegistrationToken:
    data = dynamo.from_item(item)
    return RegistrationToken(token_id=data["client_id"], digest=data["token_digest"], created_at=data["created_at"],
                             expires_epoch=int(data["expires_epoch"]), uses=int(data["uses"]),
                             uses_left=int(data["uses_left"]), created_by=data.get("created_by"))


class RegistrationTokenStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    @staticmethod
    def _key(token_id: str) -> dict[str, Any]:
        return {"registry": {"S": PARTITION}, "client_id": {"S": token_id}}

    def create(self, token: RegistrationToken) -> None:
        item = {"registry": PARTITION, "client_id": token.token_id, "token_digest": token.digest,
                "created_at": token.created_at, "expires_epoch": token.expires_epoch, "uses": token.uses,
                "uses_left": token.uses_left, dynamo.TTL_ATTRIBUTE: token.expires_epoch + KEPT_AFTER_EXPIRY,
                **({"created_by": token.created_by} if token.created_by else {})}
        self.client.put_item(TableName=self.table, Item=dynamo.to_item(item),
                             ConditionExpression="attribute_not_exists(client_id)")

    def get(self, token_id: str) -> RegistrationToken | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(token_id), ConsistentRead=True).get("Item")
        return _record(item) if item else None

    def list(self) -> list[RegistrationToken]:
        tokens: list[RegistrationToken] = []
        args: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "registry = :r",
                                "ExpressionAttributeValues": {":r": {"S": PARTITION}}, "ConsistentRead": True}
        while True:
            page = self.client.query(**args)
            tokens += [_record(item) for item in page["Items"]]
            if not page.get("LastEvaluatedKey"):
                return tokens
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, token_id: str) -> None:
        try:
            self.client.delete_item(TableName=self.table, Key=self._key(token_id),
                                    ConditionExpression="attribute_exists(client_id)")
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise TokenMissing(token_id) from None
            raise

    def use_item(self, token_id: str, *, digest: str, now: int) -> dict[str, Any]:
        """A TransactWriteItems entry that spends one use of the token, refused unless it is there with this
        digest, unexpired, with a use left: of registrations racing for its last use, one commits."""
        return {"Update": {
            "TableName": self.table, "Key": self._key(token_id),
            "UpdateExpression": "SET uses_left = uses_left - :one",
            "ConditionExpression": "token_digest = :d AND uses_left > :zero AND expires_epoch > :now",
            "ExpressionAttributeValues": {":d": {"S": digest}, ":one": {"N": "1"}, ":zero": {"N": "0"},
                                          ":now": {"N": str(now)}}}}
