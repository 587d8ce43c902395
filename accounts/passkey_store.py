"""The passkeys table (SPEC §13): one item per WebAuthn credential of a user, keyed by the user
and the credential id, and one count item per user that holds the number of passkeys, so that
adding one under the limit is one transaction rather than a count read before a write."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from accounts.models import PasskeyRecord
from common.errors import StorageUnavailable
from common.database import dynamo, item_listing

COUNT_ID = "#count"  # the count item's credential_id: no base64url id contains '#'
DELETE_ALL_ATTEMPTS = 5
_NAMES = {"#c": "credential_id", "#s": "sign_count", "#u": "last_used_at", "#b": "backed_up"}

Items = list[dict[str, Any]]  # items as stored (`list` is also a method of the store below)


class PasskeyStore:
    def __init__(self, client: Any, table: str) -> None:
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

    @staticmethod
    def count_from_item(item: dict[str, Any] | None) -> int:
        """The passkeys the count item holds (0 without one: the user never had any)."""
        return int(item["passkeys"]["N"]) if item and "passkeys" in item else 0

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

    def items(self, user_uuid: str) -> Items:
        """Every item of the user's (its passkeys and its count) as stored (a person's data export)."""
        return item_listing.partition_items(self.client, self.table, partition=("user_uuid", user_uuid))

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

    def count_taken_item(self, user_uuid: str, *, keep: int) -> dict[str, Any]:
        """The user's count moved down by one, refused unless at least `keep` passkeys stay after it."""
        item = self.count_item(user_uuid, delta=-1, limit=0)
        item["Update"]["ConditionExpression"] = "#k > :keep"
        item["Update"]["ExpressionAttributeValues"][":keep"] = {"N": str(keep)}
        return item

    def count_check_item(self, user_uuid: str) -> dict[str, Any]:
        """A check that the user has at least one passkey (its count item says so)."""
        return {"ConditionCheck": {"TableName": self.table, "Key": self.key(user_uuid, COUNT_ID),
                                   "ConditionExpression": "#k > :zero", "ExpressionAttributeNames": {"#k": "passkeys"},
                                   "ExpressionAttributeValues": {":zero": {"N": "0"}}}}

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
        """Delete the user's passkeys and count (account deletion, password reset); returns how many
        passkeys. One transaction, on the condition that the count is still the one read with them: a
        passkey added or removed meanwhile makes it read them again, so the count stays exact (an
        operator's account page lists no passkeys on a count of 0)."""
        for _ in range(DELETE_ALL_ATTEMPTS):
            found = self._partition(user_uuid)
            count = found.pop(COUNT_ID, None)
            if not found and count is None:
                return 0
            deletions = [{"Delete": {"TableName": self.table, "Key": self.key(user_uuid, c)}} for c in found]
            try:
                self.client.transact_write_items(TransactItems=[*deletions, self._count_deletion(user_uuid, count)])
            except ClientError as exc:
                if not {"ConditionalCheckFailed", "TransactionConflict"} & set(dynamo.cancellation_codes(exc)):
                    raise
                continue  # the passkeys changed since they were read
            return len(found)
        raise StorageUnavailable()  # changed under every attempt: the caller's request is retried

    def _partition(self, user_uuid: str) -> dict[str, dict[str, Any]]:
        """credential_id -> item of every item of the user's (its passkeys and its count), strongly consistent."""
        query: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True, "ProjectionExpression": "#c, #k",
            "KeyConditionExpression": "#u = :u", "ExpressionAttributeValues": {":u": {"S": user_uuid}},
            "ExpressionAttributeNames": {"#u": "user_uuid", "#c": "credential_id", "#k": "passkeys"}}
        found: dict[str, dict[str, Any]] = {}
        while True:
            page = self.client.query(**query)
            found.update((item["credential_id"]["S"], item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return found
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _count_deletion(self, user_uuid: str, count: dict[str, Any] | None) -> dict[str, Any]:
        expected: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(#c)",
                                    "ExpressionAttributeNames": {"#c": "credential_id"}}
        if count is not None:
            expected = {"ConditionExpression": "#k = :n", "ExpressionAttributeNames": {"#k": "passkeys"},
                        "ExpressionAttributeValues": {":n": {"N": str(self.count_from_item(count))}}}
        return {"Delete": {"TableName": self.table, "Key": self.key(user_uuid, COUNT_ID), **expected}}
