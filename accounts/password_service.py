"""Passwords after registration: a change by the logged-in user and a reset through an e-mailed
link (SPEC §4). The change checks the current password under the login lockout; both end the
account's sessions through session_manager's service. A reset also removes the account's passkeys:
it says the password may be in other hands, and a passkey added with it must not outlive it."""
from __future__ import annotations

import logging
from concurrent.futures import Future

from accounts import credential_service as credentials
from accounts import passkey_service as passkeys
from accounts import user_service as users
from accounts.models import ChangePasswordRequest, UserRecord
from common.audit import AuditEvent, audit
from common.background import background
from common.caller import Caller
from common.context import AppContext
from common.crypto import new_token, token_digest
from common.errors import BadRequest, ErrorCode, TooManyRequests
from common.notifier import localized_message, mail_time
from common.one_time_tokens import OneTimeTokenStore
from common.rate_limits import RateLimitStore
from sessions import service as sessions
from sessions.models import Principal, RevokeReason

RESET_KIND = "password_reset"
RESET_PURPOSE = "password-reset"
RESET_TTL = 1800  # SPEC §4: a reset link lives 30 minutes
RESET_WINDOW = 3600
RESETS_PER_ADDRESS = 5  # per RESET_WINDOW
RESETS_PER_IP = 20

log = logging.getLogger(__name__)


class InvalidResetToken(BadRequest):
    code, detail = ErrorCode.INVALID_RESET_TOKEN, "This reset link is not valid, has expired or was already used."


AccountGone = credentials.AccountGone


def token_store(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


def _now(ctx: AppContext) -> int:
    return int(ctx.now().timestamp())


# --- change (Bearer) --------------------------------------------------------------------------

def change_password(ctx: AppContext, *, principal: Principal, request: ChangePasswordRequest, caller: Caller) -> None:
    """Replace the caller's password after checking the current one (or a passkey) under the lockout; end the
    other sessions (reason password_changed) unless asked not to."""
    user = users.get_user(ctx, user_uuid=principal.user_uuid)
    if user is None or user.deleting:
        raise AccountGone()
    _, had_failures = credentials.reauthenticate(ctx, user_uuid=user.user_uuid, username=user.username,
                                                 secret=request.secret(), caller=caller, flow="password_change")
    if not users.replace_password_hash(ctx, user_uuid=user.user_uuid,
                                       password_hash=ctx.passwords.hash(request.new_password)):
        raise AccountGone()
    if had_failures:
        credentials.clear_failures(ctx, username=user.username)
    ended = 0
    if request.logout_other_sessions:
        ended = sessions.end_all_sessions(ctx, user_uuid=user.user_uuid, reason=RevokeReason.PASSWORD_CHANGED,
                                          except_session_id=principal.session_id)
    audit(AuditEvent.PASSWORD_CHANGED, user_uuid=user.user_uuid, device_id=principal.device_id, sessions_ended=ended,
          ip=caller.ip)
    ctx.notifier.notify(localized_message("password_changed", user_uuid=user.user_uuid, email=user.email,
                                          locale=user.locale, time=mail_time(ctx.now(), user.locale)))


# --- reset through an e-mailed link ------------------------------------------------------------

def _address_key(email: str) -> str:
    return "reset#addr:" + token_digest(email.casefold(), purpose="reset-address")  # no address in the table


def _take_reset_allowance(ctx: AppContext, *, email: str, ip: str | None) -> None:
    store, now = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits), _now(ctx)
    for key, limit in ((_address_key(email), RESETS_PER_ADDRESS), (f"reset#ip:{ip or 'unknown'}", RESETS_PER_IP)):
        if store.take(key, limit=limit, window_seconds=RESET_WINDOW, now=now) is None:
            raise TooManyRequests("Too many password reset requests; try again later.",
                                  retry_after=RESET_WINDOW - now % RESET_WINDOW)


