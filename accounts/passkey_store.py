"""The passkeys table (SPEC §13): one item per WebAuthn credential of a user, keyed by the user
and the credential id, and one count item per user that holds the number of passkeys, so that
adding one under the limit is one transaction rather than a count read before a write."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from accounts.models import PasskeyRecord
from common import dynamo

COUNT_ID = "#count"  # the count item's credential_id: no base64url id contains '#'
_NAMES = {"#c": "credential_id", "#s": "sign_count", "#u": "last_used_at", "#b": "backed_up"}


class PasskeyStore:
    def __init__(self, client, table: str) -> None:
        self.client, self.table = client, table

    @staticmethod
    def key(user_uuid: str, credential_id: str) -> dict[str, Any]:
        return {"user_uuid": {"S": user_uuid}, "credential_id": {"S": credential_id}}

    @staticmethod
    def from_item(item: dict[str, Any] | None) -> PasskeyRecord | None:
        data = dynamo.from_item(item)
        if data is None or data["credential_id"] == COUNT_ID:
            return None
        return PasskeyRecord(user_uuid=data["user_uuid"], credential_id=data["credential_id"],
                             public_key=bytes(data["public_key"]), sign_count=int(data["sign_count"]),
                             name=data["name"], created_at=data["created_at"],
                             last_used_at=data.get("last_used_at"), backed_up=bool(data.get("backed_up")),
                             transports=tuple(data.get("transports", ())))

    def get(self, user_uuid: str, credential_id: str) -> PasskeyRecord | None:
        return self.from_item(self.client.get_item(TableName=self.table, Key=self.key(user_uuid, credential_id),
                                                   ConsistentRead=True).get("Item"))

    def list(self, user_uuid: str) -> list[PasskeyRecord]:
        """The user's passkeys, oldest first (one strongly consistent Query, paged)."""
        records: list[PasskeyRecord] = []
        query: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True,
                                 "KeyConditionExpression": "user_uuid = :u",
                                 "ExpressionAttributeValues": {":u": {"S": user_uuid}}}
        while True:
            page = self.client.query(**query)
            records += [r for r in map(self.from_item, page.get("Items", [])) if r is not None]
            if "LastEvaluatedKey" not in page:
                return sorted(records, key=lambda r: r.created_at)
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- TransactWriteItems entries --------------------------------------------------------------

    def put_item(self, record: PasskeyRecord) -> dict[str, Any]:
        """The new passkey; refused if the user has one with this id already."""
        item = {"user_uuid": record.user_uuid, "credential_id": record.credential_id,
                "public_key": record.public_key, "sign_count": record.sign_count, "name": record.name,
                "created_at": record.created_at, "backed_up": record.backed_up,
                **({"transports": list(record.transports)} if record.transports else {})}
        return {"Put": {"TableName": self.table, "Item": dynamo.to_item(item),
                        "ConditionExpression": "attribute_not_exists(#c)",
                        "ExpressionAttributeNames": {"#c": "credential_id"}}}

    def count_item(self, user_uuid: str, *, delta: int, limit: int) -> dict[str, Any]:
        """The user's count moved by `delta`; an addition is refused once it has `limit` passkeys."""
        update: dict[str, Any] = {"TableName": self.table, "Key": self.key(user_uuid, COUNT_ID),
                                  "UpdateExpression": "ADD #k :d", "ExpressionAttributeNames": {"#k": "passkeys"},
                                  "ExpressionAttributeValues": {":d": {"N": str(delta)}}}
        if delta > 0:
            update["ConditionExpression"] = "attribute_not_exists(#k) OR #k < :limit"
            update["ExpressionAttributeValues"][":limit"] = {"N": str(limit)}
        return {"Update": update}

    def delete_item(self, user_uuid: str, credential_id: str) -> dict[str, Any]:
        """The passkey's removal; refused if it is not there (removed meanwhile, or never was)."""
        return {"Delete": {"TableName": self.table, "Key": self.key(user_uuid, credential_id),
                           "ConditionExpression": "attribute_exists(#c)",
                           "ExpressionAttributeNames": {"#c": "credential_id"}}}

    def use_item(self, record: PasskeyRecord, *, sign_count: int, backed_up: bool, used_at: str) -> dict[str, Any]:
        """The passkey's use recorded: its new signature counter, refused unless the counter is still
        the one checked (of two logins racing with one counter value, one commits) and it exists."""
        return {"Update": {
            "TableName": self.table, "Key": self.key(record.user_uuid, record.credential_id),
            "UpdateExpression": "SET #s = :new, #u = :at, #b = :b",
            "ConditionExpression": "attribute_exists(#c) AND #s = :old",
            "ExpressionAttributeNames": _NAMES,
            "ExpressionAttributeValues": {":new": {"N": str(sign_count)}, ":old": {"N": str(record.sign_count)},
                                          ":at": {"S": used_at}, ":b": {"BOOL": backed_up}}}}

    def rename(self, user_uuid: str, credential_id: str, name: str) -> bool:
        """False if the user has no such passkey."""
        try:
            self.client.update_item(TableName=self.table, Key=self.key(user_uuid, credential_id),
                                    UpdateExpression="SET #n = :n", ConditionExpression="attribute_exists(#c)",
                                    ExpressionAttributeNames={"#n": "name", "#c": "credential_id"},
                                    ExpressionAttributeValues={":n": {"S": name}})
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

    def delete_all_of_user(self, user_uuid: str) -> int:
        """Delete the user's passkeys and count (account deletion); returns how many passkeys."""
        keys = dynamo.query_keys(self.client, self.table, key_names=("user_uuid", "credential_id"),
                                 partition=("user_uuid", user_uuid))
        dynamo.batch_write(self.client, self.table, [{"DeleteRequest": {"Key": k}} for k in keys])
        return sum(1 for k in keys if k["credential_id"]["S"] != COUNT_ID)
