"""Refresh with rotation and reuse detection (SPEC §4, §6): a refresh token is honoured once, its
predecessor within the grace window only, and a reused one ends the session; a bound session's
refresh takes a proof by its key (SPEC §12)."""
from __future__ import annotations

from dataclasses import dataclass, replace

from common.errors import ServiceUnavailable
from common.crypto.dpop import Proof
from common.crypto.tokens import digests_equal, token_digest
from common.database.guarded_write import GuardedWrite
from sessions import binding
from sessions.authentication import end_uncounted
from sessions.binding import ProofOffer
from sessions.context import end_reason, liveness, session_store
from sessions.endings import revoke_session
from sessions.errors import InvalidRefreshToken, RefreshTokenReused, SessionRevoked, ended_error
from sessions.models import RevokeReason, SessionRecord, TokenPair
from sessions.store import Activity
from sessions.tokens import REFRESH_PURPOSE, carried_holder, refresh_token_of, refresh_token_text, token_pair
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext

REFRESH_ATTEMPTS = 5


@dataclass(frozen=True)
class _RefreshToken:
    session_id: str
    generation: int
    kid: str | None
    carried: str | None  # its holder, in a token made since refresh tokens carry it


def _parse_refresh_token(token: str) -> _RefreshToken:
    """A refresh token's parts, in any of its forms (3, 4 or 5 parts); not yet checked."""
    parts = token.split(".")
    if len(parts) not in (3, 4, 5) or not parts[1].isdigit() or len(parts[0]) != 36:
        raise InvalidRefreshToken()
    kid = parts[2] if len(parts) >= 4 else None
    if kid is not None and not (0 < len(kid) <= 64 and kid.replace("-", "").isalnum() and kid.isascii()):
        raise InvalidRefreshToken()
    return _RefreshToken(session_id=parts[0], generation=int(parts[1]), kid=kid,
                         carried=parts[3] if len(parts) == 5 else None)


def refresh(ctx: AppContext, *, refresh_token: str, offer: ProofOffer | None = None) -> TokenPair:
    """Rotate the refresh token; a rotated-out token is honoured within the grace window only. A bound
    session's refresh token counts only with the `offer`'s proof by its key, spent in the rotation's
    own transaction (SPEC §12). A token that carries its holder is rotated in one write, without a
    read; whatever that write refuses is looked into by reading the session."""
    token = _parse_refresh_token(refresh_token)
    expected = refresh_token_text(ctx.refresh_secrets, token.session_id, token.generation, token.kid, token.carried)
    if not digests_equal(refresh_token, expected):
        raise InvalidRefreshToken()
    if token.carried is not None:
        rotated = _rotate_unread(ctx, token, refresh_token=refresh_token, offer=offer)
        if rotated is not None:
            return rotated
    return _rotate_read(ctx, token, refresh_token=refresh_token, offer=offer)


def _rotate_unread(ctx: AppContext, token: _RefreshToken, *, refresh_token: str,
                   offer: ProofOffer | None) -> TokenPair | None:
    """One round trip: the rotation's write, conditioned on everything the read would have checked
    (the generation and digest, live, within its idle timeout and max lifetime, bound to the
    proof's key or to none). None when it was refused for the session's sake: nothing was written,
    and the caller reads the session to answer why (or to honour the grace window)."""
    assert token.carried is not None and token.kid is not None
    proof = None
    if offer is not None and offer.proof is not None:
        # which key: the write's condition holds it to the session's
        proof = binding.checked_proof(ctx.refresh_secrets, ctx.epoch(), offer)
    elif ctx.settings.dpop == "required":
        return None  # a bearer session that may no longer refresh: the read path says so
    holder = replace(carried_holder(token.session_id, token.carried), jkt=proof.jkt if proof else None)
    spending = binding.proof_spending(ctx, proof) if proof else None
    now, new_kid = ctx.epoch(), ctx.refresh_secrets.newest_kid()
    outcome = session_store(ctx).rotate_refresh(
        holder, generation=token.generation, old_digest=token_digest(refresh_token, purpose=REFRESH_PURPOSE),
        new_digest=token_digest(refresh_token_of(ctx.refresh_secrets, holder, token.generation + 1, new_kid),
                                purpose=REFRESH_PURPOSE),
        new_kid=new_kid, now=now, idle_cutoff=liveness(ctx.settings).idle_cutoff(now),
        extra_write=spending.item if spending else None)
    if outcome is Activity.RECORDED:
        return token_pair(ctx, holder, generation=token.generation + 1, issued_epoch=now, refresh_kid=new_kid)
    if outcome is Activity.EXTRA_REFUSED and spending:
        raise spending.refusal()
    return None


