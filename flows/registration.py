"""Registration rules: a new account with its first device, all-or-nothing. No Flask here.

An e-mail address that another account holds is not refused and not told apart (SPEC §4): the new
account is stored all the same, in a transaction of the same entries, but without the address's
claim and marked as not holding it, so it never counts as the address's owner (reset, lookups,
mail); no mail goes to the address for it. The address's owner is told instead, off the response
path and at most once an hour."""
from __future__ import annotations

import logging
import uuid
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from accounts import service as accounts
from accounts import user_service as users
from accounts.models import UserRecord
from common.errors import StorageUnavailable, TooManyRequests
from common.timefmt import iso
from common.crypto.tokens import token_digest
from common.database.guarded_write import GuardedWrite
from devices import service as devices
from flows.models import RegistrationResponse
from common.mail.notifier import localized_message, mail_time
from common.web.background import background
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore, limit_subject

log = logging.getLogger(__name__)

REGISTRATION_WINDOW_SECONDS = 3600
CLAIM_ATTEMPTS = 3  # the address taken, or freed, between the read and the transaction: decide again
HOLDER_NOTICE_WINDOW = 3600  # at most one "someone registered with your address" mail per address in it


class TooManyRegistrations(TooManyRequests):
    def __init__(self, *, now: int) -> None:
        super().__init__("Too many registrations from this address; try again later.",
                         retry_after=REGISTRATION_WINDOW_SECONDS - now % REGISTRATION_WINDOW_SECONDS)


def _take_registration(store: RateLimitStore, *, ip: str | None, now: int,
                       counter: str, limit: int, unless_full: dict[str, int] | None = None) -> None:
    if store.take(f"register#ip:{limit_subject(ip)}", limit=limit, window_seconds=REGISTRATION_WINDOW_SECONDS,
                  now=now, counter=counter, unless_full=unless_full) is None:
        raise TooManyRegistrations(now=now)


def register_user(ctx: AppContext, *, username: str, email: str, password: str,
                  device_name: str | None, public_key: str | None,
                  csr: str | None, device_class: str = "other", locale: str = "en",
                  ip: str | None = None) -> RegistrationResponse:
    """Create the user, its primary device and its recovery codes; the username is claimed
    atomically (UsernameTaken), and so is the e-mail address unless another account holds it (then
    the answer is the same; see the module's docstring). `locale` is the language of its messages,
    the first ones included. One client IP gets at most
    CITYLOGIN_REGISTRATIONS_PER_HOUR_PER_IP attempts an hour and at most
    CITYLOGIN_REGISTRATION_REFUSALS_PER_HOUR_PER_IP username_taken answers, after which every attempt
    is 429 until the hour ends, so the answers cannot enumerate usernames at scale."""
    settings, now = ctx.settings, ctx.epoch()
    limits = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits)
    _take_registration(limits, ip=ip, now=now, counter="attempts", limit=settings.registrations_per_hour_per_ip,
                       unless_full={"refusals": settings.registration_refusals_per_hour_per_ip})
    try:
        return _register(ctx, username=username, email=email, password=password, device_name=device_name,
                         public_key=public_key, csr=csr, device_class=device_class, locale=locale)
    except users.UsernameTaken:
        _take_registration(limits, ip=ip, now=now, counter="refusals",
                           limit=settings.registration_refusals_per_hour_per_ip)  # past the limit: 429
        raise


def _register(ctx: AppContext, *, username: str, email: str, password: str, device_name: str | None,
              public_key: str | None, csr: str | None, device_class: str, locale: str) -> RegistrationResponse:
    user_uuid = str(uuid.uuid4())
    # Read while the certificate is signed and the password hashed: a free and a held address cost
    # the same one read and one transaction.
    holder: Future[str | None] = background(ctx).submit(users.email_holder, ctx, email=email)
    issued = devices.issue_device(ctx, user_uuid=user_uuid, device_name=device_name, is_primary=True,
                                  public_key=public_key, csr=csr, device_class=device_class)
    user = UserRecord(user_uuid=user_uuid, username=username, email=email,
                      password_hash=ctx.passwords.hash(password), created_at=iso(ctx.now()), locale=locale)
    recovery = accounts.first_recovery_codes(user_uuid=user_uuid)
    # Stored either way, so that both transactions have the same entries; sent only with the address.
    verification = accounts.new_verification(ctx, user_uuid=user_uuid, email=email, locale=locale)
    holds_email = _create(ctx, user=user, holds_email=holder.result() is None,
                          extra_attributes=recovery.user_attributes,
                          extra_writes=[*devices.new_device_writes(ctx, issued.record), verification.write])
    if holds_email:
        ctx.notifier.notify(localized_message("registered", user_uuid=user_uuid, email=email, locale=user.locale,
                                              username=username, device=issued.record.device_name))
        ctx.notifier.notify(verification.message)
    else:
        told = background(ctx).submit(_tell_holder, ctx, email=email, new_user_uuid=user_uuid, at=ctx.now())
        told.add_done_callback(_log_untold)
    response = devices.certificate_response(ctx.ca, issued, message="Registration successful.")
    return RegistrationResponse(**response.model_dump(), recovery_codes=recovery.codes)


def _create(ctx: AppContext, *, user: UserRecord, holds_email: bool, extra_attributes: dict[str, Any],
            extra_writes: list[GuardedWrite]) -> bool:
    """Store the account, holding its address if `holds_email` (none held it when read); whether it
    holds it. The read may be stale: the transaction's condition on the claim decides."""
    for _ in range(CLAIM_ATTEMPTS):
        try:
            users.create_user(ctx, user=user, extra_attributes=extra_attributes, extra_writes=extra_writes,
                              holds_email=holds_email)
            return holds_email
        except users.EmailTaken:  # another registration took it meanwhile
            holds_email = False
        except users.EmailNotTaken:  # its holder released it meanwhile
            holds_email = True
    raise StorageUnavailable()  # the address changed hands every time: a rare race, told as any busy database


def _holder_notice_key(email: str) -> str:
    # A digest: no address in the table.
    return "register#notice:" + token_digest(email.casefold(), purpose="registration-address")


def _tell_holder(ctx: AppContext, *, email: str, new_user_uuid: str, at: datetime) -> None:
    """Mail the account that holds `email` that a new account was registered with it, unless one
    such mail went to the address within the hour (or the holder is gone meanwhile)."""
    holder = users.find_user_by_email(ctx, email=email)
    if holder is None:
        return
    if RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take(
            _holder_notice_key(email), limit=1, window_seconds=HOLDER_NOTICE_WINDOW, now=int(at.timestamp()),
            user_uuid=holder.user_uuid) is None:
        log.info("new account %s was given the address of account %s; its owner was told within the hour",
                 new_user_uuid, holder.user_uuid)
        return
    log.info("new account %s was given the address of account %s; its owner is told", new_user_uuid,
             holder.user_uuid)
    ctx.notifier.notify(localized_message(
        "registered_with_your_address", user_uuid=holder.user_uuid, email=holder.email, locale=holder.locale,
        username=holder.username, time=mail_time(at, holder.locale)))


def _log_untold(done: Future[Any]) -> None:
    if done.exception() is not None:
        log.error("the holder of a registration's e-mail address was not told", exc_info=done.exception())
