"""Passwords after registration: a change by the logged-in user and a reset through an e-mailed
link (SPEC §4). The change checks the current password under the login lockout; both end the
account's sessions through session_manager's service. A reset also removes the account's passkeys:
it says the password may be in other hands, and a passkey added with it must not outlive it.

Reset mails to an address are capped per hour, but nobody can keep its owner from a working link:
once the hour's mails are spent, a request mails nothing and keeps the newest link mailed working
(accounts/reset_link_store.py), and only the asking client's own allowance can refuse a request."""
from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

from accounts import credential_service as credentials
from accounts import passkey_service as passkeys
from accounts import user_service as users
from accounts.models import ChangePasswordRequest, UserRecord
from accounts.reset_link_store import RESET_KIND, ResetLinkStore
from common.errors import BadRequest, ErrorCode, TooManyRequests, Unauthorized
from common.crypto.tokens import new_token, token_digest
from common.database.one_time_tokens import OneTimeTokenStore
from common.mail.message import Link
from common.mail.notifier import localized_message, mail_time
from sessions import service as sessions
from sessions.models import Principal, RevokeReason
from common.web.audit import AuditEvent, audit
from common.web.background import background
from common.web.caller import Caller
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore, limit_subject

RESET_PURPOSE = "password-reset"
RESET_TTL = 1800  # SPEC §4: a reset link lives 30 minutes
RESET_WINDOW = 3600
RESETS_PER_ADDRESS = 5  # reset mails per RESET_WINDOW (a budget of the account's address, never a refusal)
RESETS_PER_IP = 20  # reset requests per RESET_WINDOW (429 past it)
RESET_GRACE = 60  # how long past its window a link kept working lasts: servers' clocks differ a little

log = logging.getLogger(__name__)


class InvalidResetToken(BadRequest):
    code, detail = ErrorCode.INVALID_RESET_TOKEN, "This reset link is not valid, has expired or was already used."


AccountGone = credentials.AccountGone


