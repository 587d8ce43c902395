"""The records of the Argon2id parameter sets a deployment has hashed with (common.keys.password_parameters),
in the key_ring table's own partition (`ring` = "password-parameters"; the key ring reads only ring
"main"), sealed under the key-encryption key as the key ring's records are (SPEC §6).

One item per set (`key_id` = "t=3,m=65536,p=4", with `first_used` and `last_used` in epoch seconds) and
a manifest (`meta#manifest`). Each carries the list of the recorded sets as the last change that wrote
it left them (`list_version`, one more per change, and `list_sets`), bound under the key-encryption key
with the item's own key (the key_id and a digest of the list are the sealed value's identity): a record
put, edited, or given another's seal without the key-encryption key does not open. A change (a set
added, one retired) writes, in one transaction, the manifest (conditional on its version as read) and
every listed record. So the newest list outlives the deletion of any item but the last, and a record
put back from before its retirement is not in the newest list. `first_used` and `last_used` are not
sealed: they only tell `citylogin password-parameters retire` whether a process hashed with a set
lately (a writer without the key-encryption key can make it keep a set, or retire one that no stored
hash uses: nothing that reaches a password check).

The records of the previous release carry no seal: they are refused until `citylogin password-parameters
record` seals them."""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from common.config import parse_argon2_parameter_sets
from common.crypto.passwords import Argon2Parameters
from common.database import dynamo
from common.keys.encryption import KeyEncryptor, WrongKeyEncryptionKey

log = logging.getLogger(__name__)

RING = "password-parameters"
MANIFEST_KEY_ID = "meta#manifest"
# What the settings accept (common.config): a set beyond them is never verified on every check.
MAX_PARAMETERS: Argon2Parameters = (20, 4194304, 16)
MAX_SETS = 8  # every check verifies each set once: at most this many, the current one included
# A set costlier than this many times the current one (see `cost`) is reported once per process: sealed,
# it is verified all the same (parity first, SPEC §6); met in a stored hash, it is not recorded on its own.
COST_FACTOR = 4
_MARK = b"password-parameter-set"  # what a record seals: it has no secret, the seal is its proof
_VERSION, _SETS, _SEALED, _WITH = "list_version", "list_sets", "sealed_", "sealed_with"

# Why a record, or a set, is refused (common.keys.password_parameters logs each once, the CLI lists them).
UNSEALED, NOT_OPENING, PUT_BACK, MISSING, MANIFEST_BEHIND, UNUSABLE = (
    "unsealed", "not opening", "put back", "missing", "manifest behind", "unusable")
TOO_COSTLY, TOO_MANY, BEYOND_SETTINGS = "too costly", "too many", "beyond the settings"


def key_of(parameters: Argon2Parameters) -> str:
    """(3, 65536, 4) -> "t=3,m=65536,p=4", the form of the setting and of the record's key."""
    return "t=%d,m=%d,p=%d" % parameters


def parameters_of(key_id: str) -> Argon2Parameters | None:
    """The set a record's key names, None if it names no single set."""
    try:
        sets = parse_argon2_parameter_sets(key_id)
    except ValueError:
        return None
    return sets[0] if len(sets) == 1 and key_of(sets[0]) == key_id else None


def acceptable(parameters: Argon2Parameters) -> bool:
    return all(value <= bound for value, bound in zip(parameters, MAX_PARAMETERS, strict=True))


def cost(parameters: Argon2Parameters) -> int:
    """What one verify of the set costs: t passes over m KiB, t × m block operations. The lanes (p)
    spread them over threads and change the wall time on an idle host, not the CPU a loaded one
    spends, which is what a costly set takes from every login."""
    time_cost, memory_cost, _ = parameters
    return time_cost * memory_cost


# --- what the records say -------------------------------------------------------------------

