"""Reading a user's sessions, presence and history: pages under sealed cursors, a session's status,
the login attempts and operator actions recorded (SPEC §4, §15)."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from common.config import Settings
from common.errors import InvalidField
from common.database.batch_read import KeyRead
from common.database.dynamo import TableNames
from common.database.guarded_write import GuardedWrite
from common.keys.ring_reader import RefreshSecrets
from sessions import cursors
from sessions.context import end_reason, history_store, liveness, session_store
from sessions.errors import SessionNotFound
from sessions.history_store import BadCursor
from sessions.models import SESSION_ACTIVE, HistoryResult, Presence, PresenceEntry, SessionRecord
from sessions.store import SessionStore
from common.runtime.context import AppContext


def list_user_sessions(ctx: AppContext, *, user_uuid: str) -> list[SessionRecord]:
    return session_store(ctx).list_for_user(user_uuid)


def session_page(ctx: AppContext, *, user_uuid: str, limit: int, cursor: str | None,
                 include_ended: bool) -> tuple[list[SessionRecord], str | None]:
    """One page of the user's sessions, newest first: only the live ones unless `include_ended`."""
    now = ctx.epoch()
    return _sealed_page(ctx.refresh_secrets, listing="sessions", user_uuid=user_uuid, cursor=cursor,
                        read=lambda position: session_store(ctx).page_for_user(
                            user_uuid, limit=limit, cursor=position,
                            keep=lambda session: include_ended or end_reason(ctx.settings, session, now) is None))


def _sealed_page(secrets: RefreshSecrets, *, listing: str, user_uuid: str, cursor: str | None,
                 read: Callable[[str | None], tuple[list[Any], str | None]]) -> tuple[list[Any], str | None]:
    """The page `read` gives at the position `cursor` was sealed around (sessions/cursors.py), and the next
    page's cursor sealed alike; 400 invalid_field for a cursor this server did not seal for this listing
    of this account (SPEC §4, §15: a forged, edited or other account's cursor)."""
    position = None
    if cursor:
        position = cursors.open_sealed(cursor, secrets=secrets, listing=listing, user_uuid=user_uuid)
        if position is None:
            raise InvalidField("cursor", "The cursor is not valid.")
    try:
        items, next_position = read(position)
    except BadCursor:  # sealed by this server around a position its store no longer reads (a release ago)
        raise InvalidField("cursor", "The cursor is not valid.") from None
    if next_position is None:
        return items, None
    return items, cursors.seal(next_position, secrets=secrets, listing=listing, user_uuid=user_uuid)


def session_status(settings: Settings, session: SessionRecord, now: int) -> tuple[str, str | None]:
    """("active" | "revoked" | "expired", reason) as of `now` (epoch seconds)."""
    reason = end_reason(settings, session, now)
    if reason is None:
        return "active", None
    return ("revoked" if session.status != SESSION_ACTIVE else "expired"), reason


def read_presence(ctx: AppContext, *, user_uuid: str) -> Presence:
    return session_store(ctx).get_presence(user_uuid)


def presence_read(tables: TableNames, *, user_uuid: str) -> KeyRead[Presence]:
    """The user's presence record, for a caller's batch read (common/database/batch_read.py)."""
    return KeyRead(tables.presence, SessionStore.presence_key(user_uuid),
                   lambda item: SessionStore.presence_from_item(user_uuid, item))


def live_devices(ctx: AppContext, *, user_uuid: str, presence: Presence | None = None) -> list[PresenceEntry]:
    """The user's logged-in devices as of now, from `presence` if the caller read it already."""
    if presence is None:
        presence = session_store(ctx).get_presence(user_uuid)
    return presence.live(now=ctx.epoch(), liveness=liveness(ctx.settings))


def record_attempt(ctx: AppContext, *, at: datetime, user_uuid: str, result: HistoryResult, device_id: str | None,
                   ip: str | None, user_agent: str | None, keep: bool = True) -> str:
    """One login attempt, made `at`, into the user's history, and its row's key; `keep=False` costs the
    same and stores nothing."""
    return history_store(ctx).record(keep=keep, user_uuid=user_uuid, at=at, result=result.value,
                                     device_id=device_id, ip=ip, user_agent=(user_agent or "")[:256] or None)


def history_row(ctx: AppContext, *, user_uuid: str, result: HistoryResult, device_id: str | None, ip: str | None,
                user_agent: str | None, provider: str | None = None) -> GuardedWrite:
    """A history row (now) as an entry of another domain's transaction: it is there if and only if what it
    records committed (say, an identity linked, with its `provider`). No condition: it refuses nothing."""
    item = history_store(ctx).put_item(user_uuid=user_uuid, at=ctx.now(), result=result.value, device_id=device_id,
                                       ip=ip, user_agent=(user_agent or "")[:256] or None, provider=provider)
    return GuardedWrite(item=item, refusal=lambda: RuntimeError("a history row has no condition"))


def mark_continued(ctx: AppContext, *, user_uuid: str, event_key: str) -> bool:
    """The history row of a login asked "in use elsewhere - continue?" (`event_key`, a 409
    concurrent_login's) says the person continued; False if the row is gone."""
    return history_store(ctx).mark_continued(user_uuid=user_uuid, event_key=event_key)


def history_page(ctx: AppContext, *, user_uuid: str, limit: int,
                 cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the account's history, newest first (its cursors sealed for it)."""
    return _sealed_page(ctx.refresh_secrets, listing="history", user_uuid=user_uuid, cursor=cursor,
                        read=lambda position: history_store(ctx).page(user_uuid=user_uuid, limit=limit,
                                                                      cursor=position))


def record_operator_action(ctx: AppContext, *, user_uuid: str, action: str, details: dict[str, Any]) -> None:
    """An operator's action on the account (SPEC §15), in its history and its audit trail."""
    history_store(ctx).record_operator_action(user_uuid=user_uuid, at=ctx.now(), action=action, details=details)


def audit_page(ctx: AppContext, *, user_uuid: str, limit: int,
               cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the operator actions on the account, newest first (its cursors sealed for it)."""
    return _sealed_page(ctx.refresh_secrets, listing="audit", user_uuid=user_uuid, cursor=cursor,
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
