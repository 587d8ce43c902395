"""Which imported password scheme keys (common.crypto.imported_hashes.scheme_key: "bcrypt$12",
"pbkdf2-sha256$27500,64", ...) the stored hashes may use, so that every process's password check verifies
a dummy of each (SPEC §17, with the timing rules of §6).

An import records the keys of its rows (`record_schemes`) before it writes any account of them; every
process reads the record at start and on each key-ring reload (PasswordParameters.refresh, on the key
ring's refresher thread) and teaches its PasswordHasher the keys (`learn_imported`); a running process
forgets none. `citylogin password-parameters retire` removes a key that no stored hash uses and no import
recorded for RETIRE_AFTER_SECONDS (`retire_schemes`): an import records its keys (again) before its
first account, so one running while the hashes are counted keeps its keys.

One item in the key_ring table's own partition (`ring` = "imported-schemes"), sealed under the
key-encryption key like the Argon2id parameter records (common.keys.password_parameter_store), for the
same reason: every key costs each password check one more verify, so a writer of the table without the
key-encryption key must not add one (checks made costlier, up to MAX_KEYS × the costliest hash the
bounds allow) nor take one away (a failed check of an account of that scheme then takes longer than one
of an unknown name). A record put or edited without it does not open and is reported once per process as
an ERROR; its keys are not learnt. An older sealed record put back drops the keys added since from the
processes started after it (those running keep them), until the next import or `record` writes it again.
At most MAX_KEYS keys, each within imported_hashes.BOUNDS; a key beyond them is refused (the import
refuses its rows)."""
from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from common.crypto.imported_hashes import check_scheme_key
from common.crypto.passwords import PasswordHasher
from common.database import dynamo
from common.keys.encryption import KeyEncryptor, WrongKeyEncryptionKey
from common.log_bursts import BurstLog
from common.thread_kind import scheduled_thread

log = logging.getLogger(__name__)

RING = "imported-schemes"
KEY_ID = "schemes"
MAX_KEYS = 8  # every check verifies one dummy of each
CHANGE_ATTEMPTS = 10
CHANGE_PAUSE_SECONDS = 0.05
RETIRE_AFTER_SECONDS = 86400  # a key recorded this recently may belong to an import still writing accounts
RETIRED, HASHES_LEFT, RECENTLY_USED = "retired", "hashes left", "recently used"
THREAD_NAME = "citylogin-imported-schemes"
_MARK = b"imported-password-schemes"  # what the record seals: no secret, the seal is its proof
_VERSION, _KEYS, _SEALED, _WITH, _RECORDED = "list_version", "scheme_keys", "sealed_", "sealed_with", "recorded_at"
UNSEALED, NOT_OPENING, UNUSABLE = "unsealed", "not opening", "unusable"


class SchemesMoved(dynamo.StoreRefusal):
    """Another change wrote the record since it was read: read it again."""


@dataclass(frozen=True)
class SchemeList:
    version: int
    keys: tuple[str, ...]

    def text(self) -> str:
        return "\n".join(self.keys)


@dataclass(frozen=True)
class LoadedSchemes:
    """The record as read: its keys if it opened (else none), the version attribute as stored (the
    condition of the next change) and why it did not open, if it did not."""

    listed: SchemeList
    read: dict[str, Any] | None = None
    refusal: str | None = None
    # When an import last recorded each key (epoch seconds; not sealed: it only tells `retire` to wait).
    recorded_at: dict[str, int] = field(default_factory=dict)


