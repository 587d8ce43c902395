"""Which Argon2id parameter sets the stored password hashes may still use, known by the service
itself (SPEC §6: a dormant account's hash of older parameters costs a check what an unknown name
costs, with nothing declared by the operator).

Every set a process hashes with is recorded in the key_ring table (common.password_parameter_store)
at the process's start, before it can hash, and again every HEARTBEAT_SECONDS while it runs. Every
process reads all records at start and once per CITYLOGIN_KEY_RING_RELOAD_SECONDS (on the key
ring's refresher thread) and its PasswordHasher verifies a dummy of each set on every check. A set
met in a stored hash and not known (a hash imported from elsewhere) is recorded then; `citylogin
password-parameters record` records at once every set the stored hashes use (after an upgrade from
a release that recorded none). `citylogin password-parameters retire` removes the record of a set
that no stored hash uses and no process has hashed with for RETIRE_AFTER_SECONDS (`retire_unused`);
a running process forgets nothing, a process started later does not pay for it."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from common.crypto import Argon2Parameters, PasswordHasher
from common.log_bursts import BurstLog
from common.password_parameter_store import PasswordParameterStore, RecordedSet, acceptable, key_of
from common.ring_refresher import KeyRingRefresher

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 3600.0  # a running process rewrites its set's last_used this often
# A set hashed with this recently may belong to a running process (a day: many missed heartbeats).
RETIRE_AFTER_SECONDS = 86400
MANY_SETS = 4  # more than this and every check verifies that many hashes: worth a warning
THREAD_NAME = "citylogin-password-parameters"


# --- what one process knows ------------------------------------------------------------------

class PasswordParameters:
    """This process's part: records the set its hasher hashes with, and teaches the hasher every
    recorded set. At start DynamoDB's errors propagate (the start stops, as for the key ring);
    later a failed read or record keeps what was known, with one warning per burst."""

    def __init__(self, store: PasswordParameterStore, hasher: PasswordHasher, *, reload_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._store, self._hasher, self._reload_seconds, self._clock = store, hasher, reload_seconds, clock
        self._lock = threading.Lock()
        self._read_at = self._recorded_at = float("-inf")
        self._failures = BurstLog(log)
        self._meetings: list[threading.Thread] = []

    def start(self, store: PasswordParameterStore | None = None) -> None:
        """Record this process's set and learn every recorded one, through `store` (a start's client)."""
        store = store or self._store
        now = self._clock()
        store.record_in_use(self._hasher.parameters, now=int(now))
        self._recorded_at = now
        self._learn(store.load())
        self._read_at = time.monotonic()

    def refresh(self, *, max_age: float | None = None) -> None:
        """Re-read the records unless they were read less than `max_age` seconds ago (default: the
        reload interval), and record this process's set again once a heartbeat is due."""
        max_age = self._reload_seconds if max_age is None else max_age
        with self._lock:
            try:
                if self._clock() - self._recorded_at >= HEARTBEAT_SECONDS:
                    now = self._clock()
                    self._store.record_in_use(self._hasher.parameters, now=int(now))
                    self._recorded_at = now
                if time.monotonic() - self._read_at >= max_age:
                    started = time.monotonic()
                    self._learn(self._store.load())
                    self._read_at = started
            except (BotoCoreError, ClientError) as exc:
                self._failures.log(logging.WARNING, "password parameter sets not re-read or recorded, keeping "
                                   "the %d known: %s", len(self._hasher.known_sets()), type(exc).__name__)

    def _learn(self, records: Iterable[RecordedSet]) -> None:
        new = self._hasher.learn(record.parameters for record in records)
        known = self._hasher.known_sets()
        if new and len(known) > MANY_SETS:
            log.warning("every password check verifies %d Argon2id parameter sets (%s): `citylogin "
                        "password-parameters retire` removes those no stored hash uses", len(known),
                        "; ".join(map(key_of, known)))

    def record_met(self, parameters: Argon2Parameters) -> None:
        """The hasher met a stored hash of a set it did not know (imported, or recorded since the
        last read): recorded and learnt on a thread of its own, off the request path."""
        if not acceptable(parameters):
            log.warning("Argon2id parameters %s beyond what the settings accept: not verified on every check",
                        key_of(parameters))
            return
        thread = threading.Thread(target=self._meet, args=(parameters,), name=THREAD_NAME, daemon=True)
        self._meetings.append(thread)
        thread.start()

    def _meet(self, parameters: Argon2Parameters) -> None:
        try:
            self._store.record_met(parameters, now=int(self._clock()))
        except (BotoCoreError, ClientError) as exc:
            self._failures.log(logging.WARNING, "Argon2id parameters %s not recorded (learnt by this process "
                               "only): %s", key_of(parameters), type(exc).__name__)
        else:
            log.warning("Argon2id parameters %s met in a stored hash are recorded: every process verifies "
                        "them from its next reload", key_of(parameters))
        self._hasher.learn([parameters])

    def settle(self, timeout: float = 30.0) -> None:
        """Wait for the sets met so far to be recorded and learnt (tests, an orderly stop)."""
        for thread in list(self._meetings):
            thread.join(timeout)


class PasswordsAndRingRefresher(KeyRingRefresher):
    """The key ring's refresher, whose thread also re-reads the password parameter records."""

    def __init__(self, *, passwords: PasswordParameters, **ring: Any) -> None:
        super().__init__(**ring)
        self.passwords = passwords

    def refresh(self) -> None:
        try:
            super().refresh()
        finally:
            self.passwords.refresh()


# --- retiring a set --------------------------------------------------------------------------

RETIRED, CURRENT, HASHES_LEFT, RECENTLY_USED = "retired", "current", "hashes left", "recently used"


@dataclass(frozen=True)
class Retirement:
    """What `retire_unused` did with one recorded set, and how many stored hashes it made."""

    record: RecordedSet
    hashes: int
    outcome: str  # RETIRED, CURRENT, HASHES_LEFT or RECENTLY_USED


def retire_unused(store: PasswordParameterStore, *, count_hashes: Callable[[], Mapping[Argon2Parameters, int]],
                  current: Argon2Parameters, now: int) -> list[Retirement]:
    """Remove the record of every set that no stored hash uses, other than `current` and those a
    process recorded less than RETIRE_AFTER_SECONDS ago. The records are read before the hashes are
    counted (`count_hashes`, a strongly consistent scan), and each removal is conditional on
    `last_used` being still that old: a process that starts hashing with a set meanwhile records it
    first, which keeps it, and any hash of a set made before the count is counted."""
    used_before = now - RETIRE_AFTER_SECONDS
    records = store.load()
    counts = count_hashes()
    done = []
    for record in records:
        hashes = counts.get(record.parameters, 0)
        if record.parameters == current:
            outcome = CURRENT
        elif hashes:
            outcome = HASHES_LEFT
        elif record.last_used >= used_before or not store.remove(record.parameters, used_before=used_before):
            outcome = RECENTLY_USED
        else:
            outcome = RETIRED
        done.append(Retirement(record, hashes, outcome))
    return done


def record_found(store: PasswordParameterStore, *, counts: Mapping[Argon2Parameters, int],
                 now: int) -> list[Argon2Parameters]:
    """Record every set that stored hashes use (`counts`) and no process recorded: hashes made before
    the sets were recorded, or imported; the sets recorded."""
    recorded = {record.parameters for record in store.load()}
    found = [parameters for parameters in counts if parameters not in recorded and acceptable(parameters)]
    for parameters in found:
        store.record_met(parameters, now=now)
    return found
