"""The sessions domain on an app context: its stores, and the liveness rule (of the settings) that says
whether, and why, a session is over as of now."""
from __future__ import annotations

from common.config import Settings
from sessions.history_store import HistoryStore
from sessions.models import Liveness, SessionRecord
from sessions.store import SessionStore
from common.runtime.context import AppContext


def session_store(ctx: AppContext) -> SessionStore:
    return SessionStore(ctx.dynamodb, sessions_table=ctx.tables.sessions, presence_table=ctx.tables.presence,
                        events_table=ctx.tables.security_events)


def history_store(ctx: AppContext) -> HistoryStore:
    return HistoryStore(ctx.dynamodb, ctx.tables.login_history)


def liveness(settings: Settings) -> Liveness:
    return Liveness(idle_timeout=settings.session_idle_timeout)


def end_reason(settings: Settings, session: SessionRecord, now: int) -> str | None:
    return liveness(settings).end_reason(status=session.status, revoked_reason=session.revoked_reason,
                                         expires_epoch=session.expires_epoch,
                                         last_seen_epoch=session.last_seen_epoch, now=now,
                                         unredeemed=bool(session.unredeemed))
