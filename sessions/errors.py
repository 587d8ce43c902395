"""The sessions domain's refusals: what a request with a token or session that does not count gets
(401, 403 account_locked, 404, 410 account_deleted, 503 too_many_streams)."""
from __future__ import annotations

from typing import Any

from common.errors import ErrorCode, Forbidden, Gone, NotFound, ServiceUnavailable, Unauthorized
from sessions.models import RevokeReason, SessionRecord


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


def ended_error(session: SessionRecord, reason: str, *, app_token: bool = False) -> Exception:
    # A session ended by an account lock carries `locked`, so the guard can answer 403
    # account_locked from the one session read, without reading the user (SPEC §4 /account). An app's
    # access token (`app_token`: userinfo) is refused as RFC 6750 §3 says, 401 with the Bearer challenge,
    # as after any other ending (reason admin, admin_action locked).
    if session.locked and not app_token:
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

