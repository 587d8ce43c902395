""""Wasn't you?": the "new sign-in" and "new device" messages carry a link that removes that
device in one click (POST /account/not_me). The link's token is single-use, lives 7 days and
is stored only as its digest; it is written in the same transaction as the event it reports."""
from __future__ import annotations

from dataclasses import dataclass

from common.errors import BadRequest, ErrorCode, StorageUnavailable
from common.crypto.tokens import new_token, token_digest
from common.database.guarded_write import GuardedWrite
from common.database.one_time_tokens import OneTimeTokenStore
from devices import service as devices
from accounts.models import NotMeResult
from devices.models import DEVICE_STATUS_ACTIVE
from common.mail.message import Link
from sessions import service as sessions
from sessions.models import RevokeReason
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext

KIND = "not_me"
PURPOSE = "not-me"
TTL_SECONDS = 7 * 86400


class InvalidNotMeToken(BadRequest):
    code, detail = ErrorCode.INVALID_NOT_ME_TOKEN, "This link is unknown, already used or expired."


@dataclass(frozen=True)
class NotMeLink:
    write: GuardedWrite  # to commit with the sign-in or the new device it reports
    url: Link  # rendered by the process that delivers the mail


def _store(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


def new_link(ctx: AppContext, *, user_uuid: str, device_id: str, session_id: str | None = None) -> NotMeLink:
    """A link removing the device `device_id`; for a screen (the device authorization grant: a device that
    is nothing but its session `session_id`), one signing that session out."""
    token = new_token()
    item = _store(ctx).create_item(digest=token_digest(token, purpose=PURPOSE), kind=KIND,
                                   expires_epoch=ctx.epoch() + TTL_SECONDS,
                                   data={"user_uuid": user_uuid, "device_id": device_id,
                                         **({"screen_session": session_id} if session_id else {})})
    # A refused put is a digest already stored: a collision of random tokens, worth a retry.
    return NotMeLink(write=GuardedWrite(item=item, refusal=StorageUnavailable),
                     url=Link(PURPOSE, token))


def remove_device(ctx: AppContext, *, token: str, end_all_sessions: bool) -> NotMeResult:
    """Use up the link's token, unbind its device (certificate into the CRL, session ended with
    reason device_unbound; even the account's last device: the person says it is not theirs) and,
    if asked, end every other session of the account (remote_logout)."""
    pending = _store(ctx).consume(digest=token_digest(token, purpose=PURPOSE), kind=KIND, now=ctx.epoch())
    if pending is None:
        raise InvalidNotMeToken()
    user_uuid, device_id = pending["user_uuid"], pending["device_id"]
    if pending.get("screen_session"):
        device_name, removed = _end_screen(ctx, user_uuid=user_uuid, session_id=str(pending["screen_session"]))
    else:
        device_name, removed = _unbind(ctx, user_uuid=user_uuid, device_id=device_id)
    ended = sessions.end_all_sessions(ctx, user_uuid=user_uuid, reason=RevokeReason.REMOTE_LOGOUT) \
        if end_all_sessions else 0
    audit(AuditEvent.NOT_ME, user_uuid=user_uuid, device_id=device_id, device_removed=removed, sessions_ended=ended)
    return NotMeResult(device_id=device_id, device_name=device_name, device_removed=removed, sessions_ended=ended)


def _unbind(ctx: AppContext, *, user_uuid: str, device_id: str) -> tuple[str, bool]:
    """Unbind the device (even the account's last: the person says it is not theirs): its name, and
    whether this removed it."""
    record = devices.device_store(ctx).get(user_uuid=user_uuid, device_id=device_id)
    if record is None:  # the account or the device is gone: nothing left to remove
        raise InvalidNotMeToken()
    removed = record.status == DEVICE_STATUS_ACTIVE
    if removed:
        devices.unbind(ctx, user_uuid=user_uuid, device_id=device_id, by_device=None, confirm_last=True)
    return record.device_name, removed


def _end_screen(ctx: AppContext, *, user_uuid: str, session_id: str) -> tuple[str, bool]:
    """Sign out the screen whose approval the link reported (reason device_unbound: the person removed
    it): its name, and whether this ended it."""
    session = sessions.session_store(ctx).get(session_id)
    if session is None or session.user_uuid != user_uuid:  # the account is gone, or the record expired away
        raise InvalidNotMeToken()
    live = sessions.session_status(ctx.settings, session, ctx.epoch())[0] == "active"
    if live:
        sessions.revoke_session(ctx, session=session, reason=RevokeReason.DEVICE_UNBOUND)
    return session.device_name, live