def forget_reset_allowance(ctx: AppContext, *, email: str) -> None:
    """Delete the reset counters of `email` (account deletion): this window's and the last one's,
    the only ones not yet expired."""
    window = _now(ctx) // RESET_WINDOW
    RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).delete_windows(_address_key(email),
                                                                        windows=(window - 1, window))


def reset_link(ctx: AppContext, token: str) -> str:
    return f"{ctx.public_url().rstrip('/')}/#reset={token}"


def request_password_reset(ctx: AppContext, *, email: str, caller: Caller) -> None:
    """Send a reset link if an account has `email`. The lookup and the sending run off the
    response path, so the answer and its time are the same whether or not one has (SPEC §4)."""
    _take_reset_allowance(ctx, email=email, ip=caller.ip)
    sent = background(ctx).submit(_send_reset_link, ctx, email=email)
    sent.add_done_callback(_log_unsent)


def _send_reset_link(ctx: AppContext, *, email: str) -> None:
    user = users.find_user_by_email(ctx, email=email)
    if user is not None:
        mail_reset_link(ctx, user=user)


def mail_reset_link(ctx: AppContext, *, user: UserRecord) -> None:
    """Mail `user` a link that sets a new password (asked by them, or by an operator for them)."""
    token = new_token(32)
    # The link holds the reset generation read with the user: a reset or a password change since voids it.
    token_store(ctx).create(digest=token_digest(token, purpose=RESET_PURPOSE), kind=RESET_KIND,
                            expires_epoch=_now(ctx) + RESET_TTL,
                            data={"user_uuid": user.user_uuid, "reset_generation": user.reset_generation})
    audit(AuditEvent.PASSWORD_RESET_REQUESTED, user_uuid=user.user_uuid)
    ctx.notifier.notify(localized_message("password_reset", user_uuid=user.user_uuid, email=user.email,
                                          locale=user.locale, link=reset_link(ctx, token)))


def _log_unsent(done: Future) -> None:
    if done.exception() is not None:
        log.error("password reset link not sent", exc_info=done.exception())


def confirm_password_reset(ctx: AppContext, *, token: str, new_password: str) -> None:
    """Use up the reset token and set the new password in one transaction, which voids every other
    reset link; every session ends (reason password_reset), then every passkey goes (one being added
    by a session that has ended is refused), the devices stay. A link made before the last reset or
    password change is void (InvalidResetToken)."""
    store, digest, now = token_store(ctx), token_digest(token, purpose=RESET_PURPOSE), _now(ctx)
    pending = store.get(digest=digest, kind=RESET_KIND, now=now)
    if pending is None:
        raise InvalidResetToken()
    user_uuid = pending["user_uuid"]
    if not users.reset_password(ctx, user_uuid=user_uuid, password_hash=ctx.passwords.hash(new_password),
                                reset_generation=pending.get("reset_generation", 0),
                                token_use=store.consume_item(digest=digest, kind=RESET_KIND, now=now)):
        raise InvalidResetToken()  # used meanwhile, void (a reset or change since), or the account is gone
    ended = sessions.end_all_sessions(ctx, user_uuid=user_uuid, reason=RevokeReason.PASSWORD_RESET)
    removed = passkeys.delete_all_passkeys(ctx, user_uuid=user_uuid)
    user = users.get_user(ctx, user_uuid=user_uuid)
    if user is not None:
        credentials.clear_failures(ctx, username=user.username)  # the owner is back in: no lockout left
        when = mail_time(ctx.now(), user.locale)
        if removed:
            told = localized_message("password_changed", texts="password_was_reset_passkeys_removed",
                                     user_uuid=user_uuid, email=user.email, locale=user.locale, passkeys=removed,
                                     time=when)
        else:
            told = localized_message("password_changed", texts="password_was_reset", user_uuid=user_uuid,
                                     email=user.email, locale=user.locale, time=when)
        ctx.notifier.notify(told)
    audit(AuditEvent.PASSWORD_RESET, user_uuid=user_uuid, sessions_ended=ended, passkeys_removed=removed)