@dataclass(frozen=True)
class SetList:
    """The recorded sets as a change left them: its version (one more per change) and the sets."""

    version: int = 0
    sets: frozenset[Argon2Parameters] = frozenset()

    def label(self) -> str:
        """The version and a digest of the sorted sets: what a sealed record is bound to."""
        canonical = json.dumps([self.version, sorted(map(key_of, self.sets))], separators=(",", ":"))
        return f"v{self.version}#{hashlib.sha256(canonical.encode()).hexdigest()}"

    def text(self) -> str:
        return "; ".join(sorted(map(key_of, self.sets)))

    def changed(self, *, add: Iterable[Argon2Parameters] = (), remove: Iterable[Argon2Parameters] = ()) -> SetList:
        """The list the next change writes (a change that adds or removes nothing rewrites every item)."""
        return SetList(self.version + 1, (self.sets | frozenset(add)) - frozenset(remove))


@dataclass(frozen=True)
class RecordedSet:
    parameters: Argon2Parameters
    first_used: int
    last_used: int


@dataclass(frozen=True)
class Refusal:
    """A record (its key as stored) or a set refused, and why (one of the reasons above)."""

    name: str
    reason: str
    detail: str = ""

    def message(self, table: str) -> str:
        """The ERROR line: names the record and what to do, never anything sealed."""
        return f"password parameter record {self.name} in {table} " + _REASONS[self.reason].format(self.detail)


_REASONS = {
    UNSEALED: "is not sealed under the key-encryption key (written by the previous release, or without the "
              "key): refused, not verified on password checks. `citylogin password-parameters record` seals "
              "the records the operator confirms",
    NOT_OPENING: "does not open under the key-encryption key (put, edited or given another record's seal "
                 "without it): refused, not verified on password checks",
    PUT_BACK: "is sealed but not in the newest sealed list of sets (version {}): a record from before its "
              "retirement, put back without the key-encryption key or from a backup: refused",
    MISSING: "is in the newest sealed list of sets (version {}) but missing or refused: deleted or replaced "
             "without the key-encryption key; still verified (`citylogin password-parameters record` writes "
             "it again)",
    MANIFEST_BEHIND: "(the manifest of the sets) is missing, does not open, or is older than the records "
                     "(version {}): deleted or put back without the key-encryption key; the records' sealed "
                     "list holds (`citylogin password-parameters record` writes it again)",
    UNUSABLE: "names no Argon2id parameter set: refused",
    TOO_COSTLY: f"costs more than {COST_FACTOR} × the current set ({{}}): met in a stored hash, not recorded on its "
                "own; `citylogin password-parameters record` records it if stored hashes really use it",
    TOO_MANY: f"is beyond the {MAX_SETS} sets a password check verifies (the current one and the cheapest "
              "others): refused (`citylogin password-parameters retire` removes those no stored hash uses)",
    BEYOND_SETTINGS: "is beyond what the settings accept: refused, not verified on password checks",
}


@dataclass(frozen=True)
class LoadedSets:
    """What one read of the records found."""

    listed: SetList  # the newest sealed list: the sets every process verifies, each within its bounds
    records: dict[Argon2Parameters, RecordedSet]  # the listed sets' records that open
    unsealed: dict[Argon2Parameters, RecordedSet]  # records with no seal (the previous release's, or forged)
    refused: list[Refusal] = field(default_factory=list)
    manifest_read: dict[str, Any] | None = None  # its version as stored: the next change is conditional on it

    def needs_rewrite(self) -> bool:
        """A listed record or the manifest was lost: the next change (or `record`) writes them again."""
        return any(refusal.reason in (MISSING, MANIFEST_BEHIND) for refusal in self.refused)


def beyond_bounds(parameters: Argon2Parameters, *, current: Argon2Parameters, count: int,
                  costly: bool = True) -> Refusal | None:
    """Why a process of `current` set that knows `count` sets (its own included) must not verify
    `parameters` too; None if it may. A set costlier than COST_FACTOR × the current one is refused only
    without `costly` (a set met in a stored hash, which no one with the key vouched for)."""
    if not acceptable(parameters):
        return Refusal(key_of(parameters), BEYOND_SETTINGS)
    if not costly and cost(parameters) > COST_FACTOR * cost(current):
        return Refusal(key_of(parameters), TOO_COSTLY, _costs(parameters, current))
    if count >= MAX_SETS:
        return Refusal(key_of(parameters), TOO_MANY)
    return None


