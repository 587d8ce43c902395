"""Registration rules: a new account with its first device, all-or-nothing. No Flask here."""
from __future__ import annotations

import uuid

from accounts import service as accounts
from accounts import user_service as users
from accounts.models import UserRecord
from common.context import AppContext
from common.errors import TooManyRequests
from common.rate_limits import RateLimitStore
from common.notifier import localized_message
from common.timefmt import iso
from devices import service as devices
from flows.models import RegistrationResponse


REGISTRATION_WINDOW_SECONDS = 3600


class TooManyRegistrations(TooManyRequests):
    def __init__(self, *, now: int) -> None:
        super().__init__("Too many registrations from this address; try again later.",
                         retry_after=REGISTRATION_WINDOW_SECONDS - now % REGISTRATION_WINDOW_SECONDS)


def _take_registration(store: RateLimitStore, *, ip: str | None, now: int,
                       counter: str, limit: int, unless_full: dict[str, int] | None = None) -> None:
    if store.take(f"register#ip:{ip or 'unknown'}", limit=limit, window_seconds=REGISTRATION_WINDOW_SECONDS,
                  now=now, counter=counter, unless_full=unless_full) is None:
        raise TooManyRegistrations(now=now)


def register_user(ctx: AppContext, *, username: str, email: str, password: str,
                  device_name: str | None, public_key: str | None,
                  csr: str | None, device_class: str = "other", locale: str = "en",
                  ip: str | None = None) -> RegistrationResponse:
    """Create the user, its primary device and its recovery codes; the username and e-mail are
    claimed atomically (UsernameTaken, EmailTaken). `locale` is the language of its messages,
    the first ones included. One client IP gets at most
    CITYLOGIN_REGISTRATIONS_PER_HOUR_PER_IP attempts an hour and at most
    CITYLOGIN_REGISTRATION_REFUSALS_PER_HOUR_PER_IP "taken" answers, after which every attempt is
    429 until the hour ends, so the answers cannot enumerate accounts at scale."""
    settings, now = ctx.settings, int(ctx.now().timestamp())
    limits = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits)
    _take_registration(limits, ip=ip, now=now, counter="attempts", limit=settings.registrations_per_hour_per_ip,
                       unless_full={"refusals": settings.registration_refusals_per_hour_per_ip})
    try:
        return _register(ctx, username=username, email=email, password=password, device_name=device_name,
                         public_key=public_key, csr=csr, device_class=device_class, locale=locale)
    except (users.UsernameTaken, accounts.EmailTaken):
        _take_registration(limits, ip=ip, now=now, counter="refusals",
                           limit=settings.registration_refusals_per_hour_per_ip)  # past the limit: 429
        raise


def _register(ctx: AppContext, *, username: str, email: str, password: str, device_name: str | None,
              public_key: str | None, csr: str | None, device_class: str, locale: str) -> RegistrationResponse:
    user_uuid = str(uuid.uuid4())
    issued = devices.issue_device(ctx, user_uuid=user_uuid, device_name=device_name, is_primary=True,
                                  public_key=public_key, csr=csr, device_class=device_class)
    user = UserRecord(user_uuid=user_uuid, username=username, email=email,
                      password_hash=ctx.passwords.hash(password), created_at=iso(ctx.now()), locale=locale)
    recovery = accounts.first_recovery_codes(user_uuid=user_uuid)
    verification = accounts.new_verification(ctx, user_uuid=user_uuid, email=email, locale=locale)
    users.create_user(ctx, user=user, extra_attributes=recovery.user_attributes,
                      extra_writes=[*devices.new_device_writes(ctx, issued.record), verification.write])
    ctx.notifier.notify(localized_message("registered", user_uuid=user_uuid, email=email, locale=user.locale,
                                          username=username, device=issued.record.device_name))
    ctx.notifier.notify(verification.message)
    response = devices.certificate_response(ctx, issued, message="Registration successful.")
    return RegistrationResponse(**response.model_dump(), recovery_codes=recovery.codes)