class ImportedSchemeStore:
    """The record, in the key_ring table's own partition, sealed with the key ring's encryptor."""

    def __init__(self, client: Any, table: str, encryptor: KeyEncryptor) -> None:
        self.client, self.table, self.encryptor = client, table, encryptor

    def identity(self, listed: SchemeList) -> str:
        """What the seal binds (GCM associated data, KMS context): the list and its version, in a
        namespace of its own, so that no other record's seal opens here."""
        digest = hashlib.sha256(listed.text().encode()).hexdigest()
        return f"citylogin-imported-schemes:{self.table}:{listed.version}:{digest}"

    def _key(self) -> dict[str, Any]:
        return {"ring": {"S": RING}, "key_id": {"S": KEY_ID}}

    def load(self) -> LoadedSchemes:
        item = self.client.get_item(TableName=self.table, Key=self._key(), ConsistentRead=True).get("Item")
        if item is None:
            return LoadedSchemes(SchemeList(0, ()))
        read = item.get(_VERSION)
        listed = _scheme_list(item)
        if listed is None:
            return LoadedSchemes(SchemeList(0, ()), read, UNUSABLE)
        if _WITH not in item:
            return LoadedSchemes(SchemeList(listed.version, ()), read, UNSEALED)
        if not self._opens(item, listed):
            return LoadedSchemes(SchemeList(listed.version, ()), read, NOT_OPENING)
        return LoadedSchemes(listed, read, recorded_at=_recorded_at(item))

    def _opens(self, item: dict[str, Any], listed: SchemeList) -> bool:
        if item.get(_WITH, {}).get("S") != self.encryptor.method:
            return False
        sealed = {name[len(_SEALED):]: value["B"] for name, value in item.items()
                  if name.startswith(_SEALED) and isinstance(value, dict) and "B" in value}
        try:
            return self.encryptor.open(sealed, identity=self.identity(listed)) == _MARK
        except (WrongKeyEncryptionKey, KeyError, ValueError):  # ValueError: a nonce of a length GCM refuses
            return False

    def write(self, loaded: LoadedSchemes, keys: Iterable[str], *, recorded_at: dict[str, int]) -> SchemeList:
        """The record replaced by `keys` under the next version, conditional on the version as read;
        SchemesMoved if another change came first."""
        listed = SchemeList(loaded.listed.version + 1, tuple(sorted(set(keys))))
        sealed = self.encryptor.seal(_MARK, identity=self.identity(listed))
        times = {key: {"N": str(recorded_at.get(key, 0))} for key in listed.keys}
        item = {**self._key(), _VERSION: {"N": str(listed.version)}, _KEYS: {"S": listed.text()},
                _WITH: {"S": self.encryptor.method}, _RECORDED: {"M": times},
                **{f"{_SEALED}{name}": {"B": value} for name, value in sealed.items()}}
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(#v)"} if loaded.read is None else {
            "ConditionExpression": "#v = :read", "ExpressionAttributeValues": {":read": loaded.read}}
        try:
            self.client.put_item(TableName=self.table, Item=item, ExpressionAttributeNames={"#v": _VERSION},
                                 **condition)
        except ClientError as exc:
            if dynamo.is_condition_failure(exc):
                raise SchemesMoved from None
            raise
        return listed


def _scheme_list(item: dict[str, Any]) -> SchemeList | None:
    version, text = item.get(_VERSION, {}).get("N"), item.get(_KEYS, {}).get("S", "")
    if not isinstance(version, str) or not version.isdigit() or not isinstance(text, str) or len(text) > 4096:
        return None
    return SchemeList(int(version), tuple(key for key in text.split("\n") if key))


def _recorded_at(item: dict[str, Any]) -> dict[str, int]:
    times = item.get(_RECORDED, {}).get("M", {})
    return {key: int(value["N"]) for key, value in times.items()
            if isinstance(value, dict) and isinstance(value.get("N"), str) and value["N"].isdigit()}


def _pause() -> None:
    time.sleep(random.uniform(0, CHANGE_PAUSE_SECONDS))  # noqa: S311 - a spread in time, not a secret


def _valid(key: str) -> bool:
    try:
        check_scheme_key(key)
    except ValueError:
        return False
    return True


def record_schemes(client: Any, key_ring_table: str, keys: Iterable[str], *, encryptor: KeyEncryptor,
                   now: int | None = None) -> list[str]:
    """Add each of `keys` to the record, or mark it recorded `now` again (one conditional write on top of
    what is there), within the bounds: at most MAX_KEYS in all, each a scheme key within
    imported_hashes.BOUNDS. Returns the keys refused, whose hashes must not be written. A record that
    does not open is replaced (its keys were never learnt)."""
    store = ImportedSchemeStore(client, key_ring_table, encryptor)
    wanted = list(dict.fromkeys(keys))
    now = int(time.time()) if now is None else now
    for _ in range(CHANGE_ATTEMPTS):
        loaded = store.load()
        kept, refused = list(loaded.listed.keys), []
        for key in wanted:
            if key not in kept and _valid(key) and len(kept) < MAX_KEYS:
                kept.append(key)
            elif key not in kept:
                refused.append(key)
        recorded = [key for key in wanted if key in kept]
        if not recorded and loaded.refusal is None:
            return refused
        try:
            store.write(loaded, kept, recorded_at={**loaded.recorded_at, **dict.fromkeys(recorded, now)})
        except SchemesMoved:
            _pause()
            continue
        return refused
    raise SchemesMoved(f"the imported scheme record in {key_ring_table} kept changing: try again")


@dataclass(frozen=True)
class SchemeRetirement:
    """What `retire_schemes` did with one recorded key, and how many stored hashes it has."""

    key: str
    hashes: int
    outcome: str  # RETIRED, HASHES_LEFT or RECENTLY_USED
    recorded_at: int = 0


