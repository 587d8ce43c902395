"""Every protected request: one JWT check and one consistent read of its session (authenticate), or
no read at all when its one write carries the session's check (vouch); the live checks that other
domains' transactions carry."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import ServiceUnavailable
from common.crypto.dpop import Proof
from common.crypto.tokens import digests_equal
from common.database.batch_read import KeyRead, read_together
from common.database.guarded_write import GuardedWrite
from common.keys.jwt_keys import TokenError
from common.keys.ring_reader import RefreshSecrets
from sessions import binding
from sessions.binding import ProofOffer
from sessions.context import end_reason, liveness, session_store
from sessions.endings import revoke_session
from sessions.errors import InvalidToken, SessionRevoked, TokenExpired, ended_error
from sessions.models import Holder, Principal, RevokeReason, SessionRecord
from sessions.store import Activity, SessionStore
from common.web.background import background
from common.runtime.context import AppContext

# Whose access tokens authenticate() takes (SPEC §14: the OpenID Provider's are the apps', not citylogin's)
OWN_TOKENS, PROVIDER_TOKENS, ANY_TOKENS = "own", "provider", "any"

Along = Callable[[dict[str, Any]], Mapping[str, KeyRead[Any]]]
SESSION_READ = "sessions.session"  # the session's own name in an `along` batch read


def authenticate(ctx: AppContext, *, access_token: str, scheme: str = "Bearer", offer: ProofOffer | None = None,
                 accept_ended_reason: str | None = None, activity: bool = True,
                 proof_checked_by_app: bool = False, spend_last: bool = False,
                 issued_by: str = OWN_TOKENS, along: Along | None = None) -> Principal:
    """The caller behind `access_token`, or 401 (invalid_token, token_expired, session_revoked,
    invalid_dpop_proof). A bound token (`cnf`) counts only under the DPoP `scheme` with the `offer`'s
    proof for this request (SPEC §12), spent while the session is read (its write overlaps the read);
    `spend_last`: only once nothing else refused the request, so that a proxy asking twice about a
    refused request (forward auth) gets the same refusal twice.
    A session revoked with `accept_ended_reason` still names its caller (DELETE /account retried
    after the deletion ended the session). `activity=False`: an app asks about the token
    (introspection), so the check is read-only and the session's idle clock does not move;
    `proof_checked_by_app`: the app checks a bound token's proof itself, against the `cnf` it is told.
    `issued_by`: whose access tokens count: citylogin's own (OWN_TOKENS: 403 once a lock ended the session),
    an app's (PROVIDER_TOKENS, userinfo: 401 then, RFC 6750 §3), or either (ANY_TOKENS: introspection).
    `along`: given the token's verified claims, other records the route needs, read in the session's
    own BatchGetItem (common/database/batch_read.py) and handed over in `Principal.along`; they are read only
    for a token that verified, and nothing of them is looked at before the session checks out."""
    claims, session_id, user_uuid, device_id = _token_claims(ctx, access_token, issued_by=issued_by)
    proof = None if proof_checked_by_app else _bound_proof(ctx.refresh_secrets, claims, access_token=access_token,
                                                           scheme=scheme, offer=offer, now=ctx.epoch())
    spending = background(ctx).submit(binding.spend_proof, ctx, proof) if proof and not spend_last else None
    store = session_store(ctx)
    read_along: dict[str, Any] = {}
    if along is None:
        session = store.get(session_id)
    else:
        read_along = read_together(ctx.dynamodb, {
            **along(claims), SESSION_READ: KeyRead(ctx.tables.sessions, SessionStore.key(session_id),
                                                   SessionStore.from_item)})
        session = read_along.pop(SESSION_READ)
    if session is None or session.user_uuid != user_uuid or session.device_id != device_id:
        raise InvalidToken()
    now = ctx.epoch()
    reason = end_reason(ctx.settings, session, now)
    if reason and not (accept_ended_reason and session.revoked_reason == accept_ended_reason):
        raise ended_error(session, reason, app_token=issued_by == PROVIDER_TOKENS)
    if proof:
        # citylogin's own bound token must be the device key's now (renewed onto a new key since?); an
        # app's (SPEC §14) is bound to the app's key, which its cnf names and the proof matched.
        if "client_id" not in claims and not (session.jkt and digests_equal(session.jkt, proof.jkt)):
            raise binding.InvalidDpopProof(reason="the session moved to the device's new key: refresh with it")
        if spending is None:
            binding.spend_proof(ctx, proof)
        else:
            spending.result()  # InvalidDpopProof if some request spent it already
    if activity and not reason and liveness(ctx.settings).needs_touch(last_seen_epoch=session.last_seen_epoch, now=now):
        _touch(ctx, store, session, now=now, app_token=issued_by == PROVIDER_TOKENS)
    return Principal(user_uuid=user_uuid, session_id=session_id, device_id=device_id, session=session,
                     token_expires_epoch=int(claims["exp"]), claims=claims, along=read_along)


def _token_claims(ctx: AppContext, access_token: str, *,
                  issued_by: str = OWN_TOKENS) -> tuple[dict[str, Any], str, str, str]:
    """The access token's claims and its (sid, sub, did); 401 if it is not one of ours, or expired."""
    try:
        claims = _decoded(ctx, access_token, issued_by)
    except TokenError as exc:
        raise (TokenExpired() if exc.code == "token_expired" else InvalidToken()) from None
    session_id, user_uuid, device_id = claims.get("sid"), claims.get("sub"), claims.get("did")
    if not (isinstance(session_id, str) and session_id and isinstance(user_uuid, str) and user_uuid
            and isinstance(device_id, str) and device_id):
        raise InvalidToken()
    return claims, session_id, user_uuid, device_id


