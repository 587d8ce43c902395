"""The key_ring table: one item per key under ring "main", private material sealed under the
key-encryption key, the whole ring read with one strongly consistent Query."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from common import dynamo
from common.key_encryption import KeyEncryptor, WrongKeyEncryptionKey

RING = "main"
GENESIS_KEY_ID = "meta#genesis"  # written in the same transaction as the first keys: the ring exists
STATE_ACTIVE = "active"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class RingEntry:
    """One key of the ring, its private material in clear (in memory only)."""

    kind: str            # "ca" | "jwt" | "refresh"
    kid: str
    created_at: datetime
    private: bytes       # CA key PEM, JWT private key PEM, or the refresh secret
    public: str | None   # CA certificate PEM, JWT public key PEM; None for a refresh secret
    state: str = STATE_ACTIVE

    @property
    def key_id(self) -> str:
        return f"{self.kind}#{self.kid}"


def _epoch_number(moment: datetime) -> str:
    micros = (moment - _EPOCH) // _US  # exact: a float would lose the microseconds that order kids
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _moment(number: str) -> datetime:
    return _EPOCH + _US * int(Decimal(number) * 1_000_000)


class KeyRingStore:
    def __init__(self, client, table: str, encryptor: KeyEncryptor) -> None:
        self.client, self.table, self.encryptor = client, table, encryptor

    def identity(self, key_id: str) -> str:
        """What a sealed value is bound to (GCM associated data, KMS encryption context)."""
        return f"citylogin-key-ring:{self.table}:{key_id}"

    # --- items ---------------------------------------------------------------------------

    def _item(self, entry: RingEntry) -> dict[str, Any]:
        sealed = self.encryptor.seal(entry.private, identity=self.identity(entry.key_id))
        item = {"ring": {"S": RING}, "key_id": {"S": entry.key_id}, "kind": {"S": entry.kind},
                "kid": {"S": entry.kid}, "created_at": {"N": _epoch_number(entry.created_at)},
                "state": {"S": entry.state}, "sealed_with": {"S": self.encryptor.method},
                **{f"sealed_{name}": {"B": value} for name, value in sealed.items()}}
        if entry.public is not None:
            item["public"] = {"S": entry.public}
        return item

    def _entry(self, item: dict[str, Any]) -> RingEntry:
        key_id = item["key_id"]["S"]
        method = item.get("sealed_with", {}).get("S")
        if method != self.encryptor.method:
            raise WrongKeyEncryptionKey(f"the key ring in {self.table} is sealed with {method}, not with "
                                        f"{self.encryptor.method}: set {self.encryptor.variable} to the key it was made with")
        sealed = {name[len("sealed_"):]: value["B"] for name, value in item.items()
                  if name.startswith("sealed_") and "B" in value}
        return RingEntry(kind=item["kind"]["S"], kid=item["kid"]["S"], created_at=_moment(item["created_at"]["N"]),
                         private=self.encryptor.open(sealed, identity=self.identity(key_id)),
                         public=item.get("public", {}).get("S"), state=item.get("state", {}).get("S", STATE_ACTIVE))

    def _genesis(self, moment: datetime) -> dict[str, Any]:
        return {"ring": {"S": RING}, "key_id": {"S": GENESIS_KEY_ID}, "kind": {"S": "meta"},
                "created_at": {"N": _epoch_number(moment)}}

    def _put(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(key_id)"}

    # --- reads and writes -------------------------------------------------------------------

    def load(self) -> list[RingEntry] | None:
        """Every key, unsealed (WrongKeyEncryptionKey if the KEK does not open them); None if no ring."""
        items, start = [], {}
        try:
            while True:
                page = self.client.query(TableName=self.table, KeyConditionExpression="#r = :ring",
                                         ExpressionAttributeNames={"#r": "ring"},
                                         ExpressionAttributeValues={":ring": {"S": RING}},
                                         ConsistentRead=True, **start)
                items += page["Items"]
                if "LastEvaluatedKey" not in page:
                    break
                start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        except ClientError as exc:
            if dynamo.error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        if not any(item["key_id"]["S"] == GENESIS_KEY_ID for item in items):
            return None
        return [self._entry(item) for item in items if item["kind"]["S"] != "meta"]

    def create(self, entries: list[RingEntry], *, now: datetime) -> bool:
        """Write the first keys with the genesis marker, all or nothing; False if a ring already exists."""
        writes = [{"Put": self._put(self._genesis(now))}, *({"Put": self._put(self._item(e))} for e in entries)]
        try:
            self.client.transact_write_items(TransactItems=writes)
            return True
        except ClientError as exc:
            if dynamo.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                return False  # another process created the ring first: read theirs
            raise

    def add(self, entry: RingEntry) -> None:
        self.client.put_item(**self._put(self._item(entry)))

    def delete(self, entry: RingEntry) -> bool:
        """Remove one key; False if it was already gone."""
        try:
            self.client.delete_item(TableName=self.table, Key={"ring": {"S": RING}, "key_id": {"S": entry.key_id}},
                                    ConditionExpression="attribute_exists(key_id)")
            return True
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
