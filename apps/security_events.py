"""CAEP 1.0 session-revoked Security Event Tokens (RFC 8417, SPEC §11): one per session end per app,
the same bytes each time it is delivered again (its jti is the event's feed seq and the app's id).
The end of one app's grant on a live session (SPEC §14) is told to that app alone, by the same event
with the same subject and the grant named (GRANT_CLAIM): a receiver that knows it refuses that grant's
access tokens only (their jti is `<grant_id>.<generation>`), one that does not the session's."""
from __future__ import annotations

from apps.models import SESSION_REVOKED_EVENT, AppRecord
from sessions.models import SEQ, SessionEnded
from web.context import AppContext
from typing import Any

SESSION_REVOKED = SESSION_REVOKED_EVENT
# An event claim of citylogin's own (CAEP events may carry more claims; receivers ignore unknown ones).
GRANT_CLAIM = "citylogin_grant_id"


def jti(event_seq: str, app: AppRecord) -> str:
    return f"{event_seq}.{app.client_id}"


def seq_of(jti_: str, app: AppRecord) -> str | None:
    """The feed seq a jti of this app names, or None if it is not one."""
    seq, dot, client_id = jti_.partition(".")
    return seq if dot and client_id == app.client_id and SEQ.match(seq) else None


def session_revoked(ctx: AppContext, event: SessionEnded, app: AppRecord) -> str:
    """The signed SET telling `app` that `event`'s session ended (or, naming the grant, that the app's
    grant on it did)."""
    def opaque(value: str) -> dict[str, Any]:
        return {"format": "opaque", "id": value}

    revoked = {
        "subject": {"format": "complex", "session": opaque(event.session_id), "user": opaque(event.user_uuid),
                    "device": opaque(event.device_id)},
        "event_timestamp": event.event_epoch, "initiating_entity": event.initiating_entity,
        "reason_admin": {"en": event.reason}}
    if event.grant_id:
        revoked[GRANT_CLAIM] = event.grant_id
    claims = {"aud": app.client_id, "jti": jti(event.seq, app), "iat": event.event_epoch,
              "events": {SESSION_REVOKED: revoked}}
    return ctx.jwt.sign_event(claims)
