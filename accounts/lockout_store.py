"""Lockout counters of failed logins, in the rate_limits table (SPEC §6, §8)."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from common.database import dynamo

LOCK_BASE_SECONDS = 30
LOCK_MAX_SECONDS = 900
FAILURE_WINDOW_SECONDS = 900


class LockoutStore:
    """Failure times per subject over a sliding 15-minute window, and lock records whose wait
    doubles with each lock (SPEC §6)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    @staticmethod
    def failure_key(subject: str) -> str:
        return f"fail#{subject}"

    @staticmethod
    def lock_key(subject: str) -> str:
        return f"lock#{subject}"

    @staticmethod
    def key(limit_key: str) -> dict[str, Any]:
        return {"limit_key": {"S": limit_key}}

    @staticmethod
    def from_item(item: dict[str, Any] | None) -> dict[str, Any] | None:
        return dynamo.from_item(item)

    def read(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The existing items among `keys`, strongly consistent, in one call."""
        response = self.client.batch_get_item(RequestItems={self.table: {
            "Keys": [{"limit_key": {"S": k}} for k in keys], "ConsistentRead": True}})
        items = response.get("Responses", {}).get(self.table, [])
        return {i["limit_key"]["S"]: dynamo.from_item(i) for i in items}

    def add_failure(self, subject: str, *, now: int) -> int:
        """Record one failure; returns the failures in the last 15 minutes."""
        key = {"limit_key": {"S": self.failure_key(subject)}}
        response = self.client.update_item(
            TableName=self.table, Key=key, ReturnValues="UPDATED_NEW",
            UpdateExpression="SET failures = list_append(if_not_exists(failures, :empty), :now), #ttl = :ttl",
            ExpressionAttributeNames={"#ttl": dynamo.TTL_ATTRIBUTE},
            ExpressionAttributeValues={":empty": {"L": []}, ":now": {"L": [{"N": str(now)}]},
                                       ":ttl": {"N": str(now + FAILURE_WINDOW_SECONDS)}})
        stamps = [int(v["N"]) for v in response["Attributes"]["failures"]["L"]]
        recent = [t for t in stamps if t > now - FAILURE_WINDOW_SECONDS]
        if len(stamps) > 2 * len(recent) + 10:
            self._trim(key, stamps=stamps, recent=recent)
        return len(recent)

    def _trim(self, key: dict[str, Any], *, stamps: list[int], recent: list[int]) -> None:
        # Drop expired stamps only if nobody appended meanwhile (else leave it for next time).
        try:
            self.client.update_item(
                TableName=self.table, Key=key, UpdateExpression="SET failures = :recent",
                ConditionExpression="size(failures) = :n",
                ExpressionAttributeValues={":recent": {"L": [{"N": str(t)} for t in recent]},
                                           ":n": {"N": str(len(stamps))}})
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):
                raise

    def lock(self, subject: str, *, now: int) -> int | None:
        """Lock `subject` unless it is locked already; each further lock doubles the wait, up to 15
        minutes. Returns the wait, or None if it was locked (by a parallel failure, say): of racing
        lockers exactly one starts a lock, through the condition on the lock count it read."""
        key = {"limit_key": {"S": self.lock_key(subject)}}
        current = dynamo.from_item(self.client.get_item(TableName=self.table, Key=key,
                                                        ConsistentRead=True).get("Item")) or {}
        if current.get("locked_until", 0) > now:
            return None
        lockouts = current.get("lockouts", 0) + 1
        wait = min(LOCK_MAX_SECONDS, LOCK_BASE_SECONDS * 2 ** (lockouts - 1))
        values = {":n": {"N": str(lockouts)}, ":u": {"N": str(now + wait)}, ":ttl": {"N": str(now + 86400)}}
        if "lockouts" in current:
            condition = "lockouts = :read"
            values[":read"] = {"N": str(lockouts - 1)}
        else:
            condition = "attribute_not_exists(lockouts)"
        try:
            self.client.update_item(
                TableName=self.table, Key=key, UpdateExpression="SET lockouts = :n, locked_until = :u, #ttl = :ttl",
                ConditionExpression=condition, ExpressionAttributeNames={"#ttl": dynamo.TTL_ATTRIBUTE},
                ExpressionAttributeValues=values)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return None
            raise
        return wait

    def clear(self, keys: list[str]) -> None:
        dynamo.batch_write(self.client, self.table, [  # retries what DynamoDB leaves unprocessed
            {"DeleteRequest": {"Key": {"limit_key": {"S": k}}}} for k in keys])
