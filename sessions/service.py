"""Session rules: open with the concurrency invariant, authenticate, refresh, revoke. No Flask."""
from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from common.audit import AuditEvent, audit
from common.background import background
from common import cursors
from common.batch_read import KeyRead, read_together
from common.context import AppContext
from common.crypto import digests_equal, keyed_token, token_digest
from common.dpop import Proof
from common.errors import ErrorCode, Forbidden, Gone, InvalidField, NotFound, ServiceUnavailable, Unauthorized
from common.jwt_keys import TokenError
from common.guarded_write import GuardedWrite
from common.timefmt import iso
from common.serving import server_kind
from sessions import binding
from sessions.binding import ProofOffer
from sessions.events import LiveStream, SessionWatcher, StreamCaps, TooManyStreams
from sessions.feed import EventFeed
from sessions.feed_store import FeedStore, event_put
from sessions.history_store import BadCursor, HistoryStore
from sessions.models import (NOT_SAID, SESSION_ACTIVE, EndedBy, Ending, HistoryResult, Holder, Liveness,
                             OpenedSession, Presence, PresenceEntry, PresenceMoved, Principal, RevokeReason, Seats,
                             SessionEnded, SessionRecord, TokenPair)
from sessions.store import (Activity, ExtraWriteRefused, IdleSessionsInUse, PresenceChanged, SessionStore,
                            retention_ttl)

log = logging.getLogger(__name__)

RELABEL_ATTEMPTS = 60
REFRESH_ATTEMPTS = 5
REFRESH_PURPOSE = "refresh"
# RFC 8176 methods of a login (SPEC §14 amr): the device key always, with the password or a passkey.
PASSWORD_AMR = ("hwk", "pwd")
PASSKEY_AMR = ("hwk", "pop", "user")
# Whose access tokens authenticate() takes (SPEC §14: the OpenID Provider's are the apps', not citylogin's)
OWN_TOKENS, PROVIDER_TOKENS, ANY_TOKENS = "own", "provider", "any"

class InvalidToken(Unauthorized):
    code = ErrorCode.INVALID_TOKEN


class TokenExpired(Unauthorized):
    code, detail = ErrorCode.TOKEN_EXPIRED, "The access token has expired; refresh it."


class SessionRevoked(Unauthorized):
    code, detail = ErrorCode.SESSION_REVOKED, "This session has ended."

    def __init__(self, reason: str, **ended_by: str) -> None:
        """`ended_by`: by_device, admin_action, by_app, by_app_name, those that are known."""
        members: dict[str, Any] = {"reason": reason, **ended_by}
        super().__init__(**members)


class AccountLocked(Forbidden):
    code, detail = ErrorCode.ACCOUNT_LOCKED, "This account has been locked by an operator."


class AccountDeleted(Gone):
    """A flow without a session (login, confirm, pairing, recovery) met an account that is being
    deleted, or whose deletion began while it was deciding (its transaction was refused)."""

    code, detail = ErrorCode.ACCOUNT_DELETED, "This account has been deleted."


def account_deleted_session() -> SessionRevoked:
    """What a request with a session of an account being deleted gets (SPEC §4 DELETE /account)."""
    return SessionRevoked(RevokeReason.ACCOUNT_DELETED)


def _ended(session: SessionRecord, reason: str) -> Exception:
    # A session ended by an account lock carries `locked`, so the guard can answer 403
    # account_locked from the one session read, without reading the user (SPEC §4 /account).
    if session.locked:
        return AccountLocked()
    if reason != session.revoked_reason:  # over by time: nobody ended it
        return SessionRevoked(reason)
    by_device = {"by_device": session.by_device} if session.by_device else {}
    return SessionRevoked(reason, **by_device, **session.ended_by().fields())


class InvalidRefreshToken(Unauthorized):
    code, detail = ErrorCode.INVALID_REFRESH_TOKEN, "The refresh token is not valid."


class RefreshTokenReused(Unauthorized):
    code = ErrorCode.REFRESH_TOKEN_REUSED
    detail = "This refresh token was already used; the session has been ended for safety."


class SessionNotFound(NotFound):
    code, detail = ErrorCode.SESSION_NOT_FOUND, "No such session."


class StreamsFull(ServiceUnavailable):
    code = ErrorCode.TOO_MANY_STREAMS
    detail = "This server holds as many event streams as it may; try again shortly."
    RETRY_AFTER = 10

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": str(self.RETRY_AFTER)}, retry_after=self.RETRY_AFTER)


def session_store(ctx: AppContext) -> SessionStore:
    return SessionStore(ctx.dynamodb, sessions_table=ctx.tables.sessions, presence_table=ctx.tables.presence,
                        events_table=ctx.tables.security_events)


def history_store(ctx: AppContext) -> HistoryStore:
    return HistoryStore(ctx.dynamodb, ctx.tables.login_history)


def _epoch(ctx: AppContext) -> int:
    return int(ctx.now().timestamp())


def _epoch_ms(ctx: AppContext) -> int:
    return int(ctx.now().timestamp() * 1000)


# --- tokens -----------------------------------------------------------------------------

def _refresh_token(ctx: AppContext, holder: Holder | SessionRecord, generation: int, kid: str | None) -> str:
    """<session_id>.<generation>.<kid>.<carried>.<mac> under the ring's secret `kid`, where `carried`
    names the session's user, device and end, so that a refresh writes without reading first. A
    session from before the key ring (kid None) keeps its form, <session_id>.<generation>.<mac>."""
    # Derived, not random: within the grace window the same successor can be handed out again
    # while only its digest is stored (SPEC §4, §6).
    if kid is None:
        return _token_text(ctx, holder.session_id, generation, None, None)
    return _token_text(ctx, holder.session_id, generation, kid, _carried(holder))