def retire_schemes(client: Any, key_ring_table: str, *, encryptor: KeyEncryptor,
                   count_hashes: Callable[[], Counter[str]], now: int) -> list[SchemeRetirement]:
    """Remove every recorded key that no stored hash uses (`count_hashes`, a strongly consistent scan made
    after the record is read) and no import recorded in the last RETIRE_AFTER_SECONDS, in one write
    conditional on the record being as read: an import that records a key meanwhile makes it read again,
    and keeps the key. A running process forgets none; one started later does not pay for them."""
    store = ImportedSchemeStore(client, key_ring_table, encryptor)
    for _ in range(CHANGE_ATTEMPTS):
        loaded = store.load()
        counts = count_hashes()
        done = [_retirement(key, counts.get(key, 0), loaded.recorded_at.get(key, 0), now=now)
                for key in loaded.listed.keys]
        retired = {retirement.key for retirement in done if retirement.outcome == RETIRED}
        if not retired:
            return done
        try:
            store.write(loaded, [key for key in loaded.listed.keys if key not in retired],
                        recorded_at=loaded.recorded_at)
        except SchemesMoved:
            _pause()
            continue
        return done
    raise SchemesMoved(f"the imported scheme record in {key_ring_table} kept changing: try again")


def _retirement(key: str, hashes: int, recorded_at: int, *, now: int) -> SchemeRetirement:
    if hashes:
        outcome = HASHES_LEFT
    elif recorded_at >= now - RETIRE_AFTER_SECONDS:
        outcome = RECENTLY_USED
    else:
        outcome = RETIRED
    return SchemeRetirement(key, hashes, outcome, recorded_at)


def load_schemes(client: Any, key_ring_table: str, *, encryptor: KeyEncryptor) -> LoadedSchemes:
    """The record as it stands (the census lists it)."""
    return ImportedSchemeStore(client, key_ring_table, encryptor).load()


class ImportedSchemes:
    """This process's part: teaches its hasher the recorded keys at start and on every reload. A record
    that does not open is one ERROR per process and reason; a failed read keeps what was known."""

    def __init__(self, store: ImportedSchemeStore, hasher: PasswordHasher, *, reload_seconds: float) -> None:
        self._store, self._hasher, self._reload_seconds = store, hasher, reload_seconds
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._failures = BurstLog(log)
        self._reported: set[tuple[int, str]] = set()
        self._meetings: list[threading.Thread] = []

    def start(self, store: ImportedSchemeStore | None = None) -> None:
        """Learn the recorded keys through `store` (a start's client); DynamoDB's errors propagate."""
        with self._lock:
            started = time.monotonic()
            self._install((store or self._store).load())
            self._read_at = started

    def refresh(self, *, max_age: float | None = None) -> None:
        """Re-read the record unless it was read less than `max_age` seconds ago (default: the reload interval)."""
        max_age = self._reload_seconds if max_age is None else max_age
        with self._lock:
            if time.monotonic() - self._read_at < max_age:
                return
            started = time.monotonic()
            try:
                self._install(self._store.load())
            except (BotoCoreError, ClientError) as exc:
                self._failures.log(logging.WARNING, "imported password schemes not re-read, keeping the %d "
                                   "known: %s", len(self._hasher.imported_keys()), type(exc).__name__)
                return
            self._read_at = started

    def met(self, key: str) -> None:
        """The hasher met a stored hash of imported scheme `key` it did not know (an import recorded it
        since the last read): the record read again on a thread of its own, off the request path; the key
        is learnt if the sealed record lists it."""
        thread = threading.Thread(target=self._read_again, name=THREAD_NAME, daemon=True)
        self._meetings.append(thread)
        thread.start()

    def _read_again(self) -> None:
        scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
        self.refresh(max_age=0)

    def settle(self, timeout: float = 30.0) -> None:
        """Wait for the reads `met` started (tests, an orderly stop)."""
        for thread in list(self._meetings):
            thread.join(timeout)

    def _install(self, loaded: LoadedSchemes) -> None:
        if loaded.refusal is not None and (loaded.listed.version, loaded.refusal) not in self._reported:
            self._reported.add((loaded.listed.version, loaded.refusal))
            log.error("the imported password scheme record (ring %r, key_id %r) in %s is %s: it was not written "
                      "under the key-encryption key, and its schemes are not verified on every check; the next "
                      "import or `citylogin password-parameters record` writes it again", RING, KEY_ID,
                      self._store.table, loaded.refusal)
        new = self._hasher.learn_imported(loaded.listed.keys[:MAX_KEYS])
        if new:
            log.info("every password check now verifies imported password schemes %s too", ", ".join(new))