def _decoded(ctx: AppContext, access_token: str, issued_by: str) -> dict[str, Any]:
    provider_issuer = ctx.public_url().rstrip("/")
    if issued_by == OWN_TOKENS:
        return ctx.jwt.decode(access_token, now=ctx.now())
    if issued_by == ANY_TOKENS:
        claims, own = ctx.jwt.decode_own_or(access_token, other_issuer=provider_issuer, now=ctx.now())
        if own:
            return claims
    else:
        claims = ctx.jwt.decode(access_token, now=ctx.now(), issuer=provider_issuer, verify_audience=False)
    # An app's token from the OpenID Provider (SPEC §14): its issuer, any app as audience, a client_id.
    if not isinstance(claims.get("client_id"), str):
        raise TokenError("invalid_token")
    return claims


@dataclass(frozen=True)
class Vouched:
    """A caller whose token (and proof) checked out while its session is not read yet: the one write
    it came for carries `checks` in its own transaction (the session still live as the token says,
    the proof spent), so that the request costs that write alone."""
    user_uuid: str
    session_id: str
    device_id: str
    checks: tuple[GuardedWrite, ...]


def vouch(ctx: AppContext, *, access_token: str, scheme: str = "Bearer",
          offer: ProofOffer | None = None) -> Vouched:
    """authenticate() for a request whose only DynamoDB call is a write: the same refusals, from
    the token and proof now, and from the session when the write's check of it is refused."""
    claims, session_id, user_uuid, device_id = _token_claims(ctx, access_token)
    proof = _bound_proof(ctx.refresh_secrets, claims, access_token=access_token, scheme=scheme, offer=offer,
                         now=ctx.epoch())
    live = _live_check(ctx, Holder(session_id=session_id, user_uuid=user_uuid, device_id=device_id, expires_epoch=0,
                                   jkt=proof.jkt if proof else None))
    checks = (live, binding.proof_spending(ctx, proof)) if proof else (live,)
    return Vouched(user_uuid=user_uuid, session_id=session_id, device_id=device_id, checks=checks)


def live_session(ctx: AppContext, *, session_id: str, user_uuid: str, device_id: str) -> SessionRecord | None:
    """The session, read strongly consistent, if it is still live and this user's on this device."""
    session = session_store(ctx).get(session_id)
    if session is None or session.user_uuid != user_uuid or session.device_id != device_id:
        return None
    return None if end_reason(ctx.settings, session, ctx.epoch()) else session


def session_live_check(ctx: AppContext, session: SessionRecord) -> GuardedWrite:
    """A check, for another domain's transaction, that `session` is still live when it commits, whichever
    key the device's own tokens are bound to by then (a certificate renewal moves the session to the new
    key: an app's grant, bound to the app's key, goes on)."""
    return _live_check(ctx, session.holder(), any_key=True)


def live_check_of(ctx: AppContext, *, session_id: str, user_uuid: str, device_id: str,
                  app: tuple[str, str] | None = None) -> GuardedWrite:
    """session_live_check() for a session known by its ids alone (an app's code or grant names them), so
    that the write it joins needs no read of the session first. With `app` ((client_id, name): an app
    signing in on the session), the session keeps the app among those that signed in on it."""
    return _live_check(ctx, Holder(session_id=session_id, user_uuid=user_uuid, device_id=device_id,
                                   expires_epoch=0), any_key=True, app=app)


