"""The security events table: the outbox of session ends (SPEC §11). Every transaction that ends a
session puts one row here, so no session ends without its event, whatever crashes. A row with a
`client_id` is the end of that one app's grant on a live session (SPEC §14), put by the revocation's
own transaction: only that app's streams (CAEP and Back-Channel Logout) hear it.

One partition, `feed = "feed"`, sorted by `seq = <epoch ms, 13 digits>-<event id, 32 hex>`: reading
what happened since a moment is one Query. A row is kept 25 hours (events older than 24 h may be
dropped, SPEC §11)."""
from __future__ import annotations

import uuid
from typing import Any, Iterator

from common.database import dynamo
from sessions.models import EndedBy, Ending, RevokeReason, SessionEnded, seq_at

FEED = "feed"
RETENTION_SECONDS = 25 * 3600

# CAEP's initiating_entity of each end reason (SPEC §4 reasons).
INITIATOR = {RevokeReason.DISPLACED: "policy", RevokeReason.IDLE_TIMEOUT: "system",
             RevokeReason.MAX_LIFETIME: "system", RevokeReason.REFRESH_REUSE: "system",
             RevokeReason.ADMIN: "admin", RevokeReason.APPROVAL_EXPIRED: "system",
             RevokeReason.APP_REMOVED: "admin"}


def event_put(table: str, ending: Ending, *, at_ms: int) -> dict[str, Any]:
    """The TransactWriteItems entry that records `ending` in the feed at `at_ms`."""
    row = {"feed": FEED, "seq": seq_at(at_ms, uuid.uuid4().hex), "session_id": ending.session_id,
           "user_uuid": ending.user_uuid, "device_id": ending.device_id, "reason": ending.reason,
           "event_epoch": at_ms // 1000, "initiating_entity": INITIATOR.get(ending.reason, "user"),
           dynamo.TTL_ATTRIBUTE: at_ms // 1000 + RETENTION_SECONDS}
    if ending.by_device:
        row["by_device"] = ending.by_device
    row |= ending.ended_by.fields()
    if ending.client_id:  # one app's grant ended, not the session: that app alone hears it
        row |= {"client_id": ending.client_id, "grant_id": ending.grant_id}
    return {"Put": {"TableName": table, "Item": dynamo.to_item(row),
                    "ConditionExpression": "attribute_not_exists(seq)"}}


def _event(item: dict[str, Any]) -> SessionEnded:
    data = dynamo.from_item(item)
    return SessionEnded(seq=data["seq"], session_id=data["session_id"], user_uuid=data["user_uuid"],
                        device_id=data["device_id"], reason=data["reason"], event_epoch=int(data["event_epoch"]),
                        initiating_entity=data["initiating_entity"], by_device=data.get("by_device"),
                        ended_by=EndedBy(admin_action=data.get("admin_action"), by_app=data.get("by_app"),
                                         by_app_name=data.get("by_app_name")),
                        client_id=data.get("client_id"), grant_id=data.get("grant_id"))


class FeedStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def after(self, seq: str, *, page: int = 500) -> Iterator[SessionEnded]:
        """The events after `seq`, oldest first, read page by page as the caller consumes them
        (strongly consistent: a committed end is seen by the next read)."""
        args: dict[str, Any] = {
            "TableName": self.table, "ConsistentRead": True, "Limit": page,
            "KeyConditionExpression": "feed = :f AND seq > :s",
            "ExpressionAttributeValues": {":f": {"S": FEED}, ":s": {"S": seq}}}
        while True:
            response = self.client.query(**args)
            yield from (_event(item) for item in response["Items"])
            if not response.get("LastEvaluatedKey"):
                return
            args["ExclusiveStartKey"] = response["LastEvaluatedKey"]
