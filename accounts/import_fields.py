"""The fields of an imported row checked as registration checks them (SPEC §4, §17): the username's rule,
the address's syntax, no control character anywhere, the locale one citylogin speaks, the hash in the
form citylogin stores. Each reader (Keycloak, Auth0, CSV) takes its values from its own shape and hands
them here; a refusal is a RowProblem the reader turns into the row's RowRefusal."""
from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from email_validator import EmailNotValidError, validate_email
from pydantic_core import PydanticCustomError

from accounts.import_rows import RefusalReason
from accounts.models import normalize_username
from common.crypto.imported_hashes import InvalidHash, UnknownScheme, canonical_hash, keycloak_hash
from common.crypto.passwords import IMPORTED_PREFIX
from common.i18n import locale_of
from common.timefmt import iso

# What no field of an account may hold: control characters (NUL among them) rewrite terminals and logs,
# bidi overrides and other invisible format characters reorder what a list shows, and a lone surrogate
# (JSON's "\ud800") is no character at all: no UTF-8 encodes it, so DynamoDB could not store it.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_JOINERS = frozenset("\u200c\u200d")
EMAIL_MAX = 254  # RFC 5321's path limit less its brackets, as email-validator counts


class RowProblem(Exception):
    """Why the row at hand is not imported: a RefusalReason and a detail naming the field (never its
    value when that is a hash or a secret)."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def refused_character(value: str) -> str | None:
    """The first character of `value` no field may hold, as U+XXXX; None if there is none."""
    if value.isascii() and value.isprintable():  # the common case, at C speed: no ASCII control in it
        return None
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES and char not in _JOINERS:
            return f"U+{ord(char):04X}"
    return None


def text_member(value: object, *, field: str, reason: RefusalReason = RefusalReason.NOT_THE_FORMAT) -> str:
    """A member that must be text (absent or null: ""), free of control characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowProblem(RefusalReason.NOT_THE_FORMAT, f"{field} is not text")
    if (char := refused_character(value)) is not None:
        raise RowProblem(reason, f"{field} holds a control or invisible formatting character ({char})")
    return value


ID_MAX = 255  # Keycloak's and Auth0's ids are far shorter


def id_value(value: object, *, field: str) -> str:
    """A source's own id (of a person, a provider, an identity): a JSON string within ID_MAX."""
    text = text_member(value, field=field)
    if not text:
        raise RowProblem(RefusalReason.MISSING_FIELD, f"{field} is missing")
    if len(text) > ID_MAX:
        raise RowProblem(RefusalReason.NOT_THE_FORMAT, f"{field} is longer than {ID_MAX} characters")
    return text


def flag_member(value: object, *, field: str, default: bool = False) -> bool:
    """A JSON boolean member (absent or null: `default`)."""
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RowProblem(RefusalReason.NOT_THE_FORMAT, f"{field} is not true or false")
    return value


def username_value(value: object, *, field: str = "username") -> str:
    """The username as registration stores it (NFKC, then 3-32 of [A-Za-z0-9_.-]: accounts.models)."""
    text = text_member(value, field=field, reason=RefusalReason.INVALID_USERNAME)
    if not text:
        raise RowProblem(RefusalReason.MISSING_FIELD, f"{field} is missing")
    try:
        return normalize_username(text)
    except PydanticCustomError:
        raise RowProblem(RefusalReason.INVALID_USERNAME,
                         f"{field} must be 3-32 characters of letters, digits, '_', '.' or '-'") from None


def email_value(value: object, *, field: str = "email") -> str:
    """The address as registration's EmailStr keeps it (email-validator's normalised form, no
    deliverability check), or "" for none."""
    text = text_member(value, field=field, reason=RefusalReason.INVALID_EMAIL).strip()
    if not text:
        return ""
    if len(text) > EMAIL_MAX:
        raise RowProblem(RefusalReason.INVALID_EMAIL, f"{field} is longer than {EMAIL_MAX} characters")
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise RowProblem(RefusalReason.INVALID_EMAIL, f"{field} is not a valid e-mail address") from None


def locale_value(value: object) -> str:
    """One of the languages citylogin speaks ("ja-JP" -> "ja"); English for any other, none or nonsense."""
    if not isinstance(value, str):
        return locale_of(None)
    return locale_of(value.replace("_", "-").split("-")[0].strip().lower())


def comparison_key(value: str) -> str:
    """The form two names or addresses are one in (the claims' NFKC case-folding, accounts.user_store)."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


def imported_hash(value: object, *, field: str = "password_hash") -> str:
    """A PHC / modular-crypt hash as citylogin stores an imported one, or "" for no password."""
    text = text_member(value, field=field, reason=RefusalReason.INVALID_HASH).strip()
    if not text:
        return ""
    return IMPORTED_PREFIX + _hash_step(canonical_hash, text, field=field)


def keycloak_imported_hash(secret_data: Mapping[str, Any], credential_data: Mapping[str, Any], *,
                           field: str) -> str:
    """Keycloak's stored password credential as citylogin stores an imported hash."""
    return IMPORTED_PREFIX + _hash_step(keycloak_hash, secret_data, credential_data, field=field)


def _hash_step(convert: Any, *args: Any, field: str) -> str:
    # The hashes module's messages never hold the hash; ours name the field alone all the same.
    try:
        canonical: str = convert(*args)
    except UnknownScheme:
        raise RowProblem(RefusalReason.UNKNOWN_HASH_SCHEME, f"{field}: a hash scheme citylogin does not take") from None
    except InvalidHash:
        raise RowProblem(RefusalReason.INVALID_HASH, f"{field}: malformed or beyond the scheme's bounds") from None
    return canonical


def epoch_ms_value(value: object) -> str | None:
    """Keycloak's createdTimestamp (milliseconds since 1970) as ISO 8601 UTC; None if absent or not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)) or not 0 <= value < 253402300800000:
        return None
    return iso(datetime.fromtimestamp(int(value) // 1000, timezone.utc))


def iso_value(value: object) -> str | None:
    """An ISO 8601 moment (Auth0's created_at) as citylogin writes them; None if absent or not one."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return iso(moment) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):  # not a moment, or one whose UTC falls outside years 1-9999
        return None