def _costs(parameters: Argon2Parameters, current: Argon2Parameters) -> str:
    return f"t × m = {cost(parameters)}; the current set {key_of(current)}: {cost(current)}"


def costly_note(parameters: Argon2Parameters, *, current: Argon2Parameters) -> str | None:
    """What verifying `parameters` adds to every password check, if it costs more than COST_FACTOR ×
    the current set, and how to retire it; None for a set within that."""
    if cost(parameters) <= COST_FACTOR * cost(current):
        return None
    return (f"Argon2id parameters {key_of(parameters)} cost {cost(parameters) / cost(current):.1f} × the current "
            f"set {key_of(current)} ({_costs(parameters, current)}): every password check verifies them too, so "
            f"that a dormant account of that set costs what an unknown name costs, which adds about "
            f"{cost(parameters) / cost(current):.1f} × a current check's work to every check. Rehash on login moves "
            "each account to the current set at its next login; once `citylogin password-parameters list` shows "
            "no hashes left of it, `citylogin password-parameters retire` removes it")


def bounded(sets: Iterable[Argon2Parameters], *, current: Argon2Parameters
            ) -> tuple[list[Argon2Parameters], list[Refusal]]:
    """The sets a process of `current` verifies, whatever each costs (parity first, SPEC §6): its own,
    then the others cheapest first while within the settings and MAX_SETS; a Refusal for each of the others."""
    kept, refused = [current], []
    for parameters in sorted(set(sets) - {current}, key=lambda p: (cost(p), p)):
        refusal = beyond_bounds(parameters, current=current, count=len(kept))
        if refusal is None:
            kept.append(parameters)
        else:
            refused.append(refusal)
    return kept, refused


class SetsMoved(dynamo.StoreRefusal):
    """Another change wrote the manifest since it was read: read the records again."""


# --- the store ------------------------------------------------------------------------------

