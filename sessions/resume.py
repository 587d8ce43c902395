"""Access tokens of a live session for another tab of the same browser (POST /session/resume): the device
proved it holds its key (flows.session_resume), so its live session lends the tab an access token. The
session keeps one rotating refresh token, in the tab that has it: a resumed tab gets none, and resumes
again when its access token runs out. No Flask here."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sessions import binding
from sessions.models import SessionRecord
from common.runtime.context import AppContext


@dataclass(frozen=True)
class LentToken:
    access_token: str
    token_type: str
    expires_in: int


def lent_access_token(ctx: AppContext, session: SessionRecord) -> LentToken:
    """An access token of `session`, bound as the session is (its `cnf` names the session's key), that
    never outlives the session's max lifetime; its idle timeout still ends it (every use reads the
    session)."""
    now = ctx.now()
    issued = int(now.timestamp())
    # Its own jti: a session's tokens from refreshes are <sid>.<generation>; a lent one is not one of them.
    claims: dict[str, Any] = {"sub": session.user_uuid, "sid": session.session_id, "did": session.device_id,
                    "jti": f"{session.session_id}.lent.{uuid.uuid4().hex}"}
    if session.jkt:
        claims["cnf"] = {"jkt": session.jkt}
    ttl = max(1, min(ctx.settings.access_token_ttl, session.expires_epoch - issued))
    return LentToken(access_token=ctx.jwt.sign(claims, ttl_seconds=ttl, now=now),
                     token_type=binding.DPOP if session.jkt else "Bearer", expires_in=ttl)
