"""Which Argon2id parameter sets the stored password hashes may still use, known by the service itself
(SPEC §6: a dormant account's hash of older parameters costs a check what an unknown name costs, with
nothing declared by the operator).

Every set a process hashes with is recorded in the key_ring table (common.keys.password_parameter_store),
sealed under the key-encryption key, at the process's start, before it can hash, and again every
HEARTBEAT_SECONDS while it runs. Every process reads all records at start and once per
CITYLOGIN_KEY_RING_RELOAD_SECONDS (on the key ring's refresher thread) and its PasswordHasher verifies a
dummy of each set of the newest sealed list on every check, whatever it costs (parity comes first),
within the settings and MAX_SETS; one costlier than COST_FACTOR × its own set is reported once as a
WARNING with what it adds to every check and how to retire it. A record put or edited without the
key-encryption key, one beyond the bounds, a deleted one and the like are reported once each as an ERROR
naming the record; none is learnt, none ever fails a check, and a deleted set stays verified (it is
still in the sealed list). A set met in a stored hash and not known (a hash imported from elsewhere) is
recorded then, within the bounds and no costlier than COST_FACTOR × the current set (nobody with the key
vouched for it); `citylogin password-parameters record` records at once every set the stored hashes use
(and seals the previous release's records the operator confirms). `citylogin password-parameters retire`
removes the record of a set that no stored hash uses and no process has hashed with for
RETIRE_AFTER_SECONDS (`retire_unused`); a running process forgets nothing, a process started later does
not pay for it."""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from common.log_bursts import BurstLog
from common.thread_kind import scheduled_thread
from common.crypto.passwords import Argon2Parameters, PasswordHasher
from common.keys.imported_schemes import ImportedSchemes
from common.keys.password_parameter_store import (BEYOND_SETTINGS, LoadedSets, PasswordParameterStore, RecordedSet,
                                                  Refusal, SetsMoved, acceptable, beyond_bounds, bounded, costly_note,
                                                  key_of)
from common.keys.ring_refresher import KeyRingRefresher

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 3600.0  # a running process rewrites its set's last_used this often
# A set hashed with this recently may belong to a running process (a day: many missed heartbeats).
RETIRE_AFTER_SECONDS = 86400
MANY_SETS = 4  # more than this and every check verifies that many hashes: worth a warning
# Changes racing: each loser reads the records again and changes on top of the winner, after a pause
# that spreads the next round (at most MAX_SETS sets, so as many rounds settle processes adding each one).
CHANGE_ATTEMPTS = 10
CHANGE_PAUSE_SECONDS = 0.05
THREAD_NAME = "citylogin-password-parameters"
COSTLY = "costly"  # a set verified that costs more than COST_FACTOR × the process's own: warned once


# --- adding sets ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Added:
    """What `add_sets` did: the records as they stand after it, and the sets it refused."""

    loaded: LoadedSets
    refused: list[Refusal] = field(default_factory=list)


def add_sets(store: PasswordParameterStore, wanted: Iterable[Argon2Parameters], *, current: Argon2Parameters,
             now: int, rewrite: bool = False, costly: bool = True) -> Added:
    """Record each of `wanted` that has no sealed record (a new set, or a listed one whose record was
    lost or is unsealed) in one change, unless it is beyond the bounds of a process of `current` (without
    `costly`, a set costlier than COST_FACTOR × `current` is too); with `rewrite`, also when none is
    missing but a listed record or the manifest was lost."""
    for _ in range(CHANGE_ATTEMPTS):
        loaded = store.load()
        adding, refused = _addable(loaded, list(dict.fromkeys(wanted)), current=current, costly=costly)
        if not adding and not (rewrite and loaded.needs_rewrite()):
            return Added(loaded, refused)
        try:
            store.change(loaded, loaded.listed.changed(add=adding), now=now)
        except SetsMoved:
            _pause()
            continue
        return Added(store.load(), refused)
    raise SetsMoved(f"the password parameter records in {store.table} kept changing during {CHANGE_ATTEMPTS} "
                    "attempts: try again")


def _pause() -> None:
    time.sleep(random.uniform(0, CHANGE_PAUSE_SECONDS))  # noqa: S311 - a spread in time, not a secret


def _addable(loaded: LoadedSets, wanted: list[Argon2Parameters], *, current: Argon2Parameters, costly: bool
             ) -> tuple[list[Argon2Parameters], list[Refusal]]:
    """The sets of `wanted` to write (a listed one whose record is lost is written again, whatever
    the bounds: the sealed list vouches for it), and a Refusal for each beyond the bounds."""
    adding, refused, known = [], [], set(loaded.listed.sets) | {current}
    for parameters in wanted:
        if parameters in loaded.records:
            continue
        refusal = None if parameters in loaded.listed.sets else beyond_bounds(
            parameters, current=current, count=len(known - {parameters}), costly=costly)
        if refusal is None:
            adding.append(parameters)
            known.add(parameters)
        else:
            refused.append(refusal)
    return adding, refused