class PasswordParameterStore:
    """The records, in the key_ring table's own partition, sealed with the key ring's encryptor."""

    def __init__(self, client: Any, table: str, encryptor: KeyEncryptor) -> None:
        self.client, self.table, self.encryptor = client, table, encryptor

    def identity(self, key_id: str, listed: SetList) -> str:
        """What a record's seal is bound to (GCM associated data, KMS context): the item and its list,
        in a namespace of its own so that no key ring seal opens here, nor one of these there."""
        return f"citylogin-password-parameters:{self.table}:{key_id}#{listed.label()}"

    def _key(self, key_id: str) -> dict[str, Any]:
        return {"ring": {"S": RING}, "key_id": {"S": key_id}}

    # --- reading ------------------------------------------------------------------------

    def load(self) -> LoadedSets:
        """Every record (one strongly consistent Query), each opened and judged against the others."""
        items = {item["key_id"]["S"]: item for item in self._query()}
        manifest = items.pop(MANIFEST_KEY_ID, None)
        opened: dict[Argon2Parameters, tuple[SetList, RecordedSet]] = {}
        unsealed: dict[Argon2Parameters, RecordedSet] = {}
        refused: list[Refusal] = []
        for key_id, item in items.items():
            parameters = parameters_of(key_id)
            if parameters is None:
                refused.append(Refusal(repr(key_id[:40]), UNUSABLE))  # written by hand: quoted for the log
            elif _WITH not in item:
                unsealed[parameters] = _recorded(parameters, item)
                refused.append(Refusal(key_id, UNSEALED))
            elif (listed := self._open(item, key_id)) is None or parameters not in listed.sets:
                refused.append(Refusal(key_id, NOT_OPENING))
            else:
                opened[parameters] = (listed, _recorded(parameters, item))
        manifest_list = self._open(manifest, MANIFEST_KEY_ID) if manifest is not None else None
        newest = _newest([listed for listed, _ in opened.values()] + ([manifest_list] if manifest_list else []))
        return _judged(newest, opened, unsealed, refused, manifest_list=manifest_list,
                       manifest_read=None if manifest is None else manifest.get(_VERSION))

    def _query(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] = {}
        while True:
            page = self.client.query(TableName=self.table, KeyConditionExpression="#r = :ring",
                                     ExpressionAttributeNames={"#r": "ring"},
                                     ExpressionAttributeValues={":ring": {"S": RING}}, ConsistentRead=True, **start)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}

    def _open(self, item: dict[str, Any], key_id: str) -> SetList | None:
        """The list an item's seal binds; None if it does not open as an item this store wrote."""
        listed = _set_list(item)
        if listed is None or item.get(_WITH, {}).get("S") != self.encryptor.method:
            return None
        sealed = {name[len(_SEALED):]: value["B"] for name, value in item.items()
                  if name.startswith(_SEALED) and isinstance(value, dict) and "B" in value}
        try:
            mark = self.encryptor.open(sealed, identity=self.identity(key_id, listed))
        except (WrongKeyEncryptionKey, KeyError, ValueError):  # ValueError: a nonce of a length GCM refuses
            return None
        return listed if mark == _MARK else None

    # --- writing ------------------------------------------------------------------------

    def touch(self, parameters: Argon2Parameters, *, now: int) -> None:
        """A process hashes with a recorded set now: its sealed record's `last_used` moved forward (a
        record that is gone or unsealed is left alone: the process writes it again through `change`)."""
        try:
            self.client.update_item(
                TableName=self.table, Key=self._key(key_of(parameters)), UpdateExpression="SET #last = :now",
                ConditionExpression="attribute_exists(#with) AND #last < :now",
                ExpressionAttributeNames={"#last": "last_used", "#with": _WITH},
                ExpressionAttributeValues={":now": {"N": str(now)}})
        except ClientError as exc:
            if not dynamo.is_condition_failure(exc):  # a process recorded it later already, or it is gone
                raise

    def change(self, loaded: LoadedSets, listed: SetList, *, now: int, retiring: Argon2Parameters | None = None,
               used_before: int = 0) -> bool:
        """Write `listed` (the next list: `loaded.listed.changed(...)`) on the manifest, conditional on
        its version as read, and on the record of each set it names (a new one created with `now` as
        its first and last use), and delete the record of `retiring` unless a process recorded it at
        `used_before` or later, in one transaction. False if that record was recorded since; SetsMoved
        if another change came first."""
        writes: list[dict[str, Any]] = [{"Put": self._manifest_put(listed, loaded.manifest_read)}]
        writes += [{"Update": self._record_update(parameters, listed, now=now)} for parameters in sorted(listed.sets)]
        if retiring is not None:
            writes.append({"Delete": {
                "TableName": self.table, "Key": self._key(key_of(retiring)),
                "ConditionExpression": "attribute_not_exists(key_id) OR #last < :before",
                "ExpressionAttributeNames": {"#last": "last_used"},
                "ExpressionAttributeValues": {":before": {"N": str(used_before)}}}})
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            codes = dynamo.cancellation_codes(exc)
            if codes[:1] == ["ConditionalCheckFailed"] or "TransactionConflict" in codes:
                raise SetsMoved from None  # another change won: read again, change on top of it
            if retiring is not None and codes[-1:] == ["ConditionalCheckFailed"]:
                return False
            raise
        return True

    def remove_unsealed(self, parameters: Argon2Parameters, *, used_before: int) -> bool:
        """Delete an unsealed record (in no list) unless a process recorded it at `used_before` or later."""
        try:
            self.client.delete_item(
                TableName=self.table, Key=self._key(key_of(parameters)),
                ConditionExpression="attribute_not_exists(#with) AND (attribute_not_exists(#last) OR #last < :before)",
                ExpressionAttributeNames={"#with": _WITH, "#last": "last_used"},
                ExpressionAttributeValues={":before": {"N": str(used_before)}})
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                return False
            raise
        return True

    def _sealed(self, key_id: str, listed: SetList) -> dict[str, Any]:
        return {_WITH: {"S": self.encryptor.method}, _VERSION: {"N": str(listed.version)}, _SETS: {"S": listed.text()},
                **{f"{_SEALED}{name}": {"B": value}
                   for name, value in self.encryptor.seal(_MARK, identity=self.identity(key_id, listed)).items()}}

    def _manifest_put(self, listed: SetList, read: dict[str, Any] | None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table, "Item": {**self._key(MANIFEST_KEY_ID),
                                                                 **self._sealed(MANIFEST_KEY_ID, listed)},
                               "ExpressionAttributeNames": {"#v": _VERSION}}
        if read is None:
            put["ConditionExpression"] = "attribute_not_exists(#v)"
        else:  # as stored, whatever it holds: a manifest that does not open is replaced too
            put |= {"ConditionExpression": "#v = :read", "ExpressionAttributeValues": {":read": read}}
        return put

    def _record_update(self, parameters: Argon2Parameters, listed: SetList, *, now: int) -> dict[str, Any]:
        key_id = key_of(parameters)
        attributes = self._sealed(key_id, listed)
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = {f":a{i}": value for i, value in enumerate(attributes.values())}
        assignments = [f"#a{i} = :a{i}" for i in range(len(attributes))]
        return {"TableName": self.table, "Key": self._key(key_id),
                "UpdateExpression": "SET " + ", ".join([*assignments, "#first = if_not_exists(#first, :now)",
                                                        "#last = if_not_exists(#last, :now)"]),
                "ExpressionAttributeNames": {**names, "#first": "first_used", "#last": "last_used"},
                "ExpressionAttributeValues": {**values, ":now": {"N": str(now)}}}