def screen_redeemed(ctx: AppContext, *, session_id: str, user_uuid: str, device_id: str, app: tuple[str, str],
                    expires_epoch: int, refusal: Callable[[], Exception]) -> list[GuardedWrite]:
    """For the transaction of a screen redeeming its approval (oidc.device.flow): the screen's session
    is live (else its end, as a live check says it), and it and its seat now last until `expires_epoch`
    (its max lifetime) instead of the code's expiry; `refusal` when the presence no longer counts it."""
    now = ctx.epoch()
    holder = Holder(session_id=session_id, user_uuid=user_uuid, device_id=device_id, expires_epoch=0)
    session, entry = session_store(ctx).screen_redeemed_items(
        holder, app=app, now=now, idle_cutoff=liveness(ctx.settings).idle_cutoff(now), expires_epoch=expires_epoch)
    return [GuardedWrite(item=session, refusal=lambda: _not_live(ctx, holder, any_key=True)),
            GuardedWrite(item=entry, refusal=refusal)]


def still_live(ctx: AppContext, principal: Principal) -> GuardedWrite:
    """A check, for the write a protected request came for, that the caller's session is still live
    when the write commits: one that ends meanwhile (a password reset ending every session) refuses
    it as authenticate() would have."""
    return _live_check(ctx, principal.session.holder())


def _live_check(ctx: AppContext, holder: Holder, *, any_key: bool = False,
                app: tuple[str, str] | None = None) -> GuardedWrite:
    now = ctx.epoch()
    return GuardedWrite(item=session_store(ctx).live_check_item(holder, now=now, any_key=any_key, app=app,
                                                                 idle_cutoff=liveness(ctx.settings).idle_cutoff(now)),
                        refusal=lambda: _not_live(ctx, holder, any_key=any_key))


def _not_live(ctx: AppContext, holder: Holder, *, any_key: bool = False) -> Exception:
    """Why a vouched caller's session check was refused, as authenticate() would say it."""
    session = session_store(ctx).get(holder.session_id)
    if session is None or session.user_uuid != holder.user_uuid or session.device_id != holder.device_id:
        return InvalidToken()
    reason = end_reason(ctx.settings, session, ctx.epoch())
    if reason:
        return ended_error(session, reason)
    if not any_key and holder.jkt and not (session.jkt and digests_equal(session.jkt, holder.jkt)):
        return binding.InvalidDpopProof(reason="the session moved to the device's new key: refresh with it")
    return ServiceUnavailable("The session is busy; try again.")


def _bound_proof(ring: RefreshSecrets, claims: dict[str, Any], *, access_token: str, scheme: str,
                 offer: ProofOffer | None, now: int) -> Proof | None:
    """The checked proof a bound token needs (None for a bearer token); InvalidDpopProof if a bound
    token comes any other way, InvalidToken if the DPoP scheme carries an unbound one."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if scheme == binding.DPOP and not isinstance(jkt, str):
        raise InvalidToken("This access token is not bound to a key: send it as a Bearer token.")
    if not isinstance(jkt, str):
        return None
    if scheme != binding.DPOP:
        raise binding.InvalidDpopProof(reason="a bound access token goes as Authorization: DPoP, with a DPoP proof")
    return binding.checked_proof(ring, now, offer, access_token=access_token, jkt=jkt)


def _touch(ctx: AppContext, store: SessionStore, session: SessionRecord, *, now: int, app_token: bool) -> None:
    """Record activity; 401 if the session ended meanwhile or the presence no longer counts it."""
    outcome = store.touch(session, now=now, idle_cutoff=liveness(ctx.settings).idle_cutoff(now))
    if outcome is Activity.SESSION_CHANGED:
        current = store.get(session.session_id)
        reason = (current and end_reason(ctx.settings, current, now)) or RevokeReason.LOGGED_OUT
        raise ended_error(current, reason, app_token=app_token) if current else SessionRevoked(reason)
    if outcome is Activity.NOT_COUNTED:
        end_uncounted(ctx, session)
    # CONFLICT: a login is rewriting the presence right now; the session is live, touch next time.


def end_uncounted(ctx: AppContext, session: SessionRecord) -> None:
    # Live by its record but missing from the presence (left by an older version that dropped
    # idle entries silently): it must not count nor be usable, so it ends here.
    revoke_session(ctx, session=session, reason=RevokeReason.IDLE_TIMEOUT)
    raise SessionRevoked(RevokeReason.IDLE_TIMEOUT)
