"""Access tokens whose signature a key ring verified, so that the same token presented again is not
verified again: a resource server asks about one token many times (userinfo, introspection, every
protected request of a device) until it expires.

What is kept is a pure function of the token's bytes and the ring's keys: that this token's signature
checks out under one of the ring's keys, and its payload. Nothing about the session or grant behind the
token is kept: every request still reads them (revocation stays immediate), and every decode still
checks the claims and the times against its own caller and clock. A token is kept only by its SHA-256
digest (no token in memory longer than its request), only once it verified (a refusal is never kept, so
nobody can fill the cache without valid tokens), and at most `limit` of them, the oldest first out.
Each installed ring has a cache of its own (common.keys.jwt_keys.JwtKeyRing._install): a retired key's tokens
stop verifying at the reload that retires it."""
from __future__ import annotations

import hashlib
import threading

VERIFIED_TOKENS_LIMIT = 4096  # a few MB at most per process: a payload is some 300-600 bytes


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class VerifiedTokens:
    """{token digest: payload bytes} for tokens verified under one installed ring; bounded, oldest out first.
    functools.lru_cache does not fit: it keys on its arguments, which would keep the tokens themselves."""

    def __init__(self, limit: int = VERIFIED_TOKENS_LIMIT) -> None:
        if limit < 1:
            raise ValueError("a cache of verified tokens holds at least one")
        self._limit = limit
        self._payloads: dict[bytes, bytes] = {}
        self._lock = threading.Lock()  # adding and evicting; a lookup is one dict read

    def payload(self, digest: bytes) -> bytes | None:
        """The verified payload of the token with this digest, if it is kept."""
        return self._payloads.get(digest)

    def keep(self, digest: bytes, payload: bytes) -> None:
        with self._lock:
            payloads = self._payloads
            payloads[digest] = payload
            while len(payloads) > self._limit:
                del payloads[next(iter(payloads))]  # dicts keep insertion order: the oldest

    def __len__(self) -> int:
        return len(self._payloads)
