"""The guard's own DPoP nonces (RFC 9449 §8, §9): how a device whose clock is off proves a proof
fresh here, as citylogin lets it do at citylogin. A nonce is `<period>.<MAC>`: HMAC-SHA256 over a
30-s period under a secret, so it needs no store and every host of an app that shares the secret
hands out and takes the same one. It is current in its period and the next (30-60 s)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Callable

PERIOD = 30  # seconds; a nonce is current for its period and the next one
MIN_SECRET_BYTES = 16
_MAC_BYTES = 16  # 128 bits of the HMAC: 22 base64url characters
_MAX_NONCE_LENGTH = 64
_CONTEXT = b"citylogin-guard dpop-nonce "  # what the MAC is over besides the period: these nonces alone


class DpopNonces:
    """Makes and reads nonces under one secret (str or bytes, at least 16 bytes). Without one, a
    random secret of this process's own: a nonce from another process is then not taken."""

    def __init__(self, secret: str | bytes | None = None, *, clock: Callable[[], float] = time.time) -> None:
        if secret is None:
            secret = secrets.token_bytes(32)
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(key) < MIN_SECRET_BYTES:
            raise ValueError(f"a DPoP nonce secret is at least {MIN_SECRET_BYTES} bytes")
        self._key = key
        self._clock = clock
        self._made: tuple[int, str] = (-1, "")  # the last nonce made, by period: every answer hands it out

    def current(self) -> str:
        """The nonce to hand out now (the same on every host with this secret)."""
        period = int(self._clock() // PERIOD)
        made_in, nonce = self._made
        if made_in != period:
            nonce = f"{period}.{self._mac(period)}"
            self._made = (period, nonce)
        return nonce

    def seconds_left(self, nonce: str | None, now: float) -> float | None:
        """How long `nonce` stays current from `now`: above 0 while it is, 0 or less once it is
        stale; None if this secret did not make it (absent, forged, another app's or citylogin's)."""
        if not nonce or len(nonce) > _MAX_NONCE_LENGTH:
            return None
        period_text, _, mac = nonce.partition(".")
        if not (period_text.isascii() and period_text.isdigit() and mac.isascii()):
            return None
        period = int(period_text)
        # compare_digest: the MAC is checked in constant time (both sides ASCII)
        if not hmac.compare_digest(mac.encode(), self._mac(period).encode()):
            return None
        if period > now // PERIOD:
            return None  # a period still to come: no host with a sane clock made it
        return (period + 2) * PERIOD - now

    def _mac(self, period: int) -> str:
        digest = hmac.new(self._key, _CONTEXT + str(period).encode(), hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
