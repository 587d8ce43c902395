"""Rules for short text that a person chooses and others see or that becomes a key: device names
and the usernames of login forms. Pydantic field types, so every request model applies them alike."""
from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from common.errors import FieldKind, field_refusal

DISPLAY_NAME_MAX = 64
LOGIN_NAME_MAX_BYTES = 1024
# Format characters that emoji sequences (ZWJ) and Persian or Indic spelling (ZWNJ) need.
_JOINERS = frozenset("\u200c\u200d")


def check_display_name(value: str) -> str:
    """`value` unless it holds a control character (Cc), a line or paragraph separator, or an
    invisible format character (Cf) other than the joiners."""
    for char in value:
        category = unicodedata.category(char)
        # Bidi overrides (Cf) reorder what a device list shows ("Trojan Source", CVE-2021-42574);
        # control characters rewrite terminals and logs.
        if category in ("Cc", "Zl", "Zp") or (category == "Cf" and char not in _JOINERS):
            raise field_refusal(FieldKind.INVALID_CHARACTERS, "invalid_characters",
                                f"must not contain control or invisible formatting characters (U+{ord(char):04X})")
    return value


def check_login_name(value: str) -> str:
    """`value` unless its comparison form (NFKC, case-folded) is too long to look up: NFKC makes up
    to 18 characters of one, and DynamoDB refuses keys over 2048 bytes."""
    if len(unicodedata.normalize("NFKC", value).casefold().encode()) > LOGIN_NAME_MAX_BYTES:
        raise field_refusal(FieldKind.TOO_LONG, "too_long_any", "is too long")
    return value


DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=DISPLAY_NAME_MAX),
                        AfterValidator(check_display_name)]
LoginName = Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(check_login_name)]
