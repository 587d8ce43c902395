"""The transmitter's signing keys: its JWKS, fetched once and again on an unknown `kid`, at most
once a second (so that tokens with made-up kids cannot make the guard hammer citylogin). While the last
read failed, an unknown `kid` is no verdict (it may be a new key's, after a rotation): TransmitterUnreachable,
which the guard answers 503 with Retry-After, never 401."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from jwt import PyJWK
from jwt.exceptions import PyJWKError

from citylogin_guard.transport import NetworkNeeded, TransmitterUnreachable

REFETCH_INTERVAL = 1.0


class KeySet:
    """kid -> Ed25519 public key; only the keys of the last JWKS read (a key rotated out is gone)."""

    def __init__(self, fetch: Callable[[], dict[str, Any]]) -> None:
        self._fetch = fetch
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self._loaded = False
        self._failing = False  # the last read failed: the keys held may lack a new one

    def key(self, kid: str, *, may_block: bool = True) -> Any | None:
        """The key named `kid`, or None if the JWKS has none such (read again if allowed). A read under
        way (the feed's first, at a start) is waited for: the keys from before it are not its answer.
        TransmitterUnreachable if the JWKS cannot be read now, or could not at the last try."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        if not may_block:
            # In this order: a read that ends between the two looks leaves its keys for the last one.
            if self._may_refetch() or self._lock.locked():
                raise NetworkNeeded()
            return self._known(kid)
        with self._lock:
            if kid not in self._keys and self._may_refetch():
                self._read()
            return self._known(kid)

    def load(self) -> None:
        """Reads the JWKS if it was never read successfully (the feed does it first, so that the
        first request pays no call)."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._read()

    def _read(self) -> None:
        self._fetched_at = time.monotonic()  # before the call: a failure also waits its second
        self._failing = True                 # until this read has answered
        self._keys = _ed25519_keys(self._fetch())
        self._failing = False
        self._loaded = True

    def _known(self, kid: str) -> Any | None:
        key = self._keys.get(kid)
        if key is None and self._failing:
            raise TransmitterUnreachable("the JWKS could not be read: an unknown kid may be a new key's")
        return key

    def _may_refetch(self) -> bool:
        return time.monotonic() - self._fetched_at >= REFETCH_INTERVAL


def _ed25519_keys(jwks: dict[str, Any]) -> dict[str, Any]:
    """The EdDSA signing keys of a JWKS; any other key is ignored (the algorithm is pinned)."""
    keys = {}
    for jwk in jwks.get("keys") or []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        if not isinstance(jwk.get("kid"), str) or jwk.get("use", "sig") != "sig":
            continue
        try:
            keys[jwk["kid"]] = PyJWK(jwk, algorithm="EdDSA").key
        except PyJWKError:
            continue
    return keys
