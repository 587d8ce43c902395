"""The one-time code mailed for the first device of an account that has none (SPEC §17), an item of the
one_time_tokens table per account: the newest code mailed (its digest, never the code), how many wrong
tries it took, until when it works, and the address it went to (a digest). It names the account, so the
account's deletion finds it (ITEMS_BY_USER); its TTL is its end."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from common.database import dynamo

KIND = "enrol_code"


@dataclass(frozen=True)
class StoredCode:
    """An account's code as read: its digest, the wrong tries it took, its end and the address's digest."""

    code_digest: str
    tries: int
    expires_epoch: int
    address_digest: str


def _item_id(user_uuid: str) -> str:
    return f"enrol-code#{user_uuid}"  # not a hex digest: no token's digest can take it


class EnrolCodeStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def _key(self, user_uuid: str) -> dict[str, Any]:
        return {"token_digest": {"S": _item_id(user_uuid)}}

    def get(self, user_uuid: str) -> StoredCode | None:
        item = dynamo.from_item(self.client.get_item(TableName=self.table, Key=self._key(user_uuid),
                                                     ConsistentRead=True).get("Item"))
        if not item or item.get("kind") != KIND:
            return None
        return StoredCode(code_digest=item["code_digest"], tries=int(item.get("tries", 0)),
                          expires_epoch=int(item["expires_epoch"]), address_digest=item["address_digest"])

    def put_item(self, *, user_uuid: str, code_digest: str, address_digest: str, expires_epoch: int) -> dict[str, Any]:
        """A TransactWriteItems entry storing a new code in place of the account's last one (void from then)."""
        item = {"token_digest": _item_id(user_uuid), "kind": KIND, "user_uuid": user_uuid, "code_digest": code_digest,
                "address_digest": address_digest, "tries": 0, "expires_epoch": expires_epoch,
                dynamo.TTL_ATTRIBUTE: expires_epoch}
        return {"Put": {"TableName": self.table, "Item": dynamo.to_item(item)}}

    def use_item(self, *, user_uuid: str, code_digest: str, max_tries: int, now: int) -> dict[str, Any]:
        """A TransactWriteItems entry using the code up, refused unless it is still the account's code, live and
        within its tries: of parallel transactions holding it, one commits."""
        return {"Delete": {
            "TableName": self.table, "Key": self._key(user_uuid),
            "ConditionExpression": "#k = :k AND code_digest = :d AND expires_epoch > :now AND tries < :max",
            "ExpressionAttributeNames": {"#k": "kind"},
            "ExpressionAttributeValues": {":k": {"S": KIND}, ":d": {"S": code_digest}, ":now": {"N": str(now)},
                                          ":max": {"N": str(max_tries)}}}}

    def add_try(self, *, user_uuid: str, code_digest: str) -> None:
        """Count one wrong try against the code `code_digest`, if it is still the account's code."""
        try:
            self.client.update_item(
                TableName=self.table, Key=self._key(user_uuid), UpdateExpression="ADD tries :one",
                ConditionExpression="#k = :k AND code_digest = :d", ExpressionAttributeNames={"#k": "kind"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":k": {"S": KIND}, ":d": {"S": code_digest}})
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise
