"""The mail_outbox table (SPEC §7): one item per mail, keyed by its id. A mail waiting to go carries
queue "due" and `due_at`, a mail given up queue "undelivered" (the sparse queue index lists both by
when they were due); a sent one carries neither, nor its sealed contents. Whoever sends a mail holds its
lease first (`lease_owner` until `lease_until`), a conditional write: two processes never send it at
once, and a process that dies mid-send leaves it to another once the lease is over."""
from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from common.database import dynamo
from common.database.item_listing import items_of_keys, items_of_user

DUE, SENT, UNDELIVERED = "due", "sent", "undelivered"
MAIL_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex: what Outbox writes
LISTED = 1000  # the most mails of one queue an operator's list shows: the first by when they are due


def is_mail_id(text: str) -> bool:
    """Whether `text` can name a mail: 32 lowercase hexadecimal digits, nothing around them."""
    return MAIL_ID.fullmatch(text) is not None
LEASED = "lease_owner = :me"
# Nobody's, or a lease that is over: never one this process holds (its own first try is still running).
_FREE = "(attribute_not_exists(lease_until) OR lease_until < :now)"


class OutboxStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    @staticmethod
    def key(mail_id: str) -> dict[str, Any]:
        return {"mail_id": {"S": mail_id}}

    def put(self, item: dict[str, Any]) -> None:
        self.client.put_item(**self.put_request(item))

    def put_request(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"TableName": self.table, "Item": dynamo.to_item(item),
                "ConditionExpression": "attribute_not_exists(mail_id)"}

    def get(self, mail_id: str) -> dict[str, Any] | None:
        item = self.client.get_item(TableName=self.table, Key=self.key(mail_id), ConsistentRead=True).get("Item")
        return dynamo.from_item(item) if item else None

    def due_ids(self, *, now: float, limit: int) -> list[str]:
        """The ids of mails due by `now`, longest due first (the index: eventually consistent)."""
        page = self.client.query(TableName=self.table, IndexName=dynamo.MAIL_QUEUE, Limit=limit,
                                 KeyConditionExpression="#q = :due AND due_at <= :now",
                                 ExpressionAttributeNames={"#q": "queue"},
                                 ExpressionAttributeValues={":due": {"S": DUE}, ":now": {"N": _n(now)}})
        return [item["mail_id"]["S"] for item in page["Items"]]

    def waiting_since(self, *, limit: int = 10) -> float | None:
        """When the longest waiting of the first `limit` mails due was written (or re-sent), None if none waits."""
        page = self.client.query(TableName=self.table, IndexName=dynamo.MAIL_QUEUE, Limit=limit,
                                 KeyConditionExpression="#q = :due", ExpressionAttributeNames={"#q": "queue"},
                                 ExpressionAttributeValues={":due": {"S": DUE}})
        return min((float(item["since"]["N"]) for item in page["Items"] if "since" in item), default=None)

    def undelivered(self, *, limit: int = LISTED) -> list[dict[str, Any]]:
        """The mails given up, oldest first."""
        return sorted(self._queued(UNDELIVERED, limit=limit), key=lambda i: i["due_at"])

    def waiting(self, *, limit: int = LISTED) -> list[dict[str, Any]]:
        """The mails not sent yet nor given up (due, or being tried), the longest waiting first."""
        return sorted(self._queued(DUE, limit=limit), key=lambda i: (i["since"], i["mail_id"]))

    def _queued(self, state: str, *, limit: int) -> list[dict[str, Any]]:
        """The first `limit` mails of the queue `state` by when they are due, as they are now (the index is
        eventually consistent: each read again, and one that left the queue meanwhile left out)."""
        page = self.client.query(TableName=self.table, IndexName=dynamo.MAIL_QUEUE, Limit=limit,
                                 KeyConditionExpression="#q = :state", ExpressionAttributeNames={"#q": "queue"},
                                 ExpressionAttributeValues={":state": {"S": state}},
                                 ProjectionExpression="mail_id")
        found = items_of_keys(self.client, self.table, [{"mail_id": i["mail_id"]} for i in page["Items"]])
        return [item for item in found if item.get("state") == state]

    def claim(self, mail_id: str, *, owner: str, now: float, until: float) -> dict[str, Any] | None:
        """Take the lease of a due mail that nobody holds (counting the attempt); the item, or None if it
        is not due, is held by another, or was sent meanwhile."""
        try:
            answer = self.client.update_item(
                TableName=self.table, Key=self.key(mail_id), ReturnValues="ALL_NEW",
                UpdateExpression="SET lease_owner = :me, lease_until = :until ADD attempts :one",
                ConditionExpression=f"#q = :due AND due_at <= :now AND {_FREE}",
                ExpressionAttributeNames={"#q": "queue"},
                ExpressionAttributeValues={":me": {"S": owner}, ":until": {"N": _n(until)}, ":now": {"N": _n(now)},
                                           ":due": {"S": DUE}, ":one": {"N": "1"}})
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return None
            raise
        return dynamo.from_item(answer["Attributes"])

    def mark_sent(self, mail_id: str, *, owner: str, now: float, expires: int) -> bool:
        """Sent: its sealed contents erased, out of the queue; False if this process no longer held it."""
        return self._update(mail_id, owner=owner,
                            expression="SET #s = :sent, sent_at = :now, #ttl = :ttl REMOVE #q, sealed, sealed_kid, "
                                       "lease_owner, lease_until, last_error",
                            values={":sent": {"S": SENT}, ":now": {"N": _n(now)}, ":ttl": {"N": str(expires)}})

    def retry_at(self, mail_id: str, *, owner: str, due_at: float, error: str) -> bool:
        """Not sent this time: due again at `due_at`, the lease let go."""
        return self._update(mail_id, owner=owner,
                            expression="SET due_at = :due_at, last_error = :error REMOVE lease_owner, lease_until",
                            values={":due_at": {"N": _n(due_at)}, ":error": {"S": error}})

    def give_up(self, mail_id: str, *, owner: str, now: float, error: str) -> bool:
        """Kept for the operator (`citylogin mail list`), out of the senders' queue."""
        return self._update(mail_id, owner=owner,
                            expression="SET #s = :u, #q = :u, gave_up_at = :now, last_error = :error "
                                       "REMOVE lease_owner, lease_until",
                            values={":u": {"S": UNDELIVERED}, ":now": {"N": _n(now)}, ":error": {"S": error}})

    def _update(self, mail_id: str, *, owner: str, expression: str, values: dict[str, Any]) -> bool:
        names = {name: real for name, real in (("#s", "state"), ("#q", "queue"), ("#ttl", dynamo.TTL_ATTRIBUTE))
                 if name in expression}
        named: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}  # DynamoDB refuses an empty one
        try:
            self.client.update_item(TableName=self.table, Key=self.key(mail_id), UpdateExpression=expression,
                                    ConditionExpression=LEASED,
                                    ExpressionAttributeValues={":me": {"S": owner}, **values}, **named)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

    def resend(self, mail_id: str, *, now: float) -> bool:
        """An undelivered mail due again now, with a new run of tries; False if it is not undelivered."""
        return self._operator_update(mail_id, "SET #s = :due, #q = :due, due_at = :now, since = :now, attempts = :zero "
                                              "REMOVE gave_up_at", {":due": {"S": DUE}, ":now": {"N": _n(now)},
                                                                    ":zero": {"N": "0"}})

    def drop(self, mail_id: str) -> bool:
        """Delete an undelivered mail; False if it is not undelivered."""
        try:
            self.client.delete_item(TableName=self.table, Key=self.key(mail_id),
                                    ConditionExpression="#s = :u", ExpressionAttributeNames={"#s": "state"},
                                    ExpressionAttributeValues={":u": {"S": UNDELIVERED}})
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

    def _operator_update(self, mail_id: str, expression: str, values: dict[str, Any]) -> bool:
        try:
            self.client.update_item(TableName=self.table, Key=self.key(mail_id), UpdateExpression=expression,
                                    ConditionExpression="#s = :u",
                                    ExpressionAttributeNames={"#s": "state", "#q": "queue"},
                                    ExpressionAttributeValues={":u": {"S": UNDELIVERED}, **values})
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

    def items_of_user(self, user_uuid: str) -> list[dict[str, Any]]:
        return items_of_user(self.client, self.table, key_name="mail_id", user_uuid=user_uuid)

    def delete_all_of_user(self, user_uuid: str, *, keep_event: str) -> int:
        """Delete the account's mails but those of `keep_event` (the notice that the account is deleted,
        which must still go; it erases its contents once sent and expires); how many. Read in calls of
        100 and deleted in batches of 25, not a call each (an account that lived long has hundreds, and
        its DELETE /account waits for them): a mail's event never changes, so one read as another
        event's is deleted without a condition."""
        gone = [mail["mail_id"] for mail in self.items_of_user(user_uuid) if mail.get("event") != keep_event]
        dynamo.batch_write(self.client, self.table, [{"DeleteRequest": {"Key": self.key(m)}} for m in gone])
        return len(gone)


def _n(value: float) -> str:
    return f"{value:.3f}"