def token_store(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


def reset_link_store(ctx: AppContext) -> ResetLinkStore:
    return ResetLinkStore(ctx.dynamodb, tokens_table=ctx.tables.one_time_tokens, users_table=ctx.tables.users)


# --- change (Bearer) --------------------------------------------------------------------------

class ReauthenticationNeeded(Unauthorized):
    code = ErrorCode.REAUTHENTICATION_REQUIRED
    detail = ("Confirm it is you first: with one of your passkeys, or by signing in again with your provider "
              "(its reauth_token).")


def _set_first_password(ctx: AppContext, *, principal: Principal, user: UserRecord, request: ChangePasswordRequest,
                        caller: Caller) -> None:
    """The first password of an account made with a provider's answer (SPEC §16). The session alone is not
    enough (a session left open on a shared computer must not become a password): a passkey or a reauth token
    (a fresh sign-in with the provider) is asked again, under the lockout; 401 reauthentication_required
    without either. Written only while the account still has none, so it never overwrites one set meanwhile
    (401 invalid_credentials then, as a wrong current password). Other sessions end as at a change; the
    account is told."""
    if request.passkey is None and request.reauth_token is None:
        raise ReauthenticationNeeded()
    _, had_failures = credentials.reauthenticate(ctx, user_uuid=user.user_uuid, username=user.username,
                                                 secret=request.secret(), caller=caller, flow="password_change")
    password_hash = ctx.passwords.hash(request.new_password)
    if not users.set_first_password(ctx, user_uuid=user.user_uuid, password_hash=password_hash):
        raise credentials.InvalidCredentials()
    if had_failures:
        credentials.clear_failures(ctx, username=user.username)
    _changed(ctx, principal=principal, user=user, logout_others=request.logout_other_sessions, caller=caller)


def _changed(ctx: AppContext, *, principal: Principal, user: UserRecord, logout_others: bool, caller: Caller) -> None:
    """After a password is set: the other sessions end (reason password_changed) unless asked not to; audited
    and mailed."""
    ended = 0
    if logout_others:
        ended = sessions.end_all_sessions(ctx, user_uuid=user.user_uuid, reason=RevokeReason.PASSWORD_CHANGED,
                                          except_session_id=principal.session_id)
    audit(AuditEvent.PASSWORD_CHANGED, user_uuid=user.user_uuid, device_id=principal.device_id, sessions_ended=ended,
          ip=caller.ip)
    ctx.notifier.notify(localized_message("password_changed", user_uuid=user.user_uuid, email=user.email,
                                          locale=user.locale, time=mail_time(ctx.now(), user.locale)))


def change_password(ctx: AppContext, *, principal: Principal, request: ChangePasswordRequest, caller: Caller) -> None:
    """Replace the caller's password after checking the current one (or a passkey, or a reauth token) under the
    lockout; end the other sessions (reason password_changed) unless asked not to. An account with no password
    yet sets its first one (_set_first_password)."""
    user = users.get_user(ctx, user_uuid=principal.user_uuid)
    if user is None or user.deleting:
        raise AccountGone()
    if not user.has_password and request.current_password is None:
        return _set_first_password(ctx, principal=principal, user=user, request=request, caller=caller)
    _, had_failures = credentials.reauthenticate(ctx, user_uuid=user.user_uuid, username=user.username,
                                                 secret=request.secret(), caller=caller, flow="password_change")
    if not users.replace_password_hash(ctx, user_uuid=user.user_uuid,
                                       password_hash=ctx.passwords.hash(request.new_password)):
        raise AccountGone()
    if had_failures:
        credentials.clear_failures(ctx, username=user.username)
    _changed(ctx, principal=principal, user=user, logout_others=request.logout_other_sessions, caller=caller)


# --- reset through an e-mailed link ------------------------------------------------------------

def _address_key(email: str) -> str:
    return "reset#addr:" + token_digest(email.casefold(), purpose="reset-address")  # no address in the table


def _take_reset_allowance(ctx: AppContext, *, ip: str | None) -> None:
    """Count the request in the client's own allowance; the only refusal (429) a request can get:
    what others asked for an address never changes the answer (SPEC §4)."""
    now = ctx.epoch()
    if RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take(f"reset#ip:{limit_subject(ip)}", limit=RESETS_PER_IP,
                                                                  window_seconds=RESET_WINDOW, now=now) is None:
        raise TooManyRequests("Too many password reset requests; try again later.",
                              retry_after=RESET_WINDOW - now % RESET_WINDOW)


def forget_reset_allowance(ctx: AppContext, *, email: str) -> None:
    """Delete the per-address reset counters of `email` (account deletion), which earlier releases
    kept: this window's and the last one's, the only ones not yet expired. The mail budget is now
    the account's mail window items, one-time-token items that go with the account's others."""
    window = ctx.epoch() // RESET_WINDOW
    RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).delete_windows(_address_key(email),
                                                                        windows=(window - 1, window))


def reset_link(token: str) -> Link:
    return Link("reset", token)  # rendered by the process that delivers the mail


def request_password_reset(ctx: AppContext, *, email: str, caller: Caller) -> None:
    """Send a reset link if an account has `email`. The lookup, the address's mail budget and the
    sending run off the response path, so the answer and its time are the same whether or not one
    has, and whatever anyone asked for the address before (SPEC §4)."""
    _take_reset_allowance(ctx, ip=caller.ip)
    sent = background(ctx).submit(_send_reset_link, ctx, email=email)
    sent.add_done_callback(_log_unsent)


def _send_reset_link(ctx: AppContext, *, email: str) -> None:
    user = users.find_user_by_email(ctx, email=email)
    if user is not None:
        _mail_link(ctx, user=user, counted=True)


def mail_reset_link(ctx: AppContext, *, user: UserRecord) -> None:
    """Mail `user` a link that sets a new password, asked by an operator for them: it goes even when
    the address's budget is spent, and is not counted in it. Its text says an operator sent it."""
    _mail_link(ctx, user=user, counted=False, texts="password_reset_by_operator")