def _token_text(ctx: AppContext, session_id: str, generation: int, kid: str | None, carried: str | None) -> str:
    """A refresh token's text in any of its forms (a 4-part one, <session_id>.<generation>.<kid>.<mac>,
    carries nothing: made before tokens carried their holder)."""
    secret = ctx.refresh_secrets.get(kid or ctx.refresh_secrets.oldest_kid())
    if secret is None:  # a kid the ring does not hold (retired, or made up)
        raise InvalidRefreshToken()
    if carried is not None:
        mac = keyed_token(secret, f"refresh:{session_id}:{generation}:{carried}")
        return f"{session_id}.{generation}.{kid}.{carried}.{mac}"
    mac = keyed_token(secret, f"refresh:{session_id}:{generation}")
    return f"{session_id}.{generation}.{kid}.{mac}" if kid else f"{session_id}.{generation}.{mac}"


def _carried(holder: Holder | SessionRecord) -> str:
    data = json.dumps([holder.user_uuid, holder.device_id, holder.expires_epoch], separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def _holder(session_id: str, carried: str) -> Holder:
    try:
        user_uuid, device_id, expires_epoch = json.loads(base64.urlsafe_b64decode(carried + "=" * (-len(carried) % 4)))
    except (ValueError, TypeError, RecursionError):
        raise InvalidRefreshToken() from None
    if not (isinstance(user_uuid, str) and 0 < len(user_uuid) <= 64 and isinstance(device_id, str)
            and 0 < len(device_id) <= 64 and isinstance(expires_epoch, int)):
        raise InvalidRefreshToken()
    return Holder(session_id=session_id, user_uuid=user_uuid, device_id=device_id, expires_epoch=expires_epoch)


def _token_pair(ctx: AppContext, session: Holder | SessionRecord, *, generation: int, issued_epoch: int,
                refresh_kid: str | None) -> TokenPair:
    claims: dict = {"sub": session.user_uuid, "sid": session.session_id, "did": session.device_id,
                    "jti": f"{session.session_id}.{generation}"}
    if session.jkt:  # bound: usable only with a proof by this key (SPEC §12)
        claims["cnf"] = {"jkt": session.jkt}
    # A token never outlives its session's max lifetime: an app that checks tokens locally (the
    # guard, SPEC §11) learns of ends made by a write from the feed, but this one is made by time.
    ttl = max(1, min(ctx.settings.access_token_ttl, session.expires_epoch - issued_epoch))
    # EdDSA is deterministic: the same claims and time give the same token, hence the same pair.
    access = ctx.jwt.sign(claims, ttl_seconds=ttl, now=datetime.fromtimestamp(issued_epoch, timezone.utc))
    return TokenPair(access_token=access,
                     refresh_token=_refresh_token(ctx, session, generation, refresh_kid),
                     expires_in=max(0, issued_epoch + ttl - _epoch(ctx)),
                     token_type=binding.DPOP if session.jkt else "Bearer")


# --- opening a session under the concurrency invariant (SPEC §5) -----------------------
# The login flow owns the attempt: read_seats (fetch), its policy's decision, take_seat (the one
# write), and again from a fresh read when take_seat answers PresenceMoved.

def read_seats(ctx: AppContext, *, user_uuid: str, device_id: str, presence: Presence | None = None,
               after: PresenceMoved | None = None) -> Seats:
    """The user's presence as a login of `device_id` sees it now. `presence`, if given, is a fresh
    read to start from; `after` is what the previous attempt's take_seat answered (a contended
    record is read again after a short random pause)."""
    learned = after or PresenceMoved()
    if learned.contended:
        time.sleep(random.uniform(0.005, 0.02 * min(learned.attempts, 10)))
    presence = _with_activity(presence or session_store(ctx).get_presence(user_uuid), learned.seen_since)
    now = _epoch(ctx)
    return Seats(device_id=device_id, presence=presence, now=now, live=presence.live(now=now, liveness=liveness(ctx)),
                 learned=learned)


def take_seat(ctx: AppContext, seats: Seats, *, evicted: list[PresenceEntry], device_name: str, device_class: str,
              ip: str | None, user_agent: str | None, extra_writes: Sequence[GuardedWrite] = (),
              jkt: str | None = None, amr: Sequence[str] = PASSWORD_AMR) -> OpenedSession | PresenceMoved:
    """Log `seats.device_id` in, displacing `evicted`, in one transaction with `extra_writes`, and
    only if nobody changed the presence since `seats` was read; else PresenceMoved (read again).
    Entries dropped as idle end their sessions in the same transaction, so a session the presence
    stops counting is never usable. A refused extra write raises its own `refusal`. With `jkt` the
    session is bound to that device key (SPEC §12)."""
    store, rule, now, device_id = session_store(ctx), liveness(ctx), seats.now, seats.device_id
    session = _new_session(ctx, user_uuid=seats.presence.user_uuid, device_id=device_id, device_name=device_name,
                           device_class=device_class, ip=ip, user_agent=user_agent, now=now, jkt=jkt, amr=amr)
    kept = {e.device_id: e for e in seats.others if e not in evicted}
    kept[device_id] = PresenceEntry(device_id=device_id, session_id=session.session_id,
                                    device_name=device_name, login_epoch=now, last_seen_epoch=now,
                                    expires_epoch=session.expires_epoch, ip=ip, device_class=device_class)
    user_uuid = seats.presence.user_uuid
    displaced = [_ending(user_uuid, e, RevokeReason.DISPLACED, by_device=device_id) for e in evicted]
    if device_id in seats.presence.entries:  # a re-login from this device replaces its own session
        displaced.append(_ending(user_uuid, seats.presence.entries[device_id], RevokeReason.LOGGED_OUT,
                                 by_device=device_id))
    idle = [_ending(user_uuid, e, RevokeReason.IDLE_TIMEOUT) for e in seats.presence.entries.values()
            if e.device_id != device_id and e not in seats.live and now < e.expires_epoch
            and e.session_id not in seats.learned.gone]
    extra = list(extra_writes)
    try:
        store.open_session(before=seats.presence, entries=kept, session=session, displaced=displaced,
                           idle=idle, idle_cutoff=rule.idle_cutoff(now), at=session.created_at,
                           at_ms=_epoch_ms(ctx), extra_writes=[w.item for w in extra],
                           unconditional=[_login_row(ctx, session=session, evicted=evicted)])
    except ExtraWriteRefused as refused:
        raise extra[refused.index].refusal() from None
    except IdleSessionsInUse as in_use:
        return _learned_in_use(store, in_use.session_ids, seats.learned)
    except PresenceChanged:
        return replace(seats.learned, attempts=seats.learned.attempts + 1, contended=True)
    return OpenedSession(session=session, evicted=evicted,
                         tokens=_token_pair(ctx, session, generation=1, issued_epoch=now,
                                            refresh_kid=session.refresh_kid))


def _ending(user_uuid: str, entry: PresenceEntry, reason: str, *, by_device: str | None = None) -> Ending:
    return Ending(session_id=entry.session_id, user_uuid=user_uuid, device_id=entry.device_id, reason=reason,
                  by_device=by_device)


def _learned_in_use(store: SessionStore, session_ids: list[str], learned: PresenceMoved) -> PresenceMoved:
    seen_since, gone = dict(learned.seen_since), set(learned.gone)
    _note_in_use(store, session_ids, seen_since=seen_since, gone=gone)
    return PresenceMoved(attempts=learned.attempts + 1, seen_since=seen_since, gone=frozenset(gone))


def relabel_device(ctx: AppContext, *, user_uuid: str, device_id: str, device_class: str,
                   check_class: Callable[[list[PresenceEntry]], None], extra_writes: list[GuardedWrite]) -> None:
    """Make `device_id` count as `device_class` (SPEC §5): if it is logged in, `check_class(the
    other live entries)` raises to refuse, and its session counts under the new class from the
    moment the presence record is rewritten, in one transaction with `extra_writes` (the device's
    record) and only if nobody changed the presence meanwhile; a refused extra raises its refusal."""
    store, rule = session_store(ctx), liveness(ctx)
    extra = list(extra_writes)
    seen_since: dict[str, int] = {}
    gone: set[str] = set()
    for attempt in range(RELABEL_ATTEMPTS):
        presence = _with_activity(store.get_presence(user_uuid), seen_since)
        now = _epoch(ctx)
        live = presence.live(now=now, liveness=rule)
        mine = next((e for e in live if e.device_id == device_id and e.device_class != device_class), None)
        if mine:  # logged in, and counted under another class until now
            check_class([e for e in live if e is not mine])
        entries = {e.device_id: e for e in live}
        if mine:
            entries[device_id] = replace(mine, device_class=device_class)
        idle = [_ending(user_uuid, e, RevokeReason.IDLE_TIMEOUT) for e in presence.entries.values()
                if e not in live and now < e.expires_epoch and e.session_id not in gone]
        try:
            store.relabel(before=presence, entries=entries, session_id=mine.session_id if mine else None,
                          device_class=device_class, idle=idle, idle_cutoff=rule.idle_cutoff(now),
                          at=iso(ctx.now()), end_epoch=now, at_ms=_epoch_ms(ctx), extra_writes=[w.item for w in extra])
            return
        except ExtraWriteRefused as refused:
            raise extra[refused.index].refusal() from None
        except IdleSessionsInUse as in_use:
            _note_in_use(store, in_use.session_ids, seen_since=seen_since, gone=gone)
        except PresenceChanged:
            time.sleep(random.uniform(0.005, 0.02 * min(attempt + 1, 10)))
    raise ServiceUnavailable("Too many simultaneous changes for this account; try again.")


def _note_in_use(store: SessionStore, session_ids: list[str], *, seen_since: dict[str, int], gone: set[str]) -> None:
    # The session records are the truth: a touch may not have reached the presence entry.
    for session_id in session_ids:
        record = store.get(session_id)
        if record is None:
            gone.add(session_id)
        else:
            seen_since[session_id] = record.last_seen_epoch


def _login_row(ctx: AppContext, *, session: SessionRecord, evicted: list[PresenceEntry]) -> dict[str, Any]:
    """The login's history row, as an entry of its transaction: a login that commits has its row, one
    that does not leaves none. A put that no condition refuses, so it never refuses a login itself."""
    return history_store(ctx).put_item(
        user_uuid=session.user_uuid, at=ctx.now(), result=HistoryResult.SUCCESS.value, device_id=session.device_id,
        ip=session.ip, user_agent=session.user_agent,
        evicted=[{"device_id": e.device_id, "device_name": e.device_name} for e in evicted])


def _with_activity(presence: Presence, seen_since: dict[str, int]) -> Presence:
    entries = {device: replace(e, last_seen_epoch=max(e.last_seen_epoch, seen_since[e.session_id]))
               if seen_since.get(e.session_id) else e for device, e in presence.entries.items()}
    return replace(presence, entries=entries)


def _new_session(ctx: AppContext, *, user_uuid: str, device_id: str, device_name: str, device_class: str,
                 ip: str | None, user_agent: str | None, now: int, jkt: str | None,
                 amr: Sequence[str]) -> SessionRecord:
    session_id, refresh_kid = str(uuid.uuid4()), ctx.refresh_secrets.newest_kid()
    return SessionRecord(
        session_id=session_id, user_uuid=user_uuid, device_id=device_id, device_name=device_name,
        created_at=iso(ctx.now()), login_epoch=now, last_seen_epoch=now,
        expires_epoch=now + ctx.settings.session_max_lifetime, refresh_gen=1,
        refresh_digest=token_digest(_refresh_token(ctx, Holder(
            session_id=session_id, user_uuid=user_uuid, device_id=device_id,
            expires_epoch=now + ctx.settings.session_max_lifetime), 1, refresh_kid), purpose=REFRESH_PURPOSE),
        refresh_kid=refresh_kid, rotated_epoch=now, ip=ip, user_agent=(user_agent or "")[:256] or None,
        expires_ttl=retention_ttl(now + ctx.settings.session_max_lifetime), device_class=device_class,
        live_shard=ending_shard(session_id),
        ends_at=min(now + ctx.settings.session_max_lifetime, now + liveness(ctx).idle_span), jkt=jkt, amr=list(amr))


# --- every protected request: one JWT check, one consistent read ------------------------

def liveness(ctx: AppContext) -> Liveness:
    return Liveness(idle_timeout=ctx.settings.session_idle_timeout)


def _state_end_reason(ctx: AppContext, state: dict, now: int) -> str | None:
    """Why a session (its status, revoked_reason, expires_epoch, last_seen_epoch) is over, if it is."""
    return liveness(ctx).end_reason(status=state["status"], revoked_reason=state.get("revoked_reason"),
                                    expires_epoch=state["expires_epoch"],
                                    last_seen_epoch=state["last_seen_epoch"], now=now)


def _end_reason(ctx: AppContext, session: SessionRecord, now: int) -> str | None:
    return liveness(ctx).end_reason(status=session.status, revoked_reason=session.revoked_reason,
                                    expires_epoch=session.expires_epoch,
                                    last_seen_epoch=session.last_seen_epoch, now=now)


Along = Callable[[dict[str, Any]], Mapping[str, KeyRead]]
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
    `issued_by`: whose access tokens count: citylogin's own (OWN_TOKENS), those the OpenID Provider gave
    an app (PROVIDER_TOKENS: userinfo), or either (ANY_TOKENS: introspection).
    `along`: given the token's verified claims, other records the route needs, read in the session's
    own BatchGetItem (common/batch_read.py) and handed over in `Principal.along`; they are read only
    for a token that verified, and nothing of them is looked at before the session checks out."""
    claims, session_id, user_uuid, device_id = _token_claims(ctx, access_token, issued_by=issued_by)
    proof = None if proof_checked_by_app else _bound_proof(ctx, claims, access_token=access_token, scheme=scheme,
                                                           offer=offer)
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
    now = _epoch(ctx)
    reason = _end_reason(ctx, session, now)
    if reason and not (accept_ended_reason and session.revoked_reason == accept_ended_reason):
        raise _ended(session, reason)
    if proof:
        # citylogin's own bound token must be the device key's now (renewed onto a new key since?); an
        # app's (SPEC §14) is bound to the app's key, which its cnf names and the proof matched.
        if "client_id" not in claims and not (session.jkt and digests_equal(session.jkt, proof.jkt)):
            raise binding.InvalidDpopProof(reason="the session moved to the device's new key: refresh with it")
        if spending is None:
            binding.spend_proof(ctx, proof)
        else:
            spending.result()  # InvalidDpopProof if some request spent it already
    if activity and not reason and liveness(ctx).needs_touch(last_seen_epoch=session.last_seen_epoch, now=now):
        _touch(ctx, store, session, now=now)
    return Principal(user_uuid=user_uuid, session_id=session_id, device_id=device_id, session=session,
                     token_expires_epoch=int(claims["exp"]), claims=claims, along=read_along)


def _token_claims(ctx: AppContext, access_token: str, *, issued_by: str = OWN_TOKENS) -> tuple[dict, str, str, str]:
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


def _decoded(ctx: AppContext, access_token: str, issued_by: str) -> dict:
    if issued_by != PROVIDER_TOKENS:
        try:
            return ctx.jwt.decode(access_token, now=ctx.now())
        except TokenError as refused:
            if issued_by == OWN_TOKENS or refused.code == "token_expired":
                raise
    # An app's token from the OpenID Provider (SPEC §14): its issuer, any app as audience, a client_id.
    claims = ctx.jwt.decode(access_token, now=ctx.now(), issuer=ctx.public_url().rstrip("/"), verify_audience=False)
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
    proof = _bound_proof(ctx, claims, access_token=access_token, scheme=scheme, offer=offer)
    live = _live_check(ctx, Holder(session_id=session_id, user_uuid=user_uuid, device_id=device_id, expires_epoch=0,
                                   jkt=proof.jkt if proof else None))
    checks = (live, binding.proof_spending(ctx, proof)) if proof else (live,)
    return Vouched(user_uuid=user_uuid, session_id=session_id, device_id=device_id, checks=checks)


def live_session(ctx: AppContext, *, session_id: str, user_uuid: str, device_id: str) -> SessionRecord | None:
    """The session, read strongly consistent, if it is still live and this user's on this device."""
    session = session_store(ctx).get(session_id)
    if session is None or session.user_uuid != user_uuid or session.device_id != device_id:
        return None
    return None if _end_reason(ctx, session, _epoch(ctx)) else session


def session_live_check(ctx: AppContext, session: SessionRecord) -> GuardedWrite:
    """A check, for another domain's transaction, that `session` is still live when it commits, whichever
    key the device's own tokens are bound to by then (a certificate renewal moves the session to the new
    key: an app's grant, bound to the app's key, goes on)."""
    return _live_check(ctx, session.holder(), any_key=True)


def live_check_of(ctx: AppContext, *, session_id: str, user_uuid: str, device_id: str) -> GuardedWrite:
    """session_live_check() for a session known by its ids alone (an app's code or grant names them), so
    that the write it joins needs no read of the session first."""
    return _live_check(ctx, Holder(session_id=session_id, user_uuid=user_uuid, device_id=device_id,
                                   expires_epoch=0), any_key=True)


def still_live(ctx: AppContext, principal: Principal) -> GuardedWrite:
    """A check, for the write a protected request came for, that the caller's session is still live
    when the write commits: one that ends meanwhile (a password reset ending every session) refuses
    it as authenticate() would have."""
    return _live_check(ctx, principal.session.holder())


def _live_check(ctx: AppContext, holder: Holder, *, any_key: bool = False) -> GuardedWrite:
    now = _epoch(ctx)
    return GuardedWrite(item=session_store(ctx).live_check_item(holder, now=now, any_key=any_key,
                                                                 idle_cutoff=liveness(ctx).idle_cutoff(now)),
                        refusal=lambda: _not_live(ctx, holder, any_key=any_key))


def _not_live(ctx: AppContext, holder: Holder, *, any_key: bool = False) -> Exception:
    """Why a vouched caller's session check was refused, as authenticate() would say it."""
    session = session_store(ctx).get(holder.session_id)
    if session is None or session.user_uuid != holder.user_uuid or session.device_id != holder.device_id:
        return InvalidToken()
    reason = _end_reason(ctx, session, _epoch(ctx))
    if reason:
        return _ended(session, reason)
    if not any_key and holder.jkt and not (session.jkt and digests_equal(session.jkt, holder.jkt)):
        return binding.InvalidDpopProof(reason="the session moved to the device's new key: refresh with it")
    return ServiceUnavailable("The session is busy; try again.")


def _bound_proof(ctx: AppContext, claims: dict, *, access_token: str, scheme: str,
                 offer: ProofOffer | None) -> Proof | None:
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
    return binding.checked_proof(ctx, offer, access_token=access_token, jkt=jkt)


def _touch(ctx: AppContext, store: SessionStore, session: SessionRecord, *, now: int) -> None:
    """Record activity; 401 if the session ended meanwhile or the presence no longer counts it."""
    outcome = store.touch(session, now=now, idle_cutoff=liveness(ctx).idle_cutoff(now))
    if outcome is Activity.SESSION_CHANGED:
        current = store.get(session.session_id)
        reason = (current and _end_reason(ctx, current, now)) or RevokeReason.LOGGED_OUT
        raise _ended(current, reason) if current else SessionRevoked(reason)
    if outcome is Activity.NOT_COUNTED:
        _end_uncounted(ctx, session)
    # CONFLICT: a login is rewriting the presence right now; the session is live, touch next time.


def _end_uncounted(ctx: AppContext, session: SessionRecord) -> None:
    # Live by its record but missing from the presence (left by an older version that dropped
    # idle entries silently): it must not count nor be usable, so it ends here.
    revoke_session(ctx, session=session, reason=RevokeReason.IDLE_TIMEOUT)
    raise SessionRevoked(RevokeReason.IDLE_TIMEOUT)


# --- refresh with rotation and reuse detection ------------------------------------------

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
    if not digests_equal(refresh_token, _token_text(ctx, token.session_id, token.generation, token.kid,
                                                     token.carried)):
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
        proof = binding.checked_proof(ctx, offer)  # which key: the write's condition holds it to the session's
    elif ctx.settings.dpop == "required":
        return None  # a bearer session that may no longer refresh: the read path says so
    holder = replace(_holder(token.session_id, token.carried), jkt=proof.jkt if proof else None)
    spending = binding.proof_spending(ctx, proof) if proof else None
    now, new_kid = _epoch(ctx), ctx.refresh_secrets.newest_kid()
    outcome = session_store(ctx).rotate_refresh(
        holder, generation=token.generation, old_digest=token_digest(refresh_token, purpose=REFRESH_PURPOSE),
        new_digest=token_digest(_refresh_token(ctx, holder, token.generation + 1, new_kid), purpose=REFRESH_PURPOSE),
        new_kid=new_kid, now=now, idle_cutoff=liveness(ctx).idle_cutoff(now),
        extra_write=spending.item if spending else None)
    if outcome is Activity.RECORDED:
        return _token_pair(ctx, holder, generation=token.generation + 1, issued_epoch=now, refresh_kid=new_kid)
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
        now = _epoch(ctx)
        spending = _refresh_proof(ctx, session, offer)  # first: without the key, not even why it ended
        reason = _end_reason(ctx, session, now)
        if reason:
            raise _ended(session, reason)
        if generation != session.refresh_gen:
            if spending:
                binding.spend_proof(ctx, spending.proof)
            return _refresh_rotated_out(ctx, session, refresh_token=refresh_token, generation=generation, now=now)
        old_digest = token_digest(refresh_token, purpose=REFRESH_PURPOSE)
        if not digests_equal(old_digest, session.refresh_digest):
            raise InvalidRefreshToken()
        new_kid = ctx.refresh_secrets.newest_kid()  # a rotated secret takes over here: nobody is logged out
        successor = token_digest(_refresh_token(ctx, session, generation + 1, new_kid), purpose=REFRESH_PURPOSE)
        outcome = store.rotate_refresh(session.holder(), generation=generation, old_digest=old_digest,
                                       new_digest=successor, new_kid=new_kid, now=now,
                                       idle_cutoff=liveness(ctx).idle_cutoff(now),
                                       extra_write=spending.write.item if spending else None)
        if outcome is Activity.RECORDED:  # a refresh is activity: the session and its presence entry
            return _token_pair(ctx, session, generation=generation + 1, issued_epoch=now, refresh_kid=new_kid)
        if outcome is Activity.NOT_COUNTED:
            _end_uncounted(ctx, session)
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
    proof = binding.checked_proof(ctx, offer, jkt=session.jkt)
    return _Spending(proof=proof, write=binding.proof_spending(ctx, proof))


def _refresh_rotated_out(ctx: AppContext, session: SessionRecord, *, refresh_token: str, generation: int,
                         now: int) -> TokenPair:
    within_grace = now - session.rotated_epoch <= ctx.settings.refresh_reuse_grace
    is_previous = generation == session.refresh_gen - 1 and session.prev_refresh_digest and digests_equal(
        token_digest(refresh_token, purpose=REFRESH_PURPOSE), session.prev_refresh_digest)
    if is_previous and within_grace:
        # The successor is re-derived with the secret the rotation used, even if the ring rotated since.
        pair = _token_pair(ctx, session, generation=session.refresh_gen, issued_epoch=session.rotated_epoch,
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
    session_store(ctx).record_reauthentication(session_id, now=_epoch(ctx))


# --- ending sessions --------------------------------------------------------------------

def revoke_session(ctx: AppContext, *, session: SessionRecord, reason: str, by_device: str | None = None,
                   locked: bool = False, ended_by: EndedBy = NOT_SAID) -> None:
    """End `session` for `reason`; `ended_by` (an operator's action, an app's own logout) goes with the
    reason to its 401 session_revoked and its event."""
    moment = ctx.now()
    session_store(ctx).revoke(session, reason=reason, at=iso(moment), at_ms=int(moment.timestamp() * 1000),
                              by_device=by_device, locked=locked, ended_by=ended_by)
    audit(AuditEvent.SESSION_REVOKED, user_uuid=session.user_uuid, device_id=session.device_id,
          session_id=session.session_id, reason=reason, by_device=by_device, **ended_by.fields())


def end_all_sessions(ctx: AppContext, *, user_uuid: str, reason: str, locked: bool = False,
                     except_session_id: str | None = None, ended_by: EndedBy = NOT_SAID) -> int:
    """End every session of the user that is still active (but `except_session_id`): those of the
    consistent presence read, then any other the user index lists; `locked` marks them ended by an
    account lock, `ended_by` says who ended them. Returns how many were ended."""
    store = session_store(ctx)
    listed = [store.get(e.session_id) for e in store.get_presence(user_uuid).entries.values()]
    ended: set[str] = set()
    for session in [*filter(None, listed), *list_user_sessions(ctx, user_uuid=user_uuid)]:
        if session.status == SESSION_ACTIVE and session.session_id not in ended \
                and session.session_id != except_session_id:
            revoke_session(ctx, session=session, reason=reason, locked=locked, ended_by=ended_by)
            ended.add(session.session_id)
    return len(ended)


def erase_user_records(ctx: AppContext, *, user_uuid: str) -> None:
    """Delete the user's presence record, login history and audit trail (account deletion, after
    end_all_sessions). The ended session records stay until their TTL, so that an old token
    still meets 401 session_revoked with the reason account_deleted, but with an empty device
    name and without the IP addresses and user agents they kept. Idempotent: a record already
    stripped (as the user index shows it) is not written again."""
    store = session_store(ctx)
    store.delete_presence(user_uuid)
    history_store(ctx).delete_all(user_uuid)
    for session in store.list_for_user(user_uuid):
        if session.device_name or session.ip or session.user_agent:
            store.forget_personal_details(session.session_id)


def end_device_session(ctx: AppContext, *, user_uuid: str, device_id: str, reason: str,
                       by_device: str | None, ended_by: EndedBy = NOT_SAID) -> bool:
    """End the live session of one device, if it has one; True if one was ended."""
    store = session_store(ctx)
    entry = store.get_presence(user_uuid).entries.get(device_id)
    session = store.get(entry.session_id) if entry else None
    if session is None or session.status != SESSION_ACTIVE:
        return False
    revoke_session(ctx, session=session, reason=reason, by_device=by_device, ended_by=ended_by)
    return True


def logout(ctx: AppContext, *, principal: Principal, ended_by: EndedBy = NOT_SAID) -> None:
    """The caller's own logout (reason logged_out, by its device); `ended_by` names the app whose
    RP-initiated logout it is, if one asked."""
    revoke_session(ctx, session=principal.session, reason=RevokeReason.LOGGED_OUT, by_device=principal.device_id,
                   ended_by=ended_by)


def logout_all(ctx: AppContext, *, principal: Principal, include_current: bool) -> None:
    """End the caller's sessions: every live one from the consistent presence read, then any
    other still marked active in the user index (sessions of expired presence entries)."""
    store = session_store(ctx)
    listed = [store.get(e.session_id) for e in store.get_presence(principal.user_uuid).entries.values()]
    for session in [*filter(None, listed), *list_user_sessions(ctx, user_uuid=principal.user_uuid)]:
        if session.status != SESSION_ACTIVE or (session.session_id == principal.session_id and not include_current):
            continue
        reason = RevokeReason.LOGGED_OUT if session.session_id == principal.session_id else RevokeReason.REMOTE_LOGOUT
        revoke_session(ctx, session=session, reason=reason, by_device=principal.device_id)


def revoke_own_session(ctx: AppContext, *, principal: Principal, session_id: str) -> None:
    session = session_store(ctx).get(session_id)
    if session is None or session.user_uuid != principal.user_uuid:
        raise SessionNotFound()
    if session.status == SESSION_ACTIVE:
        reason = RevokeReason.LOGGED_OUT if session_id == principal.session_id else RevokeReason.REMOTE_LOGOUT
        revoke_session(ctx, session=session, reason=reason, by_device=principal.device_id)


# --- ends by time: the sweeper (SPEC §11: every session end has its event) ---------------
# A session that reaches its idle timeout or max lifetime with no request ends without a write; the
# sweeper of each process finds those due in the sparse index of active sessions by `ends_at`, and
# ends each with its event in one transaction (only if it still is over: a request that used it
# meanwhile wins; of several processes ending it at once, one does).

ENDING_SHARDS = 8  # the index's partitions: writes of every touch spread over them


def ending_shard(session_id: str) -> str:
    return f"live#{int(session_id[:8], 16) % ENDING_SHARDS}"


def sweep_ended(ctx: AppContext) -> int:
    """End, with their events, the active sessions whose idle timeout or max lifetime has passed;
    how many this call ended. One Query per shard, one read and one transaction per session due."""
    store, now, ended = session_store(ctx), _epoch(ctx), 0
    for shard in range(ENDING_SHARDS):
        for session_id in store.due(f"live#{shard}", now=now):
            session = store.get(session_id)
            reason = session and session.status == SESSION_ACTIVE and _end_reason(ctx, session, now)
            if not session or not reason:
                continue  # ended already, or used since the index was written
            moment = ctx.now()
            if store.end_over(session, reason=reason, at=iso(moment), at_ms=int(moment.timestamp() * 1000),
                              idle_cutoff=liveness(ctx).idle_cutoff(now)):
                ended += 1
    return ended


# --- reading ---------------------------------------------------------------------------

def list_user_sessions(ctx: AppContext, *, user_uuid: str) -> list[SessionRecord]:
    return session_store(ctx).list_for_user(user_uuid)


def session_page(ctx: AppContext, *, user_uuid: str, limit: int, cursor: str | None,
                 include_ended: bool) -> tuple[list[SessionRecord], str | None]:
    """One page of the user's sessions, newest first: only the live ones unless `include_ended`."""
    now = _epoch(ctx)
    return _sealed_page(ctx, listing="sessions", user_uuid=user_uuid, cursor=cursor,
                        read=lambda position: session_store(ctx).page_for_user(
                            user_uuid, limit=limit, cursor=position,
                            keep=lambda session: include_ended or _end_reason(ctx, session, now) is None))


def _sealed_page(ctx: AppContext, *, listing: str, user_uuid: str, cursor: str | None,
                 read: Callable[[str | None], tuple[list[Any], str | None]]) -> tuple[list[Any], str | None]:
    """The page `read` gives at the position `cursor` was sealed around (common/cursors.py), and the next
    page's cursor sealed alike; 400 invalid_field for a cursor this server did not seal for this listing
    of this account (SPEC §4, §15: a forged, edited or other account's cursor)."""
    position = None
    if cursor:
        position = cursors.open_sealed(cursor, secrets=ctx.refresh_secrets, listing=listing, user_uuid=user_uuid)
        if position is None:
            raise InvalidField("cursor", "The cursor is not valid.")
    try:
        items, next_position = read(position)
    except BadCursor:  # sealed by this server around a position its store no longer reads (a release ago)
        raise InvalidField("cursor", "The cursor is not valid.") from None
    if next_position is None:
        return items, None
    return items, cursors.seal(next_position, secrets=ctx.refresh_secrets, listing=listing, user_uuid=user_uuid)


def session_status(ctx: AppContext, session: SessionRecord) -> tuple[str, str | None]:
    """("active" | "revoked" | "expired", reason) as of now."""
    reason = _end_reason(ctx, session, _epoch(ctx))
    if reason is None:
        return "active", None
    return ("revoked" if session.status != SESSION_ACTIVE else "expired"), reason


def read_presence(ctx: AppContext, *, user_uuid: str) -> Presence:
    return session_store(ctx).get_presence(user_uuid)


def presence_read(ctx: AppContext, *, user_uuid: str) -> KeyRead[Presence]:
    """The user's presence record, for a caller's batch read (common/batch_read.py)."""
    return KeyRead(ctx.tables.presence, SessionStore.presence_key(user_uuid),
                   lambda item: SessionStore.presence_from_item(user_uuid, item))


def live_devices(ctx: AppContext, *, user_uuid: str, presence: Presence | None = None) -> list[PresenceEntry]:
    """The user's logged-in devices as of now, from `presence` if the caller read it already."""
    if presence is None:
        presence = session_store(ctx).get_presence(user_uuid)
    return presence.live(now=_epoch(ctx), liveness=liveness(ctx))


def record_attempt(ctx: AppContext, *, user_uuid: str, result: HistoryResult, device_id: str | None, ip: str | None,
                   user_agent: str | None, keep: bool = True) -> None:
    """One login attempt into the user's history; `keep=False` costs the same and stores nothing."""
    history_store(ctx).record(keep=keep, user_uuid=user_uuid, at=ctx.now(), result=result.value,
                              device_id=device_id, ip=ip, user_agent=(user_agent or "")[:256] or None)


def history_page(ctx: AppContext, *, user_uuid: str, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    """One page of the account's history, newest first (its cursors sealed for it)."""
    return _sealed_page(ctx, listing="history", user_uuid=user_uuid, cursor=cursor,
                        read=lambda position: history_store(ctx).page(user_uuid=user_uuid, limit=limit,
                                                                      cursor=position))


def record_operator_action(ctx: AppContext, *, user_uuid: str, action: str, details: dict) -> None:
    """An operator's action on the account (SPEC §15), in its history and its audit trail."""
    history_store(ctx).record_operator_action(user_uuid=user_uuid, at=ctx.now(), action=action, details=details)


def audit_page(ctx: AppContext, *, user_uuid: str, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    """One page of the operator actions on the account, newest first (its cursors sealed for it)."""
    return _sealed_page(ctx, listing="audit", user_uuid=user_uuid, cursor=cursor,
                        read=lambda position: history_store(ctx).audit_page(user_uuid=user_uuid, limit=limit,
                                                                            cursor=position))


def own_session(ctx: AppContext, *, user_uuid: str, session_id: str) -> SessionRecord:
    """The user's session `session_id` (live or ended, while its record is kept); SessionNotFound if
    there is none or it is someone else's."""
    session = session_store(ctx).get(session_id)
    if session is None or session.user_uuid != user_uuid:
        raise SessionNotFound()
    return session


def session_owner(ctx: AppContext, *, session_id: str) -> str | None:
    """Whose session `session_id` is (live or ended, while its record is kept)."""
    session = session_store(ctx).get(session_id)
    return session.user_uuid if session else None


# --- live events ---------------------------------------------------------------------------

_watcher_lock = threading.Lock()


def events_after(ctx: AppContext, seq: str) -> Iterator[SessionEnded]:
    """The session ends recorded after `seq` in the security events feed, oldest first, read page
    by page as they are consumed (SPEC §11)."""
    return FeedStore(ctx.dynamodb, ctx.tables.security_events).after(seq)


def grant_ending(ctx: AppContext, *, session_id: str, user_uuid: str, device_id: str, client_id: str,
                 grant_id: str, reason: str) -> GuardedWrite:
    """The outbox row of one app's grant on a live session ending (SPEC §14), for the revocation's
    own transaction, so that no revocation goes untold: that app's CAEP streams and Back-Channel
    Logout hear it, no session stream or other app does."""
    ending = Ending(session_id=session_id, user_uuid=user_uuid, device_id=device_id, reason=reason,
                    client_id=client_id, grant_id=grant_id)
    item = event_put(ctx.tables.security_events, ending, at_ms=int(ctx.now().timestamp() * 1000))
    return GuardedWrite(item=item, refusal=lambda: RuntimeError("an event's seq is new"))


def event_feed(ctx: AppContext) -> EventFeed:
    """The process's one reader of the security events feed for this app context (not yet reading:
    it starts with its first listener or waiter)."""
    with _watcher_lock:
        feed = ctx.event_feed
        if not isinstance(feed, EventFeed):  # None until first use
            feed = ctx.event_feed = EventFeed(FeedStore(ctx.dynamodb, ctx.tables.security_events),
                                              interval=ctx.settings.events_poll_interval,
                                              now=lambda: ctx.now().timestamp())
        return feed


def session_watcher(ctx: AppContext) -> SessionWatcher:
    """The process's one watcher for this app context, listening to the feed from first use."""
    feed = event_feed(ctx)
    with _watcher_lock:
        watcher = ctx.session_watcher
        if isinstance(watcher, SessionWatcher):
            return watcher
        watcher = ctx.session_watcher = SessionWatcher(
            fetch_states=session_store(ctx).batch_states, caps=stream_caps(ctx), now=lambda: ctx.now().timestamp(),
            end_reason=lambda state: _state_end_reason(ctx, state, _epoch(ctx)),
            deadline=lambda state: _state_deadline(ctx, state))
    feed.listen(watcher.on_events)
    return watcher


def _state_deadline(ctx: AppContext, state: dict) -> int:
    """The first moment a session with these fields ends without a write: its max lifetime or idle timeout."""
    rule = liveness(ctx)
    return min(int(state["expires_epoch"]), int(state["last_seen_epoch"]) + rule.idle_timeout + rule.touch_every)


HELD_STREAMS = 256  # per process when every open stream holds a server thread


def stream_caps(ctx: AppContext) -> StreamCaps:
    """Under citylogin's gunicorn worker (no thread per stream) by default what the process's open
    files allow; under a server where each holds a thread, HELD_STREAMS."""
    settings, serving = ctx.settings, server_kind()
    per_process = settings.events_max_streams or (serving.stream_files if serving.parks_streams else HELD_STREAMS)
    return StreamCaps(per_session=settings.events_max_streams_per_session,
                      per_user=settings.events_max_streams_per_user, per_process=per_process)


def event_stream(ctx: AppContext, *, principal: Principal) -> LiveStream:
    """Server-Sent Events for one session (sessions.events.LiveStream). 503 too_many_streams, before
    the stream starts, when the process holds its cap of streams."""
    session = principal.session
    try:
        subscription = session_watcher(ctx).subscribe(
            principal.session_id, principal.user_uuid,
            check_at=_state_deadline(ctx, {"expires_epoch": session.expires_epoch,
                                           "last_seen_epoch": session.last_seen_epoch}))
    except TooManyStreams:
        raise StreamsFull() from None
    return LiveStream(subscription, now=lambda: ctx.now().timestamp(), heartbeat=ctx.settings.events_heartbeat,
                      token_expires=principal.token_expires_epoch)
