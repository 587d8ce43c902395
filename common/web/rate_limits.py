"""Fixed-window counters in the rate_limits table: one conditional ADD per request."""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, Mapping

from botocore.exceptions import ClientError

from common.database import dynamo, item_listing

if TYPE_CHECKING:  # the stubs package is a test (type-check) dependency only
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, TransactWriteItemTypeDef


def limit_subject(ip: str | None) -> str:
    """What per-client-address limits count: an IPv4 address, or the /64 of an IPv6 one (a single
    host is commonly given a whole /64, so counting its addresses one by one would count nothing);
    "unknown" without one. An IPv4-mapped IPv6 address counts as its IPv4 address."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class RateLimitStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def take(self, key: str, *, limit: int, window_seconds: int, now: int, counter: str = "uses",
             unless_full: Mapping[str, int] | None = None, user_uuid: str | None = None) -> int | None:
        """Count one use of `key` in the current window; None if the window is full (or one of the
        window's other counters named in `unless_full` has reached its limit), else the seconds left
        in the window. A counter of one user's names it (`user_uuid`), so that the account's
        deletion finds and deletes it."""
        try:
            self.client.update_item(**self.take_item(key, limit=limit, window_seconds=window_seconds, now=now,
                                                     counter=counter, unless_full=unless_full,
                                                     user_uuid=user_uuid)["Update"])
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return None
            raise
        return (now // window_seconds + 1) * window_seconds - now

    def take_item(self, key: str, *, limit: int, window_seconds: int, now: int, counter: str = "uses",
                  unless_full: Mapping[str, int] | None = None,
                  user_uuid: str | None = None) -> TransactWriteItemTypeDef:
        """The same count as a TransactWriteItems entry, refused when the window is full."""
        window_end = (now // window_seconds + 1) * window_seconds
        limits = {counter: limit, **(unless_full or {})}
        names = {f"#c{i}": name for i, name in enumerate(limits)}
        condition = " AND ".join(f"(attribute_not_exists(#c{i}) OR #c{i} < :limit{i})" for i in range(len(limits)))
        values: dict[str, AttributeValueTypeDef] = {
            ":one": {"N": "1"}, ":ttl": {"N": str(window_end + window_seconds)},
            **{f":limit{i}": {"N": str(n)} for i, n in enumerate(limits.values())}}
        if user_uuid:
            values[":u"] = {"S": user_uuid}
        return {"Update": {
            "TableName": self.table, "Key": {"limit_key": {"S": f"{key}#{now // window_seconds}"}},
            "UpdateExpression": "ADD #c0 :one SET #ttl = :ttl" + (", user_uuid = :u" if user_uuid else ""),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#ttl": dynamo.TTL_ATTRIBUTE, **names},
            "ExpressionAttributeValues": values}}
    def items_of_user(self, user_uuid: str) -> list[dict[str, Any]]:
        """Every counter that names `user_uuid`, as stored (a person's data export)."""
        return item_listing.items_of_user(self.client, self.table, key_name="limit_key", user_uuid=user_uuid)

    def delete_all_of_user(self, user_uuid: str) -> int:
        """Delete every counter that names `user_uuid` (account deletion); returns how many."""
        return dynamo.delete_items_of_user(self.client, self.table, key_name="limit_key", user_uuid=user_uuid)

    def delete_windows(self, key: str, *, windows: tuple[int, ...]) -> None:
        """Delete the counters of `key` in these windows (whether or not they exist)."""
        dynamo.batch_write(self.client, self.table, [
            {"DeleteRequest": {"Key": {"limit_key": {"S": f"{key}#{w}"}}}} for w in windows])
