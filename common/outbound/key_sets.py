"""Public keys at a jwks_uri, an app's (RFC 7591 §2; SPEC §14) or an upstream provider's (SPEC §16): fetched
when first needed, kept per process, fetched again when they are old or a signature names a key id they lack
(the owner rotated its key), at most once every few seconds per owner.

What is fetched: one GET of the registered URL by common.outbound (one deadline from connect to last byte,
at most MAX_BYTES, no redirect followed, no compression asked for; public addresses only unless the caller
allows private ones), at most one in flight per URL: a few requests wait for it, the others use the keys kept
or fail at once. The answer is only ever read as a JWK Set of public keys (checked by the caller's
`problem_of`), never shown to anyone; why a fetch failed is logged, never told to the app or the person."""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from common.log_bursts import BurstLogs
from common.outbound.fetch import FetchFailed, fetch
from common.outbound.single_flight import Busy, SingleFlight

MAX_BYTES = 64 * 1024
# Keys fetched before stay usable this many times their cache period while the app's URL fails (an outage of
# the app's server does not lock its sign-ins out at once), never longer.
STALE_FACTOR = 12
MAX_ENTRIES = 10_000
ACCEPT = {"Accept": "application/jwk-set+json, application/json"}
KEY_TYPES = ("RSA", "EC", "OKP")
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
MAX_KEYS = 10
MIN_RSA_BITS = 2048
MAX_JWKS_CHARS = 20000


class KeysUnavailable(Exception):
    """The app's keys could not be fetched or read; `reason` says why (never the answer's content), for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fetch_key_set(uri: str, *, timeout: float, problem_of: Callable[[str], str | None], private_allowed: bool,
                  flights: SingleFlight[bytes] | None = None) -> KeySet:
    """The JWK Set at `uri`, checked by `problem_of` (e.g. oidc.registration.client_keys.public_jwks_problem);
    KeysUnavailable if it does not come within `timeout` seconds in all, is larger than MAX_BYTES, or is none. With
    `flights`, a fetch of the same URL under way is waited for instead of started again."""
    def get() -> bytes:
        answer = fetch(uri, deadline_seconds=timeout, max_bytes=MAX_BYTES, private_allowed=private_allowed,
                       headers=ACCEPT)
        if answer.status != 200:
            raise FetchFailed(f"answered {answer.status}")
        return answer.body
    try:
        body = (flights or SingleFlight()).run((uri, private_allowed), get, wait_seconds=timeout)
    except FetchFailed as failed:
        raise (KeysBusy if isinstance(failed, Busy) else KeysUnavailable)(failed.reason) from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise KeysUnavailable("not UTF-8") from None
    problem = problem_of(text)
    if problem:
        raise KeysUnavailable(f"not a JWK Set of public keys: {problem}")
    return KeySet.import_key_set(json.loads(text))


def public_jwks_problem(text: str, *, max_keys: int = MAX_KEYS, max_chars: int = MAX_JWKS_CHARS) -> str | None:
    """What is wrong with `text` as a JWK Set of public keys (an app's registered one, a provider's), or None:
    a JSON object with 1 to `max_keys` public RSA (2048 bits or more), EC or OKP keys, no private or
    symmetric key among them."""
    if len(text) > max_chars:
        return f"longer than {max_chars} characters"
    try:
        data = json.loads(text)
    except ValueError:
        return "not JSON"
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= max_keys:
        return f'a JWK Set is {{"keys": [...]}} with 1 to {max_keys} keys'
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in KEY_TYPES:
            return f"each key's kty is one of {', '.join(KEY_TYPES)}"
        if any(member in key for member in PRIVATE_MEMBERS):
            return "a key has private members: register only the public keys"
    try:
        imported = KeySet.import_key_set(data)
    except (JoseError, ValueError, TypeError) as error:
        return f"a key does not read: {error}"
    if any(isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS for key in imported.keys):
        return f"an RSA key is shorter than {MIN_RSA_BITS} bits"
    return None


class KeysBusy(KeysUnavailable):
    """The keys are being fetched by other requests, enough of which wait for them already."""


@dataclass
class _Entry:
    keys: KeySet | None = None
    fetched_at: float = float("-inf")   # when `keys` were fetched (monotonic)
    tried_at: float = float("-inf")     # the last fetch, whether it worked
    problem: str | None = None          # why the last fetch failed

    def kids(self) -> set[str]:
        return {key.kid for key in self.keys.keys if key.kid} if self.keys else set()


class RemoteKeySets:
    """This process's keys of owners (apps, upstream providers) with a jwks_uri, per (owner, uri); one fetch
    per URL in flight. A failure is logged to `log` as "<owner_kind> <owner>: its jwks_uri could not be
    fetched (<reason>)", once a burst per owner."""

    def __init__(self, *, cache_seconds: float, refetch_seconds: float, timeout: float,
                 problem_of: Callable[[str], str | None], log: logging.Logger, owner_kind: str = "app",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cache_seconds, self.refetch_seconds, self.timeout = cache_seconds, refetch_seconds, timeout
        self.problem_of, self.clock, self.owner_kind = problem_of, clock, owner_kind
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._log = BurstLogs(log)  # each owner's failures, once a burst
        self._flights: SingleFlight[bytes] = SingleFlight()

    def key_set(self, client_id: str, uri: str, *, private_allowed: bool, kid: str | None = None) -> KeySet:
        """The app's keys: those kept, unless they are older than the cache period or lack `kid` (then fetched
        again, unless a fetch was tried within the refetch period); KeysUnavailable if there are none to use.
        A request that finds the URL's fetch under way waits for it (a few do), or uses what is kept."""
        entry = self._entry(client_id, uri)
        if self._wanted(entry, kid):
            self._fetch(entry, client_id, uri, private_allowed=private_allowed)
        return self._usable(entry)

    def _entry(self, client_id: str, uri: str) -> _Entry:
        with self._lock:
            if len(self._entries) > MAX_ENTRIES:
                self._entries.clear()
            return self._entries.setdefault((client_id, uri), _Entry())

    def _wanted(self, entry: _Entry, kid: str | None) -> bool:
        """Whether to fetch now: the keys are old, or lack `kid`; not if a fetch was tried a moment ago."""
        now = self.clock()
        if now - entry.tried_at < self.refetch_seconds:
            return False
        return entry.keys is None or now - entry.fetched_at >= self.cache_seconds or \
            (kid is not None and kid not in entry.kids())

    def _fetch(self, entry: _Entry, client_id: str, uri: str, *, private_allowed: bool) -> None:
        """Fetch the keys (or share the fetch under way); the reason of a failure goes to the log alone."""
        try:
            entry.keys = fetch_key_set(uri, timeout=self.timeout, problem_of=self.problem_of,
                                       private_allowed=private_allowed, flights=self._flights)
            entry.fetched_at, entry.problem = self.clock(), None
        except KeysBusy:
            return  # the fetch under way records its own outcome
        except KeysUnavailable as unavailable:
            entry.problem = unavailable.reason
            self._log.log(client_id, logging.WARNING, "%s %s: its jwks_uri could not be fetched (%s)",
                          self.owner_kind, client_id, unavailable.reason)
        entry.tried_at = self.clock()

    def _usable(self, entry: _Entry) -> KeySet:
        if entry.keys is not None and self.clock() - entry.fetched_at < self.cache_seconds * STALE_FACTOR:
            return entry.keys
        raise KeysUnavailable(entry.problem or "not fetched")
