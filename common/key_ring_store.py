"""The key_ring table: one item per key under ring "main", private material sealed under the
key-encryption key, the whole ring read with one strongly consistent Query.

A retired key stays as a tombstone: its private material is gone and what is sealed in its place is
bound to the retired state, so a writer without the key-encryption key cannot turn it back into a
key (an edited state does not open). An item that does not open is ignored with a warning, unless
none opens: then the key-encryption key is wrong."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from common import dynamo
from common.key_encryption import KeyEncryptor, WrongKeyEncryptionKey

log = logging.getLogger(__name__)

RING = "main"
GENESIS_KEY_ID = "meta#genesis"  # written in the same transaction as the first keys: the ring exists
STATE_ACTIVE = "active"
STATE_RETIRED = "retired"
_RETIRED_MARK = b"retired"  # what a tombstone seals instead of the key
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

    def identity(self, key_id: str, state: str = STATE_ACTIVE) -> str:
        """What a sealed value is bound to (GCM associated data, KMS encryption context): the item and,
        for a tombstone, its retired state."""
        base = f"citylogin-key-ring:{self.table}:{key_id}"
        return base if state == STATE_ACTIVE else f"{base}#{state}"

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

    def _tombstone(self, entry: RingEntry, *, now: datetime) -> dict[str, Any]:
        sealed = self.encryptor.seal(_RETIRED_MARK, identity=self.identity(entry.key_id, STATE_RETIRED))
        return {"ring": {"S": RING}, "key_id": {"S": entry.key_id}, "kind": {"S": entry.kind},
                "kid": {"S": entry.kid}, "created_at": {"N": _epoch_number(entry.created_at)},
                "retired_at": {"N": _epoch_number(now)}, "state": {"S": STATE_RETIRED},
                "sealed_with": {"S": self.encryptor.method},
                **{f"sealed_{name}": {"B": value} for name, value in sealed.items()}}

    def _entry(self, item: dict[str, Any]) -> RingEntry:
        """The item's key (a retired one with no private material); WrongKeyEncryptionKey if its
        sealed value does not open as what the item says it is."""
        key_id = item["key_id"]["S"]
        method = item.get("sealed_with", {}).get("S")
        if method != self.encryptor.method:
            raise WrongKeyEncryptionKey(f"the key ring in {self.table} is sealed with {method}, not with "
                                        f"{self.encryptor.method}: set {self.encryptor.variable} to the key it was "
                                        "made with")
        sealed = {name[len("sealed_"):]: value["B"] for name, value in item.items()
                  if name.startswith("sealed_") and "B" in value}
        state = item.get("state", {}).get("S", STATE_ACTIVE)
        private = self.encryptor.open(sealed, identity=self.identity(key_id, state))
        if state == STATE_RETIRED and private != _RETIRED_MARK:
            raise WrongKeyEncryptionKey(f"{key_id} is not a tombstone this ring wrote")
        return RingEntry(kind=item["kind"]["S"], kid=item["kid"]["S"], created_at=_moment(item["created_at"]["N"]),
                         private=b"" if state == STATE_RETIRED else private,
                         public=None if state == STATE_RETIRED else item.get("public", {}).get("S"), state=state)

    def _genesis(self, moment: datetime) -> dict[str, Any]:
        return {"ring": {"S": RING}, "key_id": {"S": GENESIS_KEY_ID}, "kind": {"S": "meta"},
                "created_at": {"N": _epoch_number(moment)}}

    def _put(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(key_id)"}

    # --- reads and writes -------------------------------------------------------------------

    def load(self) -> list[RingEntry] | None:
        """Every key, unsealed (WrongKeyEncryptionKey if the KEK does not open them); None if no ring."""
        items: list[dict[str, Any]] = []
        start: dict[str, Any] = {}
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
        return self._authentic([item for item in items if item["kind"]["S"] != "meta"])

    def _authentic(self, items: list[dict[str, Any]]) -> list[RingEntry]:
        """The entries whose sealed value opens; WrongKeyEncryptionKey if none does (the KEK is wrong).
        One that does not open among others that do was written or edited without the KEK: ignored."""
        entries, refused = [], []
        for item in items:
            try:
                entries.append(self._entry(item))
            except WrongKeyEncryptionKey as exc:
                refused.append((item["key_id"]["S"], exc))
        if refused and not entries:
            raise refused[0][1]
        for key_id, _ in refused:
            log.warning("key ring item %s in %s does not open under the key-encryption key "
                        "(written or edited without it): ignored", key_id, self.table)
        return entries

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

    def retire(self, entry: RingEntry, *, now: datetime) -> bool:
        """Replace an active key by its tombstone; False if it was already retired or gone."""
        try:
            self.client.put_item(TableName=self.table, Item=self._tombstone(entry, now=now),
                                 ConditionExpression="attribute_exists(key_id) AND #s = :active",
                                 ExpressionAttributeNames={"#s": "state"},
                                 ExpressionAttributeValues={":active": {"S": STATE_ACTIVE}})
            return True
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
