"""An app's public keys at its jwks_uri (RFC 7591 §2; SPEC §14): fetched when first needed, kept per process,
fetched again when they are old or a signature names a key id they lack (the app rotated its key), at most
once every few seconds per app.

What is fetched: one GET of the registered URL (https, or http on the loopback host: oidc.client_urls), no
redirect followed, no compression asked for, at most MAX_BYTES read within the timeout in all; the answer is
only ever read as a JWK Set of public keys (oidc.client_keys), never shown to anyone. The URL is the
registrant's, so the operator decides who may register (initial access tokens; open registration is off)."""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import requests
import urllib3
from joserfc.jwk import KeySet

from common.log_bursts import BurstLog

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024
# Keys fetched before stay usable this many times their cache period while the app's URL fails (an outage of
# the app's server does not lock its sign-ins out at once), never longer.
STALE_FACTOR = 12
MAX_ENTRIES = 10_000


class KeysUnavailable(Exception):
    """The app's keys could not be fetched or read; `reason` says why (never the answer's content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fetch_key_set(uri: str, *, timeout: float, problem_of: Callable[[str], str | None]) -> KeySet:
    """The JWK Set at `uri`, checked by `problem_of` (oidc.client_keys.public_jwks_problem); KeysUnavailable
    if it does not come within `timeout` seconds in all, or is larger than MAX_BYTES, or is none."""
    deadline = time.monotonic() + timeout
    try:
        with requests.get(uri, timeout=(timeout, timeout), stream=True, allow_redirects=False,
                          headers={"Accept": "application/jwk-set+json, application/json",
                                   "Accept-Encoding": "identity"}) as response:
            if response.status_code != 200:
                raise KeysUnavailable(f"answered {response.status_code}")
            body = _bounded_body(response, deadline)
    except (requests.RequestException, urllib3.exceptions.HTTPError) as error:  # the body's reads raise urllib3's
        raise KeysUnavailable(type(error).__name__) from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise KeysUnavailable("not UTF-8") from None
    problem = problem_of(text)
    if problem:
        raise KeysUnavailable(f"not a JWK Set of public keys: {problem}")
    return KeySet.import_key_set(json.loads(text))


def _bounded_body(response: requests.Response, deadline: float) -> bytes:
    """The body read as it arrives (read1: whatever one read brings, so that a server sending a byte at a time
    is cut off at the deadline rather than waited on for each of a chunk's bytes)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise KeysUnavailable(f"larger than {MAX_BYTES} bytes")
    body = bytearray()
    while chunk := response.raw.read1(MAX_BYTES):
        body += chunk
        if len(body) > MAX_BYTES:
            raise KeysUnavailable(f"larger than {MAX_BYTES} bytes")
        if time.monotonic() > deadline:
            raise KeysUnavailable("too slow")
    return bytes(body)


@dataclass
class _Entry:
    keys: KeySet | None = None
    fetched_at: float = float("-inf")   # when `keys` were fetched (monotonic)
    tried_at: float = float("-inf")     # the last fetch, whether it worked
    problem: str | None = None          # why the last fetch failed
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kids(self) -> set[str]:
        return {key.kid for key in self.keys.keys if key.kid} if self.keys else set()


class RemoteKeySets:
    """This process's keys of apps with a jwks_uri, per (client_id, uri)."""

    def __init__(self, *, cache_seconds: float, refetch_seconds: float, timeout: float,
                 problem_of: Callable[[str], str | None], clock: Callable[[], float] = time.monotonic) -> None:
        self.cache_seconds, self.refetch_seconds, self.timeout = cache_seconds, refetch_seconds, timeout
        self.problem_of, self.clock = problem_of, clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._log = BurstLog(log)

    def key_set(self, client_id: str, uri: str, *, kid: str | None = None) -> KeySet:
        """The app's keys: those kept, unless they are older than the cache period or lack `kid` (then fetched
        again, unless a fetch was tried within the refetch period); KeysUnavailable if there are none to use."""
        entry = self._entry(client_id, uri)
        if not self._wanted(entry, kid):
            return self._usable(entry)
        with entry.lock:  # one fetch per app at a time; the others then find its result
            if self._wanted(entry, kid):
                self._fetch(entry, client_id, uri)
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

    def _fetch(self, entry: _Entry, client_id: str, uri: str) -> None:
        """Fetch the keys; `tried_at` is set once the fetch ended, so that a request arriving meanwhile waits for
        its result (entry.lock) instead of finding no keys."""
        try:
            entry.keys = fetch_key_set(uri, timeout=self.timeout, problem_of=self.problem_of)
            entry.fetched_at, entry.problem = self.clock(), None
        except KeysUnavailable as unavailable:
            entry.problem = unavailable.reason
            self._log.log(logging.WARNING, "app %s: its jwks_uri could not be fetched (%s)", client_id,
                          unavailable.reason)
        entry.tried_at = self.clock()

    def _usable(self, entry: _Entry) -> KeySet:
        if entry.keys is not None and self.clock() - entry.fetched_at < self.cache_seconds * STALE_FACTOR:
            return entry.keys
        raise KeysUnavailable(entry.problem or "not fetched")
