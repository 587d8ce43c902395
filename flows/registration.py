"""Registration rules: a new account with its first device, all-or-nothing. No Flask here.

An e-mail address that another account holds is not refused and not told apart (SPEC §4): the new
account is stored all the same, in a transaction of the same entries, but without the address's
claim and marked as not holding it, so it never counts as the address's owner (reset, lookups,
mail); no mail goes to the address for it. The address's owner is told instead, off the response
path and at most once an hour."""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

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
T = TypeVar("T")

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
    new = NewAccount(username=username, email=email, password=password, device_name=device_name,
                     public_key=public_key, csr=csr, device_class=device_class, locale=locale)
    return rate_limited(ctx, ip=ip, register=lambda: create_account(ctx, new).response)


def rate_limited(ctx: AppContext, *, ip: str | None, register: Callable[[], T]) -> T:
    """`register()` under the registration limits of the client address `ip` (see register_user): the
    attempts, and the username_taken answers, of an hour."""
    settings, now = ctx.settings, ctx.epoch()
    limits = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits)
    _take_registration(limits, ip=ip, now=now, counter="attempts", limit=settings.registrations_per_hour_per_ip,
                       unless_full={"refusals": settings.registration_refusals_per_hour_per_ip})
    try:
        return register()
    except users.UsernameTaken:
        _take_registration(limits, ip=ip, now=now, counter="refusals",
                           limit=settings.registration_refusals_per_hour_per_ip)  # past the limit: 429
        raise


@dataclass(frozen=True)
class NewAccount:
    """What a new account is made of. `password` None: none (an upstream identity signs it in, SPEC §16);
    `email` "": no address; `email_verified`: the address is taken as verified (a provider said so), if the
    account comes to hold it. `more(user_uuid, device_id)`: the attributes of other domains for its users
    item and the entries for its transaction (an identity's claim, a ticket's enrolment)."""

    username: str
    email: str
    password: str | None
    device_name: str | None
    public_key: str | None
    csr: str | None
    device_class: str = "other"
    locale: str = "en"
    email_verified: bool = False
    more: Callable[[str, str], tuple[dict[str, Any], list[GuardedWrite]]] | None = None


@dataclass(frozen=True)
class CreatedAccount:
    response: RegistrationResponse
    user: UserRecord
    holds_email: bool


def _no_holder() -> Future[str | None]:
    done: Future[str | None] = Future()
    done.set_result(None)
    return done


def create_account(ctx: AppContext, new: NewAccount) -> CreatedAccount:
    """The account, its first (primary) device and its recovery codes in one transaction, with what
    `new.more` adds; then its mails (see the module's docstring for an address another account holds)."""
    user_uuid, email = str(uuid.uuid4()), new.email
    # Read while the certificate is signed and the password hashed: a free and a held address cost
    # the same one read and one transaction.
    holder = background(ctx).submit(users.email_holder, ctx, email=email) if email else _no_holder()
    issued = devices.issue_device(ctx, user_uuid=user_uuid, device_name=new.device_name, is_primary=True,
                                  public_key=new.public_key, csr=new.csr, device_class=new.device_class)
    password_hash = ctx.passwords.hash(new.password) if new.password is not None else ""
    user = UserRecord(user_uuid=user_uuid, username=new.username, email=email, password_hash=password_hash,
                      created_at=iso(ctx.now()), locale=new.locale, email_verified=new.email_verified)
    recovery = accounts.first_recovery_codes(user_uuid=user_uuid)
    # Stored either way, so that both transactions have the same entries; sent only with the address.
    verification = accounts.new_verification(ctx, user_uuid=user_uuid, email=email, locale=new.locale)
    attributes, writes = new.more(user_uuid, issued.record.device_id) if new.more else ({}, [])
    holds_email = _create(ctx, user=user, holds_email=holder.result() is None,
                          extra_attributes={**recovery.user_attributes, **attributes},
                          extra_writes=[*writes, *devices.new_device_writes(ctx, issued.record), verification.write])
    if holds_email:
        ctx.notifier.notify(localized_message("registered", user_uuid=user_uuid, email=email, locale=user.locale,
                                              username=new.username, device=issued.record.device_name))
        if email and not new.email_verified:
            ctx.notifier.notify(verification.message)
    else:
        told = background(ctx).submit(_tell_holder, ctx, email=email, new_user_uuid=user_uuid, at=ctx.now())
        told.add_done_callback(_log_untold)
    response = devices.certificate_response(ctx.ca, issued, message="Registration successful.")
    return CreatedAccount(response=RegistrationResponse(**response.model_dump(), recovery_codes=recovery.codes),
                          user=user, holds_email=holds_email)


def _create(ctx: AppContext, *, user: UserRecord, holds_email: bool, extra_attributes: dict[str, Any],
            extra_writes: list[GuardedWrite]) -> bool:
    """Store the account, holding its address if `holds_email` (none held it when read); whether it
    holds it. The read may be stale: the transaction's condition on the claim decides. An address it does
    not hold is never verified."""
    for _ in range(CLAIM_ATTEMPTS):
        try:
            users.create_user(ctx, user=replace(user, email_verified=user.email_verified and holds_email),
                              extra_attributes=extra_attributes, extra_writes=extra_writes, holds_email=holds_email)
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