def _mail_link(ctx: AppContext, *, user: UserRecord, counted: bool, texts: str = "password_reset") -> None:
    """Mail `user` a new link (mail.<texts>.*), counted in the address's budget if `counted`; once the
    window's budget is spent, mail nothing and keep the newest link mailed working instead. A try is
    refused only when a counted mail came first, and a window holds RESETS_PER_ADDRESS of them: the
    last try decides."""
    store, now = reset_link_store(ctx), ctx.epoch()
    window = now // RESET_WINDOW
    for _ in range(RESETS_PER_ADDRESS + 1):
        seen = store.mail_window(user.user_uuid, window=window)
        if counted and seen.mails >= RESETS_PER_ADDRESS:
            _keep_newest_link(ctx, user=user, newest=seen.newest, now=now)
            return
        if _add_and_mail(ctx, user=user, seen_mails=seen.mails, mails=seen.mails + int(counted), now=now,
                         texts=texts):
            return
    raise RuntimeError("the reset mail window kept changing")  # more counted mails than a window holds


def _kept_until(now: int) -> int:
    """When a link must still work that is the newest while no mail can go: RESET_TTL from now, and
    past the end of the window, when the next mail can go."""
    return max(now + RESET_TTL, (now // RESET_WINDOW + 1) * RESET_WINDOW + RESET_GRACE)


def _add_and_mail(ctx: AppContext, *, user: UserRecord, seen_mails: int, mails: int, now: int, texts: str) -> bool:
    """Store a new link as the window's newest with `mails` counted, if the window still holds
    `seen_mails`, and mail it; False if another mail was counted first."""
    token, window = new_token(32), now // RESET_WINDOW
    # The link mailed when the budget is spent lives until the window ends: a request refused a mail
    # later in the window finds it working and keeps it so (_keep_newest_link).
    expires = _kept_until(now) if mails >= RESETS_PER_ADDRESS else now + RESET_TTL
    # Its mail goes into the outbox in the link's own transaction: a link stored is a link mailed.
    mail = ctx.notifier.queued(localized_message("password_reset", texts=texts, user_uuid=user.user_uuid,
                                                 email=user.email, locale=user.locale, link=reset_link(token)))
    # The link holds the reset generation read with the user: a reset or a password change since voids it.
    if not reset_link_store(ctx).add_link(digest=token_digest(token, purpose=RESET_PURPOSE), user_uuid=user.user_uuid,
                                          reset_generation=user.reset_generation, expires_epoch=expires,
                                          window=window, window_end=(window + 1) * RESET_WINDOW,
                                          seen_mails=seen_mails, mails=mails, mail_write=mail.write.item):
        return False
    audit(AuditEvent.PASSWORD_RESET_REQUESTED, user_uuid=user.user_uuid)
    ctx.notifier.send_queued(mail)
    return True


def _keep_newest_link(ctx: AppContext, *, user: UserRecord, newest: str | None, now: int) -> None:
    """No mail: the address's budget of this window is spent. The newest link mailed keeps working
    for RESET_TTL more (and past the window's end), unless used, or void since (a reset, a password
    change): the owner asking holds a working link whatever a stranger asked before."""
    kept = newest is not None and reset_link_store(ctx).renew(
        digest=newest, user_uuid=user.user_uuid, reset_generation=user.reset_generation,
        expires_epoch=_kept_until(now), now=now)
    audit(AuditEvent.PASSWORD_RESET_MAIL_WITHHELD, user_uuid=user.user_uuid, link_kept=kept)


def _log_unsent(done: Future[Any]) -> None:
    if done.exception() is not None:
        log.error("password reset link not sent", exc_info=done.exception())


def confirm_password_reset(ctx: AppContext, *, token: str, new_password: str) -> None:
    """Use up the reset token and set the new password in one transaction, which voids every other
    reset link; every session ends (reason password_reset), then every passkey goes (one being added
    by a session that has ended is refused), the devices stay. A link made before the last reset or
    password change is void (InvalidResetToken)."""
    store, digest, now = token_store(ctx), token_digest(token, purpose=RESET_PURPOSE), ctx.epoch()
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
