"""Sessions bound to their device's key with DPoP (SPEC §12): a request's proof checked against what
it asks for, spent once on every host, and the server's nonce. No Flask: a request's proof arrives
as a ProofOffer (sessions.guard builds it)."""
from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from common.errors import BadRequest, ErrorCode, Unauthorized
from common.crypto import dpop
from common.database.guarded_write import GuardedWrite
from common.database.one_time_tokens import OneTimeTokenStore
from common.keys.ring_reader import RefreshSecrets
from common.runtime.context import AppContext

PROOF_KIND = "dpop_proof"
CHALLENGE_ALGS = " ".join(dpop.ALGORITHMS)
DPOP = "DPoP"  # the Authorization scheme and token_type of a bound token


class InvalidDpopProof(Unauthorized):
    code, detail = ErrorCode.INVALID_DPOP_PROOF, "The DPoP proof is missing or not valid for this request."
    headers = {"WWW-Authenticate": f'DPoP error="invalid_dpop_proof", algs="{CHALLENGE_ALGS}"'}

    def __init__(self, *, reason: str) -> None:  # what is wrong with the proof, in English (RFC 9449's description)
        super().__init__(reason=reason)


class UseDpopNonce(Unauthorized):
    code, detail = ErrorCode.USE_DPOP_NONCE, "Make the DPoP proof again with the server's current DPoP-Nonce."
    headers = {"WWW-Authenticate": f'DPoP error="use_dpop_nonce", algs="{CHALLENGE_ALGS}"'}


class DpopRequired(BadRequest):
    code = ErrorCode.DPOP_REQUIRED
    detail = "This server binds every session to its device: send a DPoP proof made with the device key."


@dataclass(frozen=True)
class ProofOffer:
    """What a request brings for DPoP: its `DPoP` header (None if it has none), its method, and the
    URLs it may be known by (as the server sees it, and under the public address)."""

    proof: str | None
    method: str
    urls: tuple[str, ...]


def current_nonce(secrets: RefreshSecrets, now: int) -> str:
    """The `DPoP-Nonce` every host hands out at `now` (RFC 9449 §8, §9)."""
    kid = secrets.newest_kid()
    secret = secrets.get(kid)
    assert secret is not None  # newest_kid names a secret of the ring
    return dpop.make_nonce(secret=secret, kid=kid, now=now)


def checked_proof(secrets: RefreshSecrets, now: int, offer: ProofOffer | None, *, access_token: str | None = None,
                  jkt: str | None = None) -> dpop.Proof:
    """The offer's proof if it is good for this request (signature, method, URL, ath, the key `jkt`,
    and fresh: an iat within 60 s, or a current nonce); else InvalidDpopProof, or UseDpopNonce for a
    stale nonce or an iat off the server's clock. Not spent yet: the caller spends it (spend_proof or
    proof_spending) once nothing else refuses the request."""
    if offer is None or offer.proof is None:
        raise InvalidDpopProof(reason="this request needs a DPoP header")
    try:
        proof, _key = dpop.read_proof(offer.proof)
        fresh_by_nonce = proof.nonce is not None and dpop.nonce_is_current(
            proof.nonce, secret_of=secrets.get, now=now)
        if proof.nonce is not None and not fresh_by_nonce:
            raise UseDpopNonce()
        dpop.check_proof(proof, method=offer.method, urls=list(offer.urls), now=now, access_token=access_token,
                         jkt=jkt, fresh_by_nonce=fresh_by_nonce)
    except dpop.ProofError as error:
        raise (UseDpopNonce() if error.code == dpop.USE_NONCE else InvalidDpopProof(reason=error.message)) from None
    return proof


def _store(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


def _spent_until(proof: dpop.Proof, *, now: int) -> int:
    # Past this no host accepts the proof anyway: its iat is over 60 s old, and so is its nonce. An
    # iat far ahead (a proof fresh by its nonce) keeps it no longer than its iat could count.
    return min(max(proof.iat, now), now + dpop.MAX_AGE) + dpop.MAX_AGE + 1


def spend_proof(ctx: AppContext, proof: dpop.Proof) -> None:
    """Use the proof up on every host: one conditional write of its (key, jti); InvalidDpopProof if
    some request spent it already (RFC 9449 §11.1)."""
    try:
        _store(ctx).create(digest=dpop.replay_key(proof), kind=PROOF_KIND,
                           expires_epoch=_spent_until(proof, now=ctx.epoch()))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise InvalidDpopProof(reason="this proof was used already") from None
        raise


def proof_spending(ctx: AppContext, proof: dpop.Proof) -> GuardedWrite:
    """spend_proof as an entry of the caller's transaction (a login's): both commit, or neither."""
    item = _store(ctx).create_item(digest=dpop.replay_key(proof), kind=PROOF_KIND,
                                   expires_epoch=_spent_until(proof, now=ctx.epoch()))
    return GuardedWrite(item=item, refusal=lambda: InvalidDpopProof(reason="this proof was used already"))
