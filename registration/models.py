"""Request models of /registration and the user record."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, EmailStr, Field, RootModel, field_validator

from common.text import LoginName
from device_manager.models import DeviceCertificateResponse, DeviceKeyFields, PairedDeviceRequest

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,32}")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships a frequency list of the 30,000 most used passwords.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS
    return frozenset(FREQUENCY_LISTS["passwords"])


def normalize_username(value: str) -> str:
    """NFKC, then 3-32 of [A-Za-z0-9_.-] (SPEC §4)."""
    name = unicodedata.normalize("NFKC", value).strip()
    if not USERNAME_PATTERN.fullmatch(name):
        raise ValueError("username must be 3-32 characters of letters, digits, '_', '.' or '-'")
    return name


def check_password_strength(value: str) -> str:
    if not 8 <= len(value) <= 128:
        raise ValueError("password must be 8-128 characters")
    if value.lower() in _common_passwords():
        raise ValueError("password is too common; choose another")
    return value


class NewUserRequest(DeviceKeyFields):
    """POST /registration/ for a new account with its first device."""

    username: str = Field(max_length=256)
    email: EmailStr
    password: str = Field(max_length=1024)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        return normalize_username(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return check_password_strength(value)


class RegistrationResponse(DeviceCertificateResponse):
    """The 201 of a new account: its first device, and its recovery codes, shown this once."""

    recovery_codes: list[str] | None = Field(default=None, description="ten single-use codes for POST /device/recover")


class RegistrationRequest(RootModel[NewUserRequest | PairedDeviceRequest]):
    """POST /registration/: a new user, or with `qr_code` a further device (seed-compatible)."""


@dataclass(frozen=True)
class UserRecord:
    user_uuid: str
    username: str
    email: str
    password_hash: str
    created_at: str
    locked: bool | None = None  # set by an operator (citylogin admin lock): no login, no session
    max_concurrent_devices: int | None = None  # an operator's per-user limit over the default (0 = unlimited)


class PairingCredentialsRequest(BaseModel):
    """The seed-compatible way for a registered device to ask for a pairing token."""

    username: LoginName
    password: str = Field(min_length=1, max_length=1024)
    client_cert_fp: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class PairingTokenResponse(BaseModel):
    qr_code: str
    qr_png: str
    expires_at: str
    expires_in: int


class RegistrationInfo(BaseModel):
    service: str
    description: str
    new_user_fields: dict[str, str]
    further_device_fields: dict[str, str]
    key_types: list[str]
