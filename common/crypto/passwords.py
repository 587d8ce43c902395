"""Password hashing with Argon2id: the hasher, bounded per process by common.crypto.hash_slots, and the
parameters a stored hash was made with."""
from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable, Mapping, Sequence

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from common.crypto import imported_hashes
from common.crypto.hash_slots import QUEUE_PER_SLOT, HashSlots, available_cores
from common.crypto.tokens import new_token

log = logging.getLogger(__name__)


Argon2Parameters = tuple[int, int, int]  # (time_cost, memory_cost KiB, parallelism)

# How a stored hash brought by an import (SPEC §17) begins: this prefix, then the source's hash in its
# canonical PHC or modular-crypt form (common.crypto.imported_hashes). Never one of citylogin's own, so
# nothing but the import's own verifier reads it, and the first successful check replaces it.
IMPORTED_PREFIX = "imported:"


def is_imported(stored_hash: str) -> bool:
    """True for a hash an import stored, which the first successful password check replaces."""
    return stored_hash.startswith(IMPORTED_PREFIX)


def hash_parameters(stored_hash: str) -> Argon2Parameters | None:
    """The Argon2 parameters a stored hash was made with; None if it is not an Argon2 hash."""
    try:
        found = argon2.extract_parameters(stored_hash)
    except InvalidHashError:
        return None
    return found.time_cost, found.memory_cost, found.parallelism


def _dummy_hash(parameters: Argon2Parameters) -> str:
    t, m, p = parameters
    return argon2.PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, type=argon2.Type.ID).hash(new_token())


