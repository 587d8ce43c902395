"""What the sessions domain stores about a person, as stored, for their data export
(flows/data_export.py): their sessions, their presence record, and their history with its audit
trail (the operators' actions on the account)."""
from __future__ import annotations

from typing import Any

from common.database import dynamo
from common.database.batch_read import KeyRead, read_together
from sessions.context import history_store, session_store
from sessions.history_store import HISTORY_DAYS
from sessions.store import SESSION_RETENTION_SECONDS, SessionStore
from common.runtime.context import AppContext

# How long the history and an ended session are kept, for the export's words (flows/export_retention.py)
__all__ = ["HISTORY_DAYS", "SESSION_RETENTION_SECONDS", "history_items", "session_items"]


def session_items(ctx: AppContext, *, user_uuid: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The user's sessions, live and ended (kept a week past their end), and their presence item."""
    presence = KeyRead(ctx.tables.presence, SessionStore.presence_key(user_uuid), dynamo.from_item)
    return session_store(ctx).items(user_uuid), read_together(ctx.dynamodb, {"presence": presence})["presence"]


def history_items(ctx: AppContext, *, user_uuid: str) -> list[dict[str, Any]]:
    """Every row of the user's history (sign-in attempts, operator actions), then of their audit trail."""
    return history_store(ctx).items(user_uuid)