# --- what one process knows ------------------------------------------------------------------

class PasswordParameters:
    """This process's part: records the set its hasher hashes with, and teaches the hasher every set
    of the newest sealed list within its bounds. Each refusal is one ERROR per process. At start
    DynamoDB's errors propagate (the start stops, as for the key ring); later a failed read or record
    keeps what was known, with one warning per burst."""

    def __init__(self, store: PasswordParameterStore, hasher: PasswordHasher, *, reload_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._store, self._hasher, self._reload_seconds, self._clock = store, hasher, reload_seconds, clock
        self._lock = threading.Lock()
        self._read_at = self._recorded_at = float("-inf")
        self._failures = BurstLog(log)
        self._reported: set[tuple[str, str]] = set()
        self._meetings: list[threading.Thread] = []
        # The imported scheme keys (SPEC §17), re-read with the sets on the same thread and schedule.
        self.imported: ImportedSchemes | None = None

    def start(self, store: PasswordParameterStore | None = None) -> None:
        """Record this process's set and learn every recorded one, through `store` (a start's client)."""
        self._record_own(store or self._store)

    def refresh(self, *, max_age: float | None = None) -> None:
        """Re-read the records unless they were read less than `max_age` seconds ago (default: the
        reload interval), and record this process's set again once a heartbeat is due."""
        max_age = self._reload_seconds if max_age is None else max_age
        with self._lock:
            try:
                if self._clock() - self._recorded_at >= HEARTBEAT_SECONDS:
                    self._record_own(self._store)
                elif time.monotonic() - self._read_at >= max_age:
                    started = time.monotonic()
                    self._install(self._store.load())
                    self._read_at = started
            except (BotoCoreError, ClientError, SetsMoved) as exc:
                self._failures.log(logging.WARNING, "password parameter sets not re-read or recorded, keeping "
                                   "the %d known: %s", len(self._hasher.known_sets()), type(exc).__name__)
        if self.imported is not None:
            self.imported.refresh(max_age=max_age)

    def _record_own(self, store: PasswordParameterStore) -> None:
        """The process's own set sealed in the list (it is the process's own setting: no record has to
        vouch for it) and its last use moved forward; then every listed set learnt."""
        started, now = time.monotonic(), self._clock()
        own = self._hasher.parameters
        added = add_sets(store, [own], current=own, now=int(now))
        if own in added.loaded.records:
            store.touch(own, now=int(now))
        self._recorded_at = now
        self._install(added.loaded, refused=added.refused)
        self._read_at = started

    def _install(self, loaded: LoadedSets, *, refused: Iterable[Refusal] = ()) -> None:
        kept, beyond = bounded(loaded.listed.sets, current=self._hasher.parameters)
        self._report([*loaded.refused, *refused, *beyond])
        new = self._hasher.learn(kept)
        self._warn_costly(kept)
        known = self._hasher.known_sets()
        if new and len(known) > MANY_SETS:
            log.warning("every password check verifies %d Argon2id parameter sets (%s): `citylogin "
                        "password-parameters retire` removes those no stored hash uses", len(known),
                        "; ".join(map(key_of, known)))

    def _warn_costly(self, kept: Iterable[Argon2Parameters]) -> None:
        """One WARNING per costly set verified, for the life of the process, not one per read."""
        for parameters in kept:
            note = costly_note(parameters, current=self._hasher.parameters)
            if note is not None and (key_of(parameters), COSTLY) not in self._reported:
                self._reported.add((key_of(parameters), COSTLY))
                log.warning("%s", note)

    def _report(self, refusals: Iterable[Refusal]) -> None:
        """One ERROR per record and reason for the life of the process, not one per read."""
        for refusal in refusals:
            if (refusal.name, refusal.reason) not in self._reported:
                self._reported.add((refusal.name, refusal.reason))
                log.error("%s", refusal.message(self._store.table))

    def record_met(self, parameters: Argon2Parameters) -> None:
        """The hasher met a stored hash of a set it did not know (imported, or recorded since the
        last read): recorded and learnt on a thread of its own, off the request path, within the bounds."""
        if not acceptable(parameters):  # once per set: the hasher calls this once per set it did not know
            self._report([Refusal(key_of(parameters), BEYOND_SETTINGS)])
            return
        thread = threading.Thread(target=self._meet, args=(parameters,), name=THREAD_NAME, daemon=True)
        self._meetings.append(thread)
        thread.start()

    def _meet(self, parameters: Argon2Parameters) -> None:
        scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
        own = self._hasher.parameters
        try:
            added = add_sets(self._store, [parameters], current=own, now=int(self._clock()), costly=False)
        except (BotoCoreError, ClientError, SetsMoved) as exc:
            self._failures.log(logging.WARNING, "Argon2id parameters %s not recorded: %s", key_of(parameters),
                               type(exc).__name__)
            if beyond_bounds(parameters, current=own, count=len(self._hasher.known_sets()), costly=False) is None:
                self._hasher.learn([parameters])  # by this process only, until a record says so
            return
        if parameters in added.loaded.records:
            log.warning("Argon2id parameters %s met in a stored hash are recorded: every process verifies "
                        "them from its next reload", key_of(parameters))
        with self._lock:
            self._install(added.loaded, refused=added.refused)

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
    sealed: bool = True  # False: a record with no seal (the previous release's), which no process verifies


def retire_unused(store: PasswordParameterStore, *, count_hashes: Callable[[], Mapping[Argon2Parameters, int]],
                  current: Argon2Parameters, now: int) -> list[Retirement]:
    """Remove the record of every set that no stored hash uses, other than `current` and those a
    process recorded less than RETIRE_AFTER_SECONDS ago: from the sealed list (one change each), or,
    for an unsealed record, the record alone. The records are read before the hashes are counted
    (`count_hashes`, a strongly consistent scan), and each removal is conditional on `last_used` being
    still that old: a process that starts hashing with a set meanwhile records it first, which keeps
    it, and any hash of a set made before the count is counted."""
    used_before = now - RETIRE_AFTER_SECONDS
    loaded = store.load()
    counts = count_hashes()
    done = []
    for parameters in sorted(loaded.listed.sets | set(loaded.unsealed)):
        listed = parameters in loaded.listed.sets
        record = loaded.records.get(parameters) or loaded.unsealed.get(parameters) or RecordedSet(parameters, 0, 0)
        hashes = counts.get(parameters, 0)
        if parameters == current:
            outcome = CURRENT
        elif hashes:
            outcome = HASHES_LEFT
        elif record.last_used >= used_before or not _remove(store, parameters, listed=listed,
                                                            used_before=used_before, now=now):
            outcome = RECENTLY_USED
        else:
            outcome = RETIRED
        done.append(Retirement(record, hashes, outcome, sealed=listed))
    return done


def _remove(store: PasswordParameterStore, parameters: Argon2Parameters, *, listed: bool, used_before: int,
            now: int) -> bool:
    """One set's removal, on top of whatever changed since the records were read; False if a process
    recorded it at `used_before` or later."""
    if not listed:
        return store.remove_unsealed(parameters, used_before=used_before)
    for _ in range(CHANGE_ATTEMPTS):
        loaded = store.load()
        if parameters not in loaded.listed.sets:
            return True  # another retire removed it meanwhile
        try:
            return store.change(loaded, loaded.listed.changed(remove=[parameters]), now=now, retiring=parameters,
                                used_before=used_before)
        except SetsMoved:
            _pause()
            continue
    raise SetsMoved(f"the password parameter records in {store.table} kept changing during {CHANGE_ATTEMPTS} "
                    "attempts: try again")


@dataclass(frozen=True)
class Recording:
    """What `record_found` did: the sets it recorded (or sealed), those it refused, and the previous
    release's unsealed records that no stored hash uses and the operator did not confirm."""

    recorded: list[Argon2Parameters]
    refused: list[Refusal]
    left_unsealed: list[RecordedSet]
    loaded: LoadedSets


def record_found(store: PasswordParameterStore, *, counts: Mapping[Argon2Parameters, int],
                 current: Argon2Parameters, now: int,
                 confirm: Callable[[list[RecordedSet]], bool] = lambda unsealed: False) -> Recording:
    """Record, sealed, within the bounds of a process of `current`: `current`, every set that stored
    hashes use (`counts`) and no sealed record lists (hashes made before the sets were recorded, or
    imported), and the unsealed records no stored hash uses if `confirm` (asked with them) says so.
    A listed record or manifest that was lost is written again."""
    before = store.load()
    unbacked = [record for parameters, record in sorted(before.unsealed.items())
                if parameters not in before.listed.sets and parameters not in counts and parameters != current]
    confirmed = unbacked if unbacked and confirm(unbacked) else []
    wanted = [current, *sorted(counts), *(record.parameters for record in confirmed)]
    added = add_sets(store, wanted, current=current, now=now, rewrite=True)
    recorded = [parameters for parameters in dict.fromkeys(wanted)
                if parameters in added.loaded.records and parameters not in before.records]
    return Recording(recorded, added.refused, [record for record in unbacked if record not in confirmed],
                     added.loaded)