# --- judging what was read --------------------------------------------------------------------

def _newest(lists: list[SetList]) -> SetList:
    """The list of the newest change (two of one version, which no writer with the key makes: both)."""
    version = max((listed.version for listed in lists), default=0)
    return SetList(version, frozenset().union(*(listed.sets for listed in lists if listed.version == version)))


def _judged(newest: SetList, opened: dict[Argon2Parameters, tuple[SetList, RecordedSet]],
            unsealed: dict[Argon2Parameters, RecordedSet], refused: list[Refusal], *,
            manifest_list: SetList | None, manifest_read: dict[str, Any] | None) -> LoadedSets:
    """The newest list holds: a sealed record it does not name was put back; a set it names without
    a record that opens was deleted (still listed); a manifest behind it was deleted or put back."""
    records = {parameters: record for parameters, (_, record) in opened.items() if parameters in newest.sets}
    refused += [Refusal(key_of(parameters), PUT_BACK, str(newest.version)) for parameters in sorted(opened)
                if parameters not in newest.sets]
    refused += [Refusal(key_of(parameters), MISSING, str(newest.version)) for parameters in sorted(newest.sets)
                if parameters not in records]
    if newest.sets and (manifest_list is None or manifest_list.version < newest.version):
        refused.append(Refusal(MANIFEST_KEY_ID, MANIFEST_BEHIND, str(newest.version)))
    return LoadedSets(newest, records, unsealed, refused, manifest_read)


def _set_list(item: dict[str, Any]) -> SetList | None:
    """The list in an item's clear attributes (bound by its seal, checked by the caller)."""
    version, text = item.get(_VERSION, {}).get("N"), item.get(_SETS, {}).get("S")
    if not isinstance(version, str) or not version.isdigit() or not isinstance(text, str):
        return None
    try:
        return SetList(int(version), frozenset(parse_argon2_parameter_sets(text)))
    except ValueError:
        return None


def _recorded(parameters: Argon2Parameters, item: dict[str, Any]) -> RecordedSet:
    return RecordedSet(parameters, first_used=_epoch(item, "first_used"), last_used=_epoch(item, "last_used"))


def _epoch(item: dict[str, Any], name: str) -> int:
    """An unsealed epoch attribute; 0 if it is not a whole number (written by hand)."""
    value = item.get(name, {}).get("N", "")
    return int(value) if isinstance(value, str) and value.isdigit() else 0
