"""Fixed-window counters in the rate_limits table: one conditional ADD per request."""
from __future__ import annotations

from botocore.exceptions import ClientError

from common import dynamo


class RateLimitStore:
    def __init__(self, client, table: str) -> None:
        self.client, self.table = client, table

    def take(self, key: str, *, limit: int, window_seconds: int, now: int) -> int | None:
        """Count one use of `key` in the current window; None if the window is full, else the
        seconds left in the window."""
        try:
            self.client.update_item(**self.take_item(key, limit=limit, window_seconds=window_seconds,
                                                     now=now)["Update"])
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return None
            raise
        return (now // window_seconds + 1) * window_seconds - now

    def take_item(self, key: str, *, limit: int, window_seconds: int, now: int) -> dict:
        """The same count as a TransactWriteItems entry, refused when the window is full."""
        window_end = (now // window_seconds + 1) * window_seconds
        return {"Update": {
            "TableName": self.table, "Key": {"limit_key": {"S": f"{key}#{now // window_seconds}"}},
            "UpdateExpression": "ADD uses :one SET #ttl = :ttl",
            "ConditionExpression": "attribute_not_exists(uses) OR uses < :limit",
            "ExpressionAttributeNames": {"#ttl": dynamo.TTL_ATTRIBUTE},
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":limit": {"N": str(limit)},
                                          ":ttl": {"N": str(window_end + window_seconds)}}}}