class PasswordHasher:
    """Argon2id password hashing with the parameters from config; every hash and verify runs in
    one of `slots` (common/crypto/hash_slots.py), so a burst queues or is refused instead of thrashing.

    Hashes made with earlier parameters (until every such account has logged in again) verify more
    slowly or quickly than current ones, so `check` makes every password check verify once per
    parameter set in use: the stored hash for its own set, a dummy for each other. An unknown user,
    a current hash and an older one then cost the same. The sets in use are the current one,
    `legacy` and those `learn` adds (common.keys.password_parameters: the sets the deployment has hashed
    with); a hash of a set not among them calls `on_unknown_set` once per set, from the check.

    A hash an import brought (IMPORTED_PREFIX, SPEC §17) is verified by its own scheme
    (common.crypto.imported_hashes) the same way: every check also verifies a dummy of each imported
    scheme key in use (`learn_imported`: the keys the imports recorded, common.keys.imported_schemes),
    the stored hash taking its own key's turn, so that an imported account is not told apart either."""

    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int, slots: HashSlots | None = None,
                 legacy: Sequence[Argon2Parameters] = (),
                 on_unknown_set: Callable[[Argon2Parameters], None] | None = None):
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self.parameters: Argon2Parameters = (time_cost, memory_cost, parallelism)
        self._slots = slots or HashSlots(slots=available_cores(), queue=QUEUE_PER_SLOT * available_cores())
        # One dummy hash per parameter set in use, current first: what a check pays for the sets
        # the stored hash was not made with (for an unknown user, all of them). Replaced whole by
        # `learn`, never changed in place: a check iterates the dict it took.
        self._dummies: dict[Argon2Parameters, str] = {}
        self._learning = threading.Lock()
        self.learn([self.parameters, *legacy])
        self._unknown_seen: set[Argon2Parameters] = set()
        self.on_unknown_set = on_unknown_set
        # One dummy per imported scheme key in use (scheme key -> canonical hash), replaced whole as above.
        self._imported: dict[str, str] = {}
        self._unknown_keys_seen: set[str] = set()
        self._refused_keys: set[str] = set()
        # Called once per imported scheme key met in a stored hash and not known (common.keys.imported_schemes
        # reads the record again, off the request path, rather than at the next reload).
        self.on_unknown_key: Callable[[str], None] | None = None

    def known_sets(self) -> list[Argon2Parameters]:
        """The parameter sets every check verifies once, current first."""
        return list(self._dummies)

    def learn(self, sets: Iterable[Argon2Parameters]) -> list[Argon2Parameters]:
        """Make every later check verify a dummy of each of `sets` too; returns those that were new.
        One hash each, outside the slots: call it at start or from a background thread."""
        with self._learning:
            new = [parameters for parameters in dict.fromkeys(sets) if parameters not in self._dummies]
            if new:
                self._dummies = {**self._dummies, **{parameters: _dummy_hash(parameters) for parameters in new}}
        return new

    def imported_keys(self) -> list[str]:
        """The imported scheme keys every check verifies once, in the order it does."""
        return list(self._imported)

    def learn_imported(self, keys: Iterable[str]) -> list[str]:
        """Make every later check verify a dummy of each imported scheme key of `keys` too (a key beyond
        the bounds is left out: imported_hashes.InvalidHash); returns those that were new. A bcrypt dummy
        is hashed once here: call it at start or from a background thread."""
        with self._learning:
            dummies = {}
            for key in dict.fromkeys(keys):
                if key not in self._imported and key not in self._refused_keys:
                    try:
                        dummies[key] = imported_hashes.dummy_hash(key)
                    except ValueError:
                        self._refused_keys.add(key)  # reported once per process, not once per reload
                        log.error("imported password scheme %r is beyond citylogin's bounds and not verified",
                                  str(key)[:40])
            if dummies:
                self._imported = {**self._imported, **dummies}
        return list(dummies)

    def hash(self, password: str) -> str:
        """Return the encoded Argon2id hash of ``password`` (random salt)."""
        return self._slots.run(lambda: self._hasher.hash(password))

    def verify(self, stored_hash: str, password: str) -> bool:
        """True if ``password`` matches ``stored_hash``; False on mismatch or an unusable hash."""
        return self._slots.run(lambda: self._verified(stored_hash, password))

    def _verified(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        # UnicodeEncodeError: a hash is ASCII, so anything else is not one of ours.
        except (VerificationError, InvalidHashError, UnicodeEncodeError):
            return False

    def check(self, stored_hash: str | None, password: str) -> bool:
        """``verify`` for a password check that must not tell by its time whether the user exists
        (``stored_hash`` None), which parameters made the hash or whether an import brought it: one
        verify per parameter set in use, then one per imported scheme key in use."""
        imported = stored_hash[len(IMPORTED_PREFIX):] if stored_hash and is_imported(stored_hash) else None
        native_match = self._check_native(None if imported is not None else stored_hash, password)
        imported_match = self._check_imported(imported, password)
        return native_match or imported_match

    def _check_native(self, stored_hash: str | None, password: str) -> bool:
        dummies = self._dummies
        own = self._parameters(stored_hash, dummies) if stored_hash else None
        # The sets in one order whatever the user: the stored hash takes its own set's turn, so that
        # the same sizes of memory are taken and given back in the same order for every name.
        matched = self.verify(stored_hash, password) if stored_hash and own not in dummies else False
        for parameters, dummy in dummies.items():
            if parameters == own and stored_hash:
                matched = self.verify(stored_hash, password)
            else:
                self.verify(dummy, password)
        return matched

    def _check_imported(self, canonical: str | None, password: str) -> bool:
        """The imported keys in one order whatever the user, the stored hash at its key's turn."""
        dummies = self._imported
        own = self._imported_key(canonical, dummies) if canonical is not None else None
        matched = False
        if canonical is not None and own not in dummies:
            matched = self._slots.run(lambda: imported_hashes.verify(canonical, password))
        for key, dummy in dummies.items():
            if key == own and canonical is not None:
                matched = self._slots.run(lambda: imported_hashes.verify(canonical, password))
            else:
                self._slots.run(lambda: imported_hashes.verify(dummy, password))  # noqa: B023 - run at once
        return matched

    def _imported_key(self, canonical: str, known: Mapping[str, str]) -> str | None:
        try:
            key = imported_hashes.scheme_key(canonical)
        except ValueError:
            return None  # not a hash: its verify is False at once
        if key not in known and key not in self._unknown_keys_seen:
            self._unknown_keys_seen.add(key)  # once per process and key
            log.warning("a stored password hash is of imported scheme %s that this process did not know: until "
                        "it does, a failed check of such a hash takes longer than one of an unknown name", key)
            if self.on_unknown_key is not None:
                self.on_unknown_key(key)
        return key

    def _parameters(self, stored_hash: str, known: Mapping[Argon2Parameters, str]) -> Argon2Parameters | None:
        parameters = hash_parameters(stored_hash)
        if parameters is None or parameters in known or parameters in self._unknown_seen:
            return parameters
        self._unknown_seen.add(parameters)  # once per process and set
        log.warning("a stored password hash has Argon2id parameters t=%d,m=%d,p=%d that this process did not "
                    "know: until it does, a failed check of such a hash takes longer than one of an unknown name",
                    *parameters)
        if self.on_unknown_set is not None:
            self.on_unknown_set(parameters)
        return parameters

    def needs_rehash(self, stored_hash: str) -> bool:
        """True if ``stored_hash`` was made with other parameters (or cannot be parsed)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True
