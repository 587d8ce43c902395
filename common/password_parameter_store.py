"""The records of the Argon2id parameter sets a deployment has hashed with (common.password_parameters):
in the key_ring table's own partition, `ring` = "password-parameters", `key_id` = "t=3,m=65536,p=4",
with `first_used` and `last_used` in epoch seconds. The key ring reads only ring "main"."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from common import dynamo
from common.config import parse_argon2_parameter_sets
from common.crypto import Argon2Parameters

log = logging.getLogger(__name__)

RING = "password-parameters"
# What the settings accept (common.config): a recorded set beyond them is not verified on every check.
MAX_PARAMETERS: Argon2Parameters = (20, 4194304, 16)


def key_of(parameters: Argon2Parameters) -> str:
    """(3, 65536, 4) -> "t=3,m=65536,p=4", the form of the setting and of the record's key."""
    return "t=%d,m=%d,p=%d" % parameters


def parameters_of(key_id: str) -> Argon2Parameters | None:
    """The set a record names, None if it is not one this service would hash with."""
    try:
        sets = parse_argon2_parameter_sets(key_id)
    except ValueError:
        return None
    if len(sets) != 1 or not acceptable(sets[0]):
        return None
    return sets[0]


def acceptable(parameters: Argon2Parameters) -> bool:
    return all(value <= bound for value, bound in zip(parameters, MAX_PARAMETERS, strict=True))


@dataclass(frozen=True)
class RecordedSet:
    parameters: Argon2Parameters
    first_used: int
    last_used: int


class PasswordParameterStore:
    """The records, in the key_ring table's own partition (the key ring reads only ring "main")."""

    def __init__(self, client, table: str) -> None:
        self.client, self.table = client, table
        self._ignored: set[str] = set()  # warned about once, not at every reload

    def _key(self, parameters: Argon2Parameters) -> dict[str, Any]:
        return {"ring": {"S": RING}, "key_id": {"S": key_of(parameters)}}

    def record_in_use(self, parameters: Argon2Parameters, *, now: int) -> None:
        """A process hashes with `parameters` now: created if missing, `last_used` moved forward."""
        try:
            self.client.update_item(
                TableName=self.table, Key=self._key(parameters),
                UpdateExpression="SET #first = if_not_exists(#first, :now), #last = :now",
                ConditionExpression="attribute_not_exists(#last) OR #last < :now",
                ExpressionAttributeNames={"#first": "first_used", "#last": "last_used"},
                ExpressionAttributeValues={":now": {"N": str(now)}})
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):  # another process recorded it later already
                raise

    def record_met(self, parameters: Argon2Parameters, *, now: int) -> None:
        """A stored hash of `parameters` exists: created if missing, an existing record unchanged."""
        self.client.update_item(
            TableName=self.table, Key=self._key(parameters),
            UpdateExpression="SET #first = if_not_exists(#first, :now), #last = if_not_exists(#last, :now)",
            ExpressionAttributeNames={"#first": "first_used", "#last": "last_used"},
            ExpressionAttributeValues={":now": {"N": str(now)}})

    def load(self) -> list[RecordedSet]:
        """Every record (one strongly consistent Query); one that names no usable set is left out."""
        items: list[dict[str, Any]] = []
        start: dict[str, Any] = {}
        while True:
            page = self.client.query(TableName=self.table, KeyConditionExpression="#r = :ring",
                                     ExpressionAttributeNames={"#r": "ring"},
                                     ExpressionAttributeValues={":ring": {"S": RING}}, ConsistentRead=True, **start)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        return [record for record in map(self._record, items) if record is not None]

    def remove(self, parameters: Argon2Parameters, *, used_before: int) -> bool:
        """Delete the record unless a process recorded it at `used_before` or later; False then."""
        try:
            self.client.delete_item(TableName=self.table, Key=self._key(parameters),
                                    ConditionExpression="#last < :before",
                                    ExpressionAttributeNames={"#last": "last_used"},
                                    ExpressionAttributeValues={":before": {"N": str(used_before)}})
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

    def _record(self, item: dict[str, Any]) -> RecordedSet | None:
        key_id = item["key_id"]["S"]
        parameters = parameters_of(key_id)
        if parameters is None:
            if key_id not in self._ignored:
                self._ignored.add(key_id)
                log.warning("password parameter record %r names no Argon2id set this service uses: ignored",
                            key_id[:40])
            return None
        return RecordedSet(parameters, first_used=int(item.get("first_used", {}).get("N", 0)),
                           last_used=int(item.get("last_used", {}).get("N", 0)))
