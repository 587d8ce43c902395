"""Each app's delivery state (SPEC §11, RFC 8936 acknowledgements): a cursor in the feed before which
every event was acknowledged (or is older than the 24 hours events are kept for), and the
acknowledged events after it. One item per app, replaced under its version number."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from common import dynamo


@dataclass(frozen=True)
class StreamState:
    cursor: str
    acked: frozenset[str] = field(default_factory=frozenset)
    version: int = 0


class StateMoved(dynamo.StoreRefusal):
    """Another poll of the same app saved its state first: read it again."""


class StreamStore:
    def __init__(self, client, table: str) -> None:
        self.client, self.table = client, table

    def get(self, client_id: str) -> StreamState | None:
        item = self.client.get_item(TableName=self.table, Key={"client_id": {"S": client_id}},
                                    ConsistentRead=True).get("Item")
        if not item:
            return None
        data = dynamo.from_item(item)
        return StreamState(cursor=data["cursor"], acked=frozenset(data.get("acked") or ()),
                           version=int(data["version"]))

    def save(self, client_id: str, state: StreamState, *, expected_version: int) -> None:
        item: dict[str, Any] = {"client_id": {"S": client_id}, "cursor": {"S": state.cursor},
                                "version": {"N": str(expected_version + 1)}}
        if state.acked:  # DynamoDB has no empty sets
            item["acked"] = {"SS": sorted(state.acked)}
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(client_id)"}
        if expected_version:
            condition = {"ConditionExpression": "version = :v",
                         "ExpressionAttributeValues": {":v": {"N": str(expected_version)}}}
        try:
            self.client.put_item(TableName=self.table, Item=item, **condition)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise StateMoved(client_id) from None
            raise

    def delete(self, client_id: str) -> None:
        self.client.delete_item(TableName=self.table, Key={"client_id": {"S": client_id}})
