"""A bound token's DPoP proof (SPEC §12) checked against the request it comes with, and spent once:
the URLs a request may be known by (as the app sees it, or under its public address), the checks
of citylogin_guard.dpop as refusals, and the replay store."""
from __future__ import annotations

import time
from typing import Sequence
from urllib.parse import urlsplit

from citylogin_guard import dpop
from citylogin_guard.errors import Code, Unauthorized
from citylogin_guard.replay import MemoryReplayStore, ReplayStore


def invalid_proof(reason: str) -> Unauthorized:
    return Unauthorized(Code.INVALID_DPOP_PROOF, f"The DPoP proof is missing or not valid for this request: {reason}.")


class ProofChecker:
    """`public_urls`: the app's public base URLs (scheme, host, port, a path prefix a proxy strips);
    when given, a proof's htu must be one of them followed by the request's path, whatever Host and
    scheme the app sees. Without them, the request's own URL (Host header and scheme) counts."""

    def __init__(self, *, public_urls: Sequence[str] = (), replay_store: ReplayStore | None = None) -> None:
        self._bases = [_public_base(url) for url in public_urls]
        self.replay_store: ReplayStore = replay_store if replay_store is not None else MemoryReplayStore()
        # an app's own store may do I/O (Redis): under ASGI it is called from a worker thread
        self.spends_in_process = replay_store is None

    def checked(self, dpop_header: str | None, *, access_token: str, jkt: str, method: str | None,
                url: str | None) -> dpop.Proof:
        """The request's proof if it is good for this request and token; else invalid_dpop_proof.
        Not spent yet: spend() it once nothing else refuses the request."""
        if not dpop_header:
            raise invalid_proof("this request needs a DPoP header")
        if not (method and url):
            raise invalid_proof("the app did not say which method and URL the request has")
        try:
            proof = dpop.read_proof(dpop_header)
            dpop.check_proof(proof, method=method, urls=self.request_urls(url), now=time.time(),
                             access_token=access_token, jkt=jkt)
        except dpop.ProofError as error:
            raise invalid_proof(str(error)) from None
        return proof

    def request_urls(self, url: str) -> set[str]:
        """The normalized URLs the request to `url` (as the app sees it) may be known by."""
        if not self._bases:
            own = dpop.normalized_url(url)
            return {own} if own else set()
        path = urlsplit(url).path
        return {normalized for base in self._bases if (normalized := dpop.normalized_url(base + path))}

    def spend(self, proof: dpop.Proof) -> None:
        """Uses the proof up (RFC 9449 §11.1) until no host would take it anyway (its iat + 60 s);
        invalid_dpop_proof if it was spent already."""
        ttl = max(1, int(proof.iat + dpop.MAX_AGE + 1 - time.time()))
        if not self.replay_store.spend(dpop.replay_key(proof), ttl):
            raise invalid_proof("this proof was used already")


def _public_base(url: str) -> str:
    """scheme://host[:port][/prefix] of a public base URL, normalized, without a trailing slash."""
    normalized = dpop.normalized_url(url)
    if normalized is None or "?" in url or "#" in url:
        raise ValueError(f"a public URL is http(s)://host[:port][/path], not {url!r}")
    return normalized.rstrip("/")
