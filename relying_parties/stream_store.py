"""Each app's delivery state (SPEC §11, RFC 8936 acknowledgements): a cursor in the feed before which
every event was acknowledged (or is older than the 24 hours events are kept for), and the
acknowledged events after it, replaced under its version number; and, for an app with a push URL,
which process pushes to it (a lease). One item per app."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from common.database import dynamo


@dataclass(frozen=True)
class StreamState:
    cursor: str
    acked: frozenset[str] = field(default_factory=frozenset)
    version: int = 0
    expires_epoch: int | None = None  # a receiver's own stream ends when unpolled this long; the app's never


class StateMoved(dynamo.StoreRefusal):
    """Another poll of the same app saved its state first: read it again."""


class StreamStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def get(self, client_id: str) -> StreamState | None:
        item = self.client.get_item(TableName=self.table, Key={"client_id": {"S": client_id}},
                                    ConsistentRead=True).get("Item")
        if not item or "cursor" not in item:  # none yet, or only a push lease
            return None
        data = dynamo.from_item(item)
        expires = data.get(dynamo.TTL_ATTRIBUTE)
        return StreamState(cursor=data["cursor"], acked=frozenset(data.get("acked") or ()),
                           version=int(data["version"]), expires_epoch=int(expires) if expires else None)

    def save(self, client_id: str, state: StreamState, *, expected_version: int) -> None:
        """Replace the cursor and acknowledgements if nobody saved since `expected_version` (the
        item's push lease, if any, stays as it is)."""
        values: dict[str, Any] = {":c": {"S": state.cursor}, ":next": {"N": str(expected_version + 1)}}
        expression = "SET #c = :c, version = :next"
        if state.expires_epoch:
            expression += ", #ttl = :ttl"
            values[":ttl"] = {"N": str(state.expires_epoch)}
        if state.acked:  # DynamoDB has no empty sets
            expression += ", acked = :a"
            values[":a"] = {"SS": sorted(state.acked)}
        else:
            expression += " REMOVE acked"
        condition = "attribute_not_exists(version)"
        if expected_version:
            condition, values[":v"] = "version = :v", {"N": str(expected_version)}
        try:
            self.client.update_item(TableName=self.table, Key={"client_id": {"S": client_id}},
                                    UpdateExpression=expression, ConditionExpression=condition,
                                    ExpressionAttributeNames={"#c": "cursor", **(
                                        {"#ttl": dynamo.TTL_ATTRIBUTE} if state.expires_epoch else {})},
                                    ExpressionAttributeValues=values)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise StateMoved(client_id) from None
            raise

    def take_lease(self, client_id: str, *, owner: str, now: float, until: float) -> bool:
        """Make `owner` the one process pushing to this app until `until`, if nobody else holds it
        at `now` (or renew its own); False if another holds it."""
        try:
            self.client.update_item(
                TableName=self.table, Key={"client_id": {"S": client_id}},
                UpdateExpression="SET lease_owner = :me, lease_until = :until",
                ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :me",
                ExpressionAttributeValues={":me": {"S": owner}, ":until": {"N": f"{until:.3f}"},
                                           ":now": {"N": f"{now:.3f}"}})
            return True
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise

    def delete(self, client_id: str) -> None:
        self.client.delete_item(TableName=self.table, Key={"client_id": {"S": client_id}})
