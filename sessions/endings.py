"""Ending sessions: one, a device's, a user's (all of them, or the caller's own logout), and the sweep of
those over by time. Every end writes its event in the same transaction (SPEC §11)."""
from __future__ import annotations

from common.timefmt import iso
from sessions.context import end_reason, history_store, liveness, session_store
from sessions.errors import SessionNotFound
from sessions.listings import list_user_sessions
from sessions.models import NOT_SAID, SESSION_ACTIVE, EndedBy, Principal, RevokeReason, SessionRecord
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext


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
    store.forget_personal_details([session.session_id for session in store.list_for_user(user_uuid)
                                   if session.device_name or session.ip or session.user_agent])


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


def end_screens_of(ctx: AppContext, *, client_id: str, reason: str) -> int:
    """End the live sessions of the app's screens (the device authorization grant), each with its event in
    its own transaction, freeing their seats: found by the sparse index of screens by app (one Query of
    the live ones alone), each read again strongly consistent. How many this call ended."""
    store, ended = session_store(ctx), 0
    for session_id in store.screens_of(client_id):
        session = store.get(session_id)
        if session is None or session.screen_of != client_id or session.status != SESSION_ACTIVE:
            continue  # ended since the index was written
        revoke_session(ctx, session=session, reason=reason)
        ended += 1
    return ended


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
    store, now, ended = session_store(ctx), ctx.epoch(), 0
    for shard in range(ENDING_SHARDS):
        for session_id in store.due(f"live#{shard}", now=now):
            session = store.get(session_id)
            reason = session and session.status == SESSION_ACTIVE and end_reason(ctx.settings, session, now)
            if not session or not reason:
                continue  # ended already, or used since the index was written
            moment = ctx.now()
            if store.end_over(session, reason=reason, at=iso(moment), at_ms=int(moment.timestamp() * 1000),
                              idle_cutoff=liveness(ctx.settings).idle_cutoff(now)):
                ended += 1
    return ended
