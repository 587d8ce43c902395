"""Registration rules: a new account with its first device, all-or-nothing. No Flask here."""
from __future__ import annotations

import uuid

from accounts import service as accounts
from accounts import user_service as users
from accounts.models import UserRecord
from common.context import AppContext
from common.notifier import localized_message
from common.timefmt import iso
from device_manager import service as devices
from registration.models import RegistrationResponse


def register_user(ctx: AppContext, *, username: str, email: str, password: str,
                  device_name: str | None, public_key: str | None,
                  csr: str | None, device_class: str = "other", locale: str = "en") -> RegistrationResponse:
    """Create the user, its primary device and its recovery codes; the username and e-mail are
    claimed atomically (UsernameTaken, EmailTaken). `locale` is the language of its messages,
    the first ones included."""
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
