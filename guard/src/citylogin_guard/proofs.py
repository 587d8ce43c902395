"""A bound token's DPoP proof (SPEC §12) checked against the request it comes with, and spent once:
the URLs a request may be known by (as the app sees it, or under its public address), the checks
of citylogin_guard.dpop as refusals, the guard's nonces, and the replay store."""
from __future__ import annotations

import time
from typing import Sequence
from urllib.parse import urlsplit

from citylogin_guard import dpop
from citylogin_guard.errors import Code, Unauthorized
from citylogin_guard.nonces import DpopNonces
from citylogin_guard.replay import MemoryReplayStore, ReplayStore


def invalid_proof(reason: str) -> Unauthorized:
    return Unauthorized(Code.INVALID_DPOP_PROOF, f"The DPoP proof is missing or not valid for this request: {reason}.")


class ProofChecker:
    """`public_urls`: the app's public base URLs (scheme, host, port, a path prefix a proxy strips);
    when given, a proof's htu must be one of them followed by the request's path, whatever Host and
    scheme the app sees. Without them, the request's own URL (Host header and scheme) counts.
    `nonces`: the guard's DPoP nonces (default: under a secret of this process's own); a proof whose
    iat is off this host's clock counts when it is over a current one (RFC 9449 §8, §9), and with
    `require_nonce` every proof must be."""

    def __init__(self, *, public_urls: Sequence[str] = (), replay_store: ReplayStore | None = None,
                 nonces: DpopNonces | None = None, require_nonce: bool = False) -> None:
        self._bases = [_public_base(url) for url in public_urls]
        self.replay_store: ReplayStore = replay_store if replay_store is not None else MemoryReplayStore()
        # an app's own store may do I/O (Redis): under ASGI it is called from a worker thread
        self.spends_in_process = replay_store is None
        self.nonces = nonces if nonces is not None else DpopNonces()
        self.require_nonce = require_nonce

    def checked(self, dpop_header: str | None, *, access_token: str, jkt: str, method: str | None,
                url: str | None) -> dpop.Proof:
        """The request's proof if it is good for this request and token; else invalid_dpop_proof,
        or use_dpop_nonce (with a fresh nonce) when only the guard's current nonce is missing: the
        proof's iat is off this host's clock, its nonce of the guard's is stale, or the app requires
        one. A nonce the guard did not make (citylogin's) is none of its business. Not spent yet:
        spend() it once nothing else refuses the request."""
        if not dpop_header:
            raise invalid_proof("this request needs a DPoP header")
        if not (method and url):
            raise invalid_proof("the app did not say which method and URL the request has")
        now = time.time()
        try:
            proof = dpop.read_proof(dpop_header)
            left = self.nonces.seconds_left(proof.nonce, now)
            fresh_by_nonce = left is not None and left > 0
            dpop.check_proof(proof, method=method, urls=self.request_urls(url), now=now,
                             access_token=access_token, jkt=jkt, fresh_by_nonce=fresh_by_nonce)
        except dpop.NotFresh as error:
            raise self.use_nonce(str(error)) from None
        except dpop.ProofError as error:
            raise invalid_proof(str(error)) from None
        # A stale nonce of the guard's bounds the proof's age whatever its iat says: refused, so that
        # its replay store need keep a proof only while its nonce is current.
        if left is not None and not fresh_by_nonce:
            raise self.use_nonce("the proof's DPoP-Nonce is no longer current")
        if self.require_nonce and not fresh_by_nonce:
            raise self.use_nonce("this app wants its current DPoP-Nonce in every proof")
        return proof

    def use_nonce(self, reason: str) -> Unauthorized:
        """use_dpop_nonce with the nonce to make the proof over again (RFC 9449 §9)."""
        return Unauthorized(Code.USE_DPOP_NONCE, f"Make the DPoP proof again with this answer's DPoP-Nonce: {reason}.",
                            dpop_nonce=self.nonces.current())

    def request_urls(self, url: str) -> set[str]:
        """The normalized URLs the request to `url` (as the app sees it) may be known by."""
        if not self._bases:
            own = dpop.normalized_url(url)
            return {own} if own else set()
        path = urlsplit(url).path
        return {normalized for base in self._bases if (normalized := dpop.normalized_url(base + path))}

    def spend(self, proof: dpop.Proof, *, expires_at: float | None = None) -> None:
        """Uses the proof up (RFC 9449 §11.1) until no host would take it anyway: while its nonce is
        current and while its iat is within 60 s of the clock (a proof dated ahead, taken by its
        nonce, would pass by its iat later should the secret change), but not past `expires_at`,
        when its token expires; invalid_dpop_proof if it was spent already."""
        now = time.time()
        until = max(self.nonces.seconds_left(proof.nonce, now) or 0, proof.iat + dpop.MAX_AGE - now)
        if expires_at is not None:
            until = min(until, expires_at - now)
        ttl = max(1, int(until + 1))
        if not self.replay_store.spend(dpop.replay_key(proof), ttl):
            raise invalid_proof("this proof was used already")


def _public_base(url: str) -> str:
    """scheme://host[:port][/prefix] of a public base URL, normalized, without a trailing slash."""
    normalized = dpop.normalized_url(url)
    if normalized is None or "?" in url or "#" in url:
        raise ValueError(f"a public URL is http(s)://host[:port][/path], not {url!r}")
    return normalized.rstrip("/")
