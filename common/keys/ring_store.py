"""The key_ring table: one item per key under ring "main", private material sealed under the
key-encryption key, the whole ring read with one strongly consistent Query.

A retired key stays as a tombstone: its private material is gone and what is sealed in its place is
bound to the retired state, so a writer without the key-encryption key cannot turn it back into a
key (an edited state does not open). An item that does not open, or holds what no writer with the key
writes (a sealed part missing, of another type or length; a kind, kid or time that is not one), is
refused, unless none opens: then the key-encryption key is wrong. Each refusal is in what `load` returns,
for common.keys.ring to log as an ERROR once per process; none stops a read.

Putting a retired key's old item back would undo its tombstone, so the retirement is also written
where that item is not: a retirement writes, in one transaction, its tombstone and the next version
of the ring's manifest (`meta#manifest`: the version and every retired key), and its tombstone also
carries the retired keys as they stand then; a key added after a retirement carries them in its
item's key. Each is bound under the key-encryption key (a digest of the version and the sorted set
in the sealed value's identity), so no writer without it can edit one, only put an older one back
or delete it. Items of the previous release (no ring state) keep opening, and that release still
opens every key and tombstone written here (the ring state is sealed beside a tombstone's own seal;
a key's is in its item's key) and drops the manifest as it drops every `meta` item."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from common.database import dynamo
from common.keys.encryption import KeyEncryptor, MalformedSeal, WrongKeyEncryptionKey

RING = "main"
GENESIS_KEY_ID = "meta#genesis"  # written in the same transaction as the first keys: the ring exists
MANIFEST_KEY_ID = "meta#manifest"  # the ring's version and retired keys, rewritten by every retirement
STATE_ACTIVE = "active"
STATE_RETIRED = "retired"
_RETIRED_MARK = b"retired"  # what a tombstone seals instead of the key
_RING_MARK = b"ring-state"  # what the manifest and a tombstone's ring state seal (the state is in the identity)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_LATEST = Decimal(int((datetime(3000, 1, 1, tzinfo=timezone.utc) - _EPOCH).total_seconds()))
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class RingState:
    """What the ring was when a record was written: its version (one per retirement) and every key
    retired by then (key ids, kind#kid)."""

    version: int = 0
    retired: frozenset[str] = frozenset()

    def label(self) -> str:
        """The version and a digest of the sorted set: what a sealed value is bound to."""
        canonical = json.dumps([self.version, sorted(self.retired)], separators=(",", ":"))
        return f"v{self.version}#{hashlib.sha256(canonical.encode()).hexdigest()}"

    def after_retiring(self, key_id: str) -> "RingState":
        return RingState(self.version + 1, self.retired | {key_id})


@dataclass(frozen=True)
class RingEntry:
    """One key of the ring, its private material in clear (in memory only)."""

    kind: str            # "ca" | "jwt" | "refresh"
    kid: str
    created_at: datetime
    private: bytes       # CA key PEM, JWT private key PEM, or the refresh secret
    public: str | None   # CA certificate PEM, JWT public key PEM; None for a refresh secret
    state: str = STATE_ACTIVE
    known: RingState | None = None  # the ring state bound into its item (None: none retired when written)
    stored_as: str = ""  # the item's key as read, when it is not key_id: see item_key

    @property
    def key_id(self) -> str:
        return f"{self.kind}#{self.kid}"

    @property
    def item_key(self) -> str:
        """Its item's key_id: kind#kid, and for a key added after a retirement the ring state's label
        too (bound into the key's seal, as the item's key always was, so the previous release opens it)."""
        if self.stored_as:
            return self.stored_as
        if self.state == STATE_ACTIVE and self.known is not None and self.known.retired:
            return f"{self.key_id}#{self.known.label()}"
        return self.key_id


@dataclass(frozen=True)
class Refusal:
    """An item of the ring refused (or only the ring state beside its seal): what a process logs once."""

    name: str  # the item's kind#kid, or its key: never anything sealed
    ring_state: bool = False  # the item (a tombstone) holds; only the ring state beside its seal was refused

    @property
    def key(self) -> str:
        """What a process remembers having reported (common.keys.ring)."""
        return f"refused#{'ring-state#' if self.ring_state else ''}{self.name}"

    def message(self, table: str) -> str:
        if self.name == MANIFEST_KEY_ID:
            return (f"the key ring's manifest ({MANIFEST_KEY_ID}) in {table} does not open under the key-encryption "
                    "key (written or edited without it): ignored, the next retirement writes it again")
        if self.ring_state:
            return (f"the ring state on key ring item {self.name} in {table} does not open under the key-encryption "
                    "key (written or edited without it): ignored, the item itself holds")
        return (f"key ring item {self.name} in {table} does not open under the key-encryption key, or holds what no "
                "writer with it writes (written or edited without it): refused, it neither signs nor verifies")


@dataclass(frozen=True)
class LoadedRing:
    """Every item of the ring that opens, the manifest, and what was refused."""

    entries: list[RingEntry]
    manifest: RingState | None  # None: none yet (a ring no retirement of this release touched), or it does not open
    manifest_stored: str | None  # its version as stored (a number), opened or not: the next retirement's condition
    refused: tuple[Refusal, ...] = ()


class RingMoved(dynamo.StoreRefusal):
    """Another retirement wrote the manifest since it was read: read the ring again."""


def _epoch_number(moment: datetime) -> str:
    micros = (moment - _EPOCH) // _US  # exact: a float would lose the microseconds that order kids
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _moment(number: str) -> datetime:
    """The time an epoch number names; ValueError (or an ArithmeticError) unless it is one between 1970 and
    _LATEST: no key is made later, and a later one would overflow the times computed from it."""
    seconds = Decimal(number)
    if not seconds.is_finite() or not 0 <= seconds < _LATEST:
        raise ValueError(f"{number} is not a key's creation time")
    return _EPOCH + _US * int(seconds * 1_000_000)


class KeyRingStore:
    def __init__(self, client: Any, table: str, encryptor: KeyEncryptor) -> None:
        self.client, self.table, self.encryptor = client, table, encryptor

    def identity(self, key_id: str, state: str = STATE_ACTIVE) -> str:
        """What a sealed value is bound to (GCM associated data, KMS encryption context): the item and,
        for a tombstone, its retired state."""
        base = f"citylogin-key-ring:{self.table}:{key_id}"
        return base if state == STATE_ACTIVE else f"{base}#{state}"

    def _ring_identity(self, item_key: str, ring: RingState) -> str:
        """What the ring state on the manifest or a tombstone is bound to: the item and the state's label
        (a namespace of its own, so that no such seal opens as a key or a tombstone)."""
        return f"citylogin-key-ring-state:{self.table}:{item_key}#{ring.label()}"

    # --- items ---------------------------------------------------------------------------

    def _sealed(self, plaintext: bytes, *, identity: str, prefix: str = "sealed_") -> dict[str, Any]:
        return {f"{prefix}{name}": {"B": value}
                for name, value in self.encryptor.seal(plaintext, identity=identity).items()}

    def _item(self, entry: RingEntry) -> dict[str, Any]:
        item = {"ring": {"S": RING}, "key_id": {"S": entry.item_key}, "kind": {"S": entry.kind},
                "kid": {"S": entry.kid}, "created_at": {"N": _epoch_number(entry.created_at)},
                "state": {"S": entry.state}, "sealed_with": {"S": self.encryptor.method},
                **self._sealed(entry.private, identity=self.identity(entry.item_key))}
        if entry.public is not None:
            item["public"] = {"S": entry.public}
        if entry.item_key != entry.key_id and entry.known is not None:
            item.update(_ring_attributes(entry.known))
        return item

    def _tombstone(self, entry: RingEntry, *, ring: RingState, now: datetime) -> dict[str, Any]:
        """The retired mark sealed as the previous release seals it, and beside it (a seal of its own,
        bound to the item and the state) the ring as this retirement leaves it."""
        return {"ring": {"S": RING}, "key_id": {"S": entry.item_key}, "kind": {"S": entry.kind},
                "kid": {"S": entry.kid}, "created_at": {"N": _epoch_number(entry.created_at)},
                "retired_at": {"N": _epoch_number(now)}, "state": {"S": STATE_RETIRED},
                "sealed_with": {"S": self.encryptor.method},
                **self._sealed(_RETIRED_MARK, identity=self.identity(entry.item_key, STATE_RETIRED)),
                **_ring_attributes(ring),
                **self._sealed(_RING_MARK, identity=self._ring_identity(entry.item_key, ring), prefix=_RING_SEALED)}

    def _manifest(self, ring: RingState) -> dict[str, Any]:
        return {"ring": {"S": RING}, "key_id": {"S": MANIFEST_KEY_ID}, "kind": {"S": "meta"},
                "sealed_with": {"S": self.encryptor.method}, **_ring_attributes(ring),
                **self._sealed(_RING_MARK, identity=self._ring_identity(MANIFEST_KEY_ID, ring))}

    def _entry(self, item: dict[str, Any], refused: list[Refusal]) -> RingEntry:
        """The item's key (a retired one with no private material); WrongKeyEncryptionKey if its
        sealed value does not open as what the item says it is, or the item is not of the form written
        here (MalformedSeal: its sealed value could not have been sealed). A tombstone whose ring state
        does not open holds: that refusal goes into `refused`."""
        item_key = _text(item, "key_id") or ""
        method = _text(item, "sealed_with")
        if method != self.encryptor.method:
            raise WrongKeyEncryptionKey(f"the key ring in {self.table} is sealed with {method}, not with "
                                        f"{self.encryptor.method}: set {self.encryptor.variable} to the key it was "
                                        "made with")
        kind, kid, created_at = _described(item)
        state, public = _text(item, "state") or STATE_ACTIVE, _text(item, "public")
        if public is None and "public" in item:
            raise WrongKeyEncryptionKey(f"{item_key} is not an item this ring wrote")
        private = self.encryptor.open(_sealed_values(item, "sealed_"), identity=self.identity(item_key, state))
        if state == STATE_RETIRED and private != _RETIRED_MARK:
            raise WrongKeyEncryptionKey(f"{item_key} is not a tombstone this ring wrote")
        key_id = f"{kind}#{kid}"
        known = (self._tombstone_state(item, item_key, refused) if state == STATE_RETIRED
                 else _added_under(item, key_id))
        return RingEntry(kind=kind, kid=kid, created_at=created_at,
                         private=b"" if state == STATE_RETIRED else private,
                         public=None if state == STATE_RETIRED else public, state=state,
                         known=known, stored_as="" if item_key == key_id else item_key)

    def _tombstone_state(self, item: dict[str, Any], item_key: str, refused: list[Refusal]) -> RingState | None:
        """The ring state beside a tombstone's seal; None for one of the previous release, or (refused)
        one that does not open: the tombstone itself still holds."""
        if _ring_state(item) is None and not _sealed_values(item, _RING_SEALED):
            return None
        return self._open_ring_state(item, item_key, prefix=_RING_SEALED, refused=refused)

    def _open_ring_state(self, item: dict[str, Any], item_key: str, *, prefix: str,
                         refused: list[Refusal]) -> RingState | None:
        """The ring state an item carries, if its seal opens as that state's; else None, refused."""
        ring = _ring_state(item)
        try:
            if ring is None or _text(item, "sealed_with") != self.encryptor.method:
                raise WrongKeyEncryptionKey(item_key)
            if self.encryptor.open(_sealed_values(item, prefix), identity=self._ring_identity(item_key, ring)) \
                    != _RING_MARK:
                raise WrongKeyEncryptionKey(item_key)
        except WrongKeyEncryptionKey:  # MalformedSeal too
            refused.append(Refusal(_name(item), ring_state=True))
            return None
        return ring

    def _genesis(self, moment: datetime) -> dict[str, Any]:
        return {"ring": {"S": RING}, "key_id": {"S": GENESIS_KEY_ID}, "kind": {"S": "meta"},
                "created_at": {"N": _epoch_number(moment)}}

    def _put(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(key_id)"}

    # --- reads and writes -------------------------------------------------------------------

    def load(self) -> LoadedRing | None:
        """Every key, unsealed (WrongKeyEncryptionKey if the KEK opens none), the manifest and what was
        refused; None if no ring. An item written without the KEK, however malformed, is only refused."""
        items = self._query()
        if items is None or not any(_text(item, "key_id") == GENESIS_KEY_ID for item in items):
            return None
        refused: list[Refusal] = []
        entries = self._authentic([item for item in items if _text(item, "kind") != "meta"], refused)
        manifest = next((item for item in items if _text(item, "key_id") == MANIFEST_KEY_ID), None)
        if manifest is None:
            return LoadedRing(entries, None, None, tuple(refused))
        opened = self._open_ring_state(manifest, MANIFEST_KEY_ID, prefix="sealed_", refused=refused)
        return LoadedRing(entries, opened, _number(manifest, _VERSION), tuple(refused))

    def _query(self) -> list[dict[str, Any]] | None:
        """Every item of the ring (one strongly consistent Query, paged); None if there is no table."""
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
                    return items
                start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        except ClientError as exc:
            if dynamo.error_code(exc) == "ResourceNotFoundException":
                return None
            raise

    def _authentic(self, items: list[dict[str, Any]], refused: list[Refusal]) -> list[RingEntry]:
        """The entries whose sealed value opens; WrongKeyEncryptionKey if none does (the KEK is wrong:
        the error of an item that could have been sealed comes first). One that does not open among others
        that do was written or edited without the KEK: refused, into `refused`."""
        entries, failures = [], []
        for item in items:
            try:
                entries.append(self._entry(item, refused))
            except WrongKeyEncryptionKey as exc:  # MalformedSeal too
                failures.append(exc)
                refused.append(Refusal(_name(item)))
        if failures and not entries:
            raise sorted(failures, key=lambda exc: isinstance(exc, MalformedSeal))[0]
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

    def is_empty(self) -> bool:
        """No item of the ring (or no table)."""
        return not self._query()

    def restore(self, entries: list[RingEntry], *, ring: RingState, now: datetime) -> bool:
        """Write a backed-up ring into a table that holds no ring: each key and tombstone sealed for this
        table, then the genesis marker and the manifest together, so that the ring exists only once it is
        whole. False, with nothing left written, if an item of the ring is there already (or comes meanwhile)."""
        if not self.is_empty():
            return False
        items = [self._item(e) if e.state == STATE_ACTIVE else self._tombstone(e, ring=ring, now=now) for e in entries]
        last = [self._genesis(now), *([self._manifest(ring)] if ring.version or ring.retired else [])]
        batches = [items[i:i + _TRANSACTION_ITEMS] for i in range(0, len(items), _TRANSACTION_ITEMS)] + [last]
        written: list[dict[str, Any]] = []
        try:
            for batch in batches:
                self.client.transact_write_items(TransactItems=[{"Put": self._put(item)} for item in batch])
                written += batch
        except ClientError as exc:
            if "ConditionalCheckFailed" not in dynamo.cancellation_codes(exc):
                raise
            for item in written:  # a ring began meanwhile: take back what this restore wrote
                self.client.delete_item(TableName=self.table, Key={"ring": item["ring"], "key_id": item["key_id"]})
            return False
        return True

    def add(self, entry: RingEntry) -> None:
        self.client.put_item(**self._put(self._item(entry)))

    def retire(self, entry: RingEntry, *, ring: RingState, manifest_read: str | None, now: datetime) -> bool:
        """Replace an active key by its tombstone and write the manifest of `ring` (the state after this
        retirement), in one transaction; False if the key was already retired or gone, RingMoved if
        the manifest is no longer at the version read (`manifest_read`, None: none had one)."""
        tombstone = {"TableName": self.table, "Item": self._tombstone(entry, ring=ring, now=now),
                     "ConditionExpression": "attribute_exists(key_id) AND #s = :active",
                     "ExpressionAttributeNames": {"#s": "state"},
                     "ExpressionAttributeValues": {":active": {"S": STATE_ACTIVE}}}
        manifest: dict[str, Any] = {"TableName": self.table, "Item": self._manifest(ring),
                                    "ExpressionAttributeNames": {"#v": _VERSION}}
        if manifest_read is None:  # none, or one whose version is not a number (written without the KEK)
            manifest |= {"ConditionExpression": "attribute_not_exists(#v) OR NOT attribute_type(#v, :number)",
                         "ExpressionAttributeValues": {":number": {"S": "N"}}}
        else:
            manifest |= {"ConditionExpression": "#v = :read",
                         "ExpressionAttributeValues": {":read": {"N": manifest_read}}}
        try:
            self.client.transact_write_items(TransactItems=[{"Put": tombstone}, {"Put": manifest}])
            return True
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if codes[:1] == ["ConditionalCheckFailed"]:
                return False
            if codes[1:2] == ["ConditionalCheckFailed"] or "TransactionConflict" in codes:
                raise RingMoved from None  # another retirement won: read again, retire on top of it
            raise


_VERSION, _RETIRED = "ring_version", "ring_retired"
_TRANSACTION_ITEMS = 100  # DynamoDB's most items in one TransactWriteItems
# A version as written: not str.isdigit, which takes "²" that int() refuses, nor more digits than int() reads
_DIGITS = re.compile(r"[0-9]{1,20}")
_NAME_SHOWN = 120
_RING_SEALED = "ring_sealed_"  # a tombstone's second seal: not "sealed_", which the previous release opens


def _ring_attributes(ring: RingState) -> dict[str, Any]:
    return {_VERSION: {"N": str(ring.version)}, _RETIRED: {"SS": sorted(ring.retired)}}


def _text(item: dict[str, Any], name: str) -> str | None:
    """An attribute that is a string (S); None if it is missing or of another type."""
    value = item.get(name)
    text = value.get("S") if isinstance(value, dict) else None
    return text if isinstance(text, str) else None


def _number(item: dict[str, Any], name: str) -> str | None:
    """An attribute that is a number (N), as stored; None if it is missing or of another type."""
    value = item.get(name)
    number = value.get("N") if isinstance(value, dict) else None
    return number if isinstance(number, str) else None


def _ring_state(item: dict[str, Any]) -> RingState | None:
    """The ring state in an item's clear attributes (bound by a seal, checked by the caller); None if
    it has none in the form written here."""
    version, retired = _number(item, _VERSION), item.get(_RETIRED)
    retired = retired.get("SS") if isinstance(retired, dict) else None
    if version is None or not _DIGITS.fullmatch(version) or not isinstance(retired, list) \
            or not all(isinstance(key_id, str) for key_id in retired):
        return None
    return RingState(int(version), frozenset(retired))


def _described(item: dict[str, Any]) -> tuple[str, str, datetime]:
    """Kind, kid and creation time of a key's item; WrongKeyEncryptionKey if one is missing or not of its
    form, or if its key does not name that kind and kid (the seal is bound to the key, not to these
    attributes: an edited kid must not open)."""
    item_key, kind, kid, created_at = (_text(item, "key_id"), _text(item, "kind"), _text(item, "kid"),
                                       _number(item, "created_at"))
    if item_key is None or kind is None or kid is None or created_at is None:
        raise WrongKeyEncryptionKey(f"{item_key} is not an item this ring wrote")
    try:
        moment = _moment(created_at)
    except (ArithmeticError, ValueError):  # not a number, or a time no datetime holds
        raise WrongKeyEncryptionKey(f"{item_key} is not an item this ring wrote") from None
    if item_key != f"{kind}#{kid}" and not item_key.startswith(f"{kind}#{kid}#"):
        raise WrongKeyEncryptionKey(f"{item_key} is not the item of {kind}#{kid}")
    return kind, kid, moment


def _added_under(item: dict[str, Any], key_id: str) -> RingState | None:
    """The ring state a key was added under: the one whose label its item's key names (so bound by
    the key's own seal); WrongKeyEncryptionKey if the attributes do not match that label."""
    item_key = _text(item, "key_id")
    if item_key == key_id:
        return None  # added before any retirement, or by the previous release
    ring = _ring_state(item)
    if ring is None or item_key != f"{key_id}#{ring.label()}":
        raise WrongKeyEncryptionKey(f"{key_id}: its ring state was edited")
    return ring


def _sealed_values(item: dict[str, Any], prefix: str) -> dict[str, bytes]:
    return {name[len(prefix):]: value["B"] for name, value in item.items()
            if name.startswith(prefix) and isinstance(value, dict) and "B" in value}


def _name(item: dict[str, Any]) -> str:
    """The item's kind#kid for a log line (not its key, which may carry a ring state's digest), printable
    and short: whoever wrote it may not have the KEK."""
    kind, kid = _text(item, "kind"), _text(item, "kid")
    name = f"{kind}#{kid}" if kind and kid else _text(item, "key_id") or "?"
    shown = "".join(char if char.isprintable() else "?" for char in name[:_NAME_SHOWN])
    return shown + ("…" if len(name) > _NAME_SHOWN else "")
