"""The person's mail of an operator's action (SPEC §15): what was done to their account, in their language,
and when. A new device limit is said with its number, as the person would otherwise have to guess it at the
next login that is refused: a number of devices, any number (0), or the service's default (and what that
is now)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from accounts.models import UserRecord
from common import i18n
from common.mail.notifier import Notifier, localized_message, mail_time

LIMIT = "limit"  # operators.service's action that sets the account's device limit


def tell(notifier: Notifier, user: UserRecord, action: str, *, done: dict[str, Any], default_limit: int,
         at: datetime) -> None:
    """Mail `user` that an operator did `action` (its result `done`) at `at`."""
    language = i18n.locale_of(user.locale)
    notifier.notify(localized_message(
        "operator_action", user_uuid=user.user_uuid, email=user.email, locale=user.locale,
        what=what_was_done(action, done=done, default_limit=default_limit, language=language),
        time=mail_time(at, user.locale)))


def what_was_done(action: str, *, done: dict[str, Any], default_limit: int, language: str) -> str:
    if action != LIMIT:
        return i18n.text(f"mail.operator_action.{action}", language)
    limit = done["limit"]
    if limit == "default":
        if default_limit == 0:
            return i18n.text("mail.operator_action.limit_default_unlimited", language)
        return i18n.text("mail.operator_action.limit_default", language, limit=default_limit)
    if limit == 0:
        return i18n.text("mail.operator_action.limit_unlimited", language)
    return i18n.text("mail.operator_action.limit_to", language, limit=limit)