def _rotate_read(ctx: AppContext, token: _RefreshToken, *, refresh_token: str,
                 offer: ProofOffer | None) -> TokenPair:
    """Read the session, decide, write (the rotation, conditioned on what was read); again if a
    concurrent write came between."""
    store, generation = session_store(ctx), token.generation
    for _ in range(REFRESH_ATTEMPTS):
        session = store.get(token.session_id)
        if session is None:
            raise InvalidRefreshToken()
        now = ctx.epoch()
        spending = _refresh_proof(ctx, session, offer)  # first: without the key, not even why it ended
        reason = end_reason(ctx.settings, session, now)
        if reason:
            raise ended_error(session, reason)
        if generation != session.refresh_gen:
            if spending:
                binding.spend_proof(ctx, spending.proof)
            return _refresh_rotated_out(ctx, session, refresh_token=refresh_token, generation=generation, now=now)
        old_digest = token_digest(refresh_token, purpose=REFRESH_PURPOSE)
        if not digests_equal(old_digest, session.refresh_digest):
            raise InvalidRefreshToken()
        new_kid = ctx.refresh_secrets.newest_kid()  # a rotated secret takes over here: nobody is logged out
        successor = token_digest(refresh_token_of(ctx.refresh_secrets, session, generation + 1, new_kid),
                                 purpose=REFRESH_PURPOSE)
        outcome = store.rotate_refresh(session.holder(), generation=generation, old_digest=old_digest,
                                       new_digest=successor, new_kid=new_kid, now=now,
                                       idle_cutoff=liveness(ctx.settings).idle_cutoff(now),
                                       extra_write=spending.write.item if spending else None)
        if outcome is Activity.RECORDED:  # a refresh is activity: the session and its presence entry
            return token_pair(ctx, session, generation=generation + 1, issued_epoch=now, refresh_kid=new_kid)
        if outcome is Activity.NOT_COUNTED:
            end_uncounted(ctx, session)
        if outcome is Activity.EXTRA_REFUSED and spending:
            raise spending.write.refusal()
        # SESSION_CHANGED or CONFLICT: a parallel refresh rotated first, or the session ended: re-read
    raise ServiceUnavailable("The session is busy; try again.")


@dataclass(frozen=True)
class _Spending:
    proof: Proof
    write: GuardedWrite


def _refresh_proof(ctx: AppContext, session: SessionRecord, offer: ProofOffer | None) -> _Spending | None:
    """A bound session's refresh needs a fresh proof by its key; a bearer session's needs none,
    unless DPoP is required now: then it cannot refresh and its last access token is its last (the
    client logs in again, bound)."""
    if not session.jkt:
        if ctx.settings.dpop == "required":
            raise binding.DpopRequired()
        return None
    proof = binding.checked_proof(ctx.refresh_secrets, ctx.epoch(), offer, jkt=session.jkt)
    return _Spending(proof=proof, write=binding.proof_spending(ctx, proof))


def _refresh_rotated_out(ctx: AppContext, session: SessionRecord, *, refresh_token: str, generation: int,
                         now: int) -> TokenPair:
    within_grace = now - session.rotated_epoch <= ctx.settings.refresh_reuse_grace
    is_previous = generation == session.refresh_gen - 1 and session.prev_refresh_digest and digests_equal(
        token_digest(refresh_token, purpose=REFRESH_PURPOSE), session.prev_refresh_digest)
    if is_previous and within_grace:
        # The successor is re-derived with the secret the rotation used, even if the ring rotated since.
        pair = token_pair(ctx, session, generation=session.refresh_gen, issued_epoch=session.rotated_epoch,
                           refresh_kid=session.refresh_kid)
        # Handed out only if it is the stored one: a rotation by a release that formed its tokens
        # otherwise (a rolling deploy) would give the client a successor that can never refresh.
        if not digests_equal(token_digest(pair.refresh_token, purpose=REFRESH_PURPOSE), session.refresh_digest):
            raise InvalidRefreshToken()
        return pair
    if generation > session.refresh_gen:
        raise InvalidRefreshToken()
    audit(AuditEvent.REFRESH_TOKEN_REUSED, user_uuid=session.user_uuid, device_id=session.device_id,
          session_id=session.session_id, generation=generation)
    revoke_session(ctx, session=session, reason=RevokeReason.REFRESH_REUSE)
    raise RefreshTokenReused()


def rebinding(ctx: AppContext, session: SessionRecord, *, jkt: str) -> GuardedWrite:
    """A bound session moved to its device's new key (a renewal on a new key, in the renewal's
    transaction): its next refresh takes a proof by the new key, and its tokens name it (SPEC §12)."""
    return GuardedWrite(item=session_store(ctx).rebind_item(session, jkt=jkt),
                        refusal=lambda: SessionRevoked(RevokeReason.LOGGED_OUT))


def record_reauthentication(ctx: AppContext, *, session_id: str) -> None:
    """The session's holder proved again who they are (password or passkey): kept on the session
    record, which the guard reads on every call, so every process sees the renewed window."""
    session_store(ctx).record_reauthentication(session_id, now=ctx.epoch())
