"""The login history table: one item per attempt, newest first per user (SPEC §4)."""
from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from common.timefmt import iso
from common.database import dynamo, item_listing
from sessions.models import HistoryResult

HISTORY_DAYS = 180
OPERATOR_ACTION = HistoryResult.ADMIN_ACTION.value  # the `result` of an operator's action on the account (SPEC §15)
# The account's audit trail, the operator actions alone, is a partition of its own beside its history.
AUDIT_PARTITION = "audit#"


class BadCursor(dynamo.StoreRefusal):
    """A pagination cursor that this store did not produce."""


class HistoryStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def put_item(self, *, user_uuid: str, at: datetime, result: str, device_id: str | None,
                 ip: str | None, user_agent: str | None, evicted: list[dict[str, Any]] | None = None,
                 provider: str | None = None) -> dict[str, Any]:
        """A TransactWriteItems entry recording one attempt at `at`; `provider`: the display name of the
        upstream provider whose answer stood in for the password, or that a linked identity is of (SPEC §16)."""
        # Microseconds in the sort key keep attempts within one second in order, newest first.
        micros = int(at.timestamp() * 1_000_000)
        now = int(at.timestamp())
        item = {"user_uuid": user_uuid, "event_key": f"{micros:020d}#{uuid.uuid4().hex[:8]}", "at": iso(at),
                "result": result, "device_id": device_id, "ip": ip, "user_agent": user_agent,
                "evicted": evicted or [], "provider": provider, dynamo.TTL_ATTRIBUTE: now + HISTORY_DAYS * 86400}
        return {"Put": {"TableName": self.table, "Item": dynamo.to_item(item)}}

    def record_operator_action(self, *, user_uuid: str, at: datetime, action: str, details: dict[str, Any]) -> None:
        """One operator action on the account, in its history and in its audit trail (one transaction)."""
        micros = int(at.timestamp() * 1_000_000)
        row = {"event_key": f"{micros:020d}#{uuid.uuid4().hex[:8]}", "at": iso(at), "result": OPERATOR_ACTION,
               "action": action, **details, dynamo.TTL_ATTRIBUTE: int(at.timestamp()) + HISTORY_DAYS * 86400}
        self.client.transact_write_items(TransactItems=[
            {"Put": {"TableName": self.table, "Item": dynamo.to_item({"user_uuid": partition, **row})}}
            for partition in (user_uuid, AUDIT_PARTITION + user_uuid)])

    def record(self, *, keep: bool = True, **fields: Any) -> str:
        """Write one attempt; its row's `event_key`. `keep=False` makes the same write but conditioned so
        that it never applies: an attempt on an unknown username costs what a known one does and stores
        nothing."""
        put = self.put_item(**fields)["Put"]
        event_key = put["Item"]["event_key"]["S"]
        if keep:
            self.client.put_item(**put)
            return event_key
        try:
            self.client.put_item(**put, ConditionExpression="attribute_exists(user_uuid)")
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise
        return event_key

    def mark_continued(self, *, user_uuid: str, event_key: str) -> bool:
        """The row of a login asked "in use elsewhere - continue?" gets `continued`: the person said yes.
        Only an existing row (one expired or erased with the account stays gone); whether it was marked."""
        try:
            self.client.update_item(
                TableName=self.table, Key={"user_uuid": {"S": user_uuid}, "event_key": {"S": event_key}},
                UpdateExpression="SET continued = :yes", ConditionExpression="attribute_exists(event_key)",
                ExpressionAttributeValues={":yes": {"BOOL": True}})
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise
            return False
        return True

    def delete_all(self, user_uuid: str) -> None:
        """Delete the user's whole history and audit trail: a Query of their keys, then BatchWriteItem deletes."""
        for partition in (user_uuid, AUDIT_PARTITION + user_uuid):
            keys = dynamo.query_keys(self.client, self.table, key_names=("user_uuid", "event_key"),
                                     partition=("user_uuid", partition))
            dynamo.batch_write(self.client, self.table, [{"DeleteRequest": {"Key": k}} for k in keys])

    def items(self, user_uuid: str) -> list[dict[str, Any]]:
        """The user's whole history, then its audit trail, oldest first, as stored (a data export)."""
        return [item for partition in (user_uuid, AUDIT_PARTITION + user_uuid)
                for item in item_listing.partition_items(self.client, self.table, partition=("user_uuid", partition))]

    def audit_page(self, *, user_uuid: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the operator actions on the account, newest first."""
        items, next_cursor = self.page(user_uuid=AUDIT_PARTITION + user_uuid, limit=limit, cursor=cursor)
        return [{**item, "user_uuid": user_uuid} for item in items], next_cursor

    def page(self, *, user_uuid: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        # Read consistently: the list an operator or the person rereads right after an action (a lock, a
        # login) must hold that action's row; an eventually consistent query may answer without it.
        args: dict[str, Any] = {
            "TableName": self.table, "ScanIndexForward": False, "Limit": limit, "ConsistentRead": True,
            "KeyConditionExpression": "#u = :u", "ExpressionAttributeNames": {"#u": "user_uuid"},
            "ExpressionAttributeValues": {":u": {"S": user_uuid}}}
        if cursor:
            # The cursor carries only the sort key, so it can never reach another user's items.
            args["ExclusiveStartKey"] = {"user_uuid": {"S": user_uuid}, "event_key": {"S": _decode(cursor)}}
        response = self.client.query(**args)
        last = response.get("LastEvaluatedKey")
        next_cursor = _encode(last["event_key"]["S"]) if last else None
        return [dynamo.from_item(i) for i in response["Items"]], next_cursor


def _encode(event_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": event_key}).encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        key = data["k"]
    except (ValueError, TypeError, KeyError, RecursionError):
        raise BadCursor(cursor) from None
    if not isinstance(key, str) or not 0 < len(key) < 200:
        raise BadCursor(cursor)
    return key
