"""How long each section of a person's data export is kept, in words, from the figures the code keeps it by:
the one source that the readable copy (flows/readable_export.py) and docs/security/storage.md ("The readable
copy", checked by tests/flows/test_export_retention.py) both say."""
from __future__ import annotations

from collections.abc import Callable

from accounts.password_service import RESET_TTL
from accounts.service import VERIFY_TTL_SECONDS
from common import i18n
from common.config import Settings
from devices.pairing_service import EXPIRED_CODE_KEPT_SECONDS
from flows.not_me import TTL_SECONDS as NOT_ME_SECONDS
from common.mail.outbox import SENT_KEPT_SECONDS, UNDELIVERED_KEPT_SECONDS
from oidc.app_grants.export import GRANT_KEPT_SECONDS
from sessions.export_service import HISTORY_DAYS, SESSION_RETENTION_SECONDS

DAY, HOUR, MINUTE = 86400, 3600, 60

# Section -> the figures its sentence (export.<section>.kept) is filled with; the settings give the ones an
# operator may change (the docs quote the defaults).
FIGURES: dict[str, Callable[[Settings], dict[str, float]]] = {
    "users": lambda settings: {},
    "claims": lambda settings: {},
    "devices": lambda settings: {"count": settings.cert_validity_days},  # export.devices.kept.one, .other
    "sessions": lambda settings: {"days": SESSION_RETENTION_SECONDS // DAY},
    "presence": lambda settings: {},
    "login_history": lambda settings: {"days": HISTORY_DAYS},
    "one_time_tokens": lambda settings: {"reset_minutes": RESET_TTL // MINUTE,
                                         "verify_hours": VERIFY_TTL_SECONDS // HOUR,
                                         "not_me_days": NOT_ME_SECONDS // DAY},
    "pairing_tokens": lambda settings: {"days": EXPIRED_CODE_KEPT_SECONDS // DAY},
    "rate_limits": lambda settings: {},
    "passkeys": lambda settings: {},
    "oidc_grants": lambda settings: {"hours": GRANT_KEPT_SECONDS // HOUR},
    "oidc_consents": lambda settings: {},
    "mail_outbox": lambda settings: {"sent_days": SENT_KEPT_SECONDS // DAY,
                                     "give_up_hours": settings.mail_give_up_hours,
                                     "undelivered_days": UNDELIVERED_KEPT_SECONDS // DAY},
}


def kept(section: str, *, settings: Settings, locale: str) -> str | None:
    """How long `section`'s items are kept, in `locale`; None for a section this module does not know."""
    figures = FIGURES.get(section)
    return None if figures is None else i18n.text(f"export.{section}.kept", locale, **figures(settings))
