"""DPoP for apps (RFC 9449, SPEC §14 by §12's rules): a token request that carries a DPoP proof binds
the app's tokens to that key — the access token gets `cnf.jkt` and goes as `Authorization: DPoP`, the
refresh token counts only with a proof by the same key. A code can be bound before it exists: by
`dpop_jkt` at /oidc/authorize, or by the proof at /oidc/par. Proofs are checked and spent as citylogin's
own (one use on every host, fresh by iat or by the server's DPoP-Nonce). An app added with
--require-dpop gets no token without a proof."""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from contextvars import ContextVar
from typing import Iterator

from authlib.oauth2.rfc6749 import InvalidGrantError, OAuth2Error

from common.crypto.tokens import digests_equal
from oidc.core import refusals
from sessions import binding
from sessions.binding import ProofOffer
from common.runtime.context import AppContext

JKT = re.compile(r"^[A-Za-z0-9_-]{43}$")  # an RFC 7638 SHA-256 thumbprint, base64url


@dataclass(frozen=True)
class ProvenKey:
    """The key a request's DPoP proof proved: its RFC 7638 thumbprint, and the algorithm it signed with."""

    jkt: str
    alg: str


_proven_key: ContextVar[ProvenKey | None] = ContextVar("oidc_dpop_key", default=None)


class InvalidDpopProofError(OAuth2Error):
    error = "invalid_dpop_proof"


class UseDpopNonceError(OAuth2Error):
    error = "use_dpop_nonce"


def proven_key(ctx: AppContext, offer: ProofOffer | None) -> ProvenKey | None:
    """The key the request's DPoP proof proves, the proof checked and spent; None for a request without
    one. OAuth2Error (invalid_dpop_proof, use_dpop_nonce) for a proof that is not good."""
    if offer is None:
        return None
    try:
        proof = binding.checked_proof(ctx.refresh_secrets, ctx.epoch(), offer)
        binding.spend_proof(ctx, proof)
    except binding.UseDpopNonce:
        raise UseDpopNonceError("Make the DPoP proof again with the server's DPoP-Nonce.") from None
    except binding.InvalidDpopProof as refused:
        raise InvalidDpopProofError(refused.extra.get("reason") or refused.detail) from None
    return ProvenKey(jkt=proof.jkt, alg=proof.alg)


@contextmanager
def proving(key: ProvenKey | None) -> Iterator[None]:
    """While a token request is answered: the key its proof proved (None: no proof)."""
    token = _proven_key.set(key)
    try:
        yield
    finally:
        _proven_key.reset(token)


def request_key(*, bound_to: str | None, required: bool, algorithms: tuple[str, ...] | None = None) -> str | None:
    """The key the tokens of this token request are bound to: the proof's, which must be `bound_to`'s
    when the code or refresh token is bound already, and signed with one of `algorithms` when the app's
    profile names them (None: any citylogin takes); InvalidDpopProofError without a proof where one is
    required or of another algorithm, InvalidGrantError for another key."""
    proven = _proven_key.get()
    if proven is None and (bound_to or required):
        raise InvalidDpopProofError("These tokens are bound to a key: send a DPoP proof made with it.")
    check_algorithm(proven, algorithms)
    key = proven.jkt if proven else None
    if bound_to and not (key and digests_equal(bound_to, key)):
        raise InvalidGrantError("This grant is bound to another DPoP key.")
    return key


def check_algorithm(proven: ProvenKey | None, algorithms: tuple[str, ...] | None) -> None:
    """InvalidDpopProofError for a proof signed with an algorithm the app's profile does not take."""
    if proven is not None and algorithms is not None and proven.alg not in algorithms:
        raise refusals.because(InvalidDpopProofError(f"This app's DPoP proofs are signed with "
                                                     f"{', '.join(algorithms)}."), "dpop_algorithm")
