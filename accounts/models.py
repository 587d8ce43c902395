"""The account record and the request/response models of /account."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


@dataclass(frozen=True)
class AccountRecord:
    """What /account shows of the users item; counts instead of the code digests themselves."""

    user_uuid: str
    username: str
    email: str
    created_at: str
    recovery_codes_left: int
    recovery_generation: int
    email_verified: bool = False
    locale: str = "en"
    max_concurrent_devices: int | None = None


class AccountView(BaseModel):
    """GET /account (SPEC §4)."""

    user_uuid: str
    username: str
    email: str
    email_verified: bool
    created_at: str
    locale: str
    recovery_codes_left: int
    max_concurrent_devices: int = Field(description="the per-user limit if an operator set one, else the default")


class PasswordRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    password: str = Field(min_length=1, max_length=1024)


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="shown this once; only digests are stored")


# --- e-mail address and profile settings ------------------------------------------------------

class VerifyEmailRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: str = Field(min_length=1, max_length=256)


class EmailVerified(BaseModel):
    email_verified: bool


class EmailChangeRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    password: str = Field(min_length=1, max_length=1024)
    new_email: EmailStr


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    locale: Literal["en", "ja"] = Field(description="the language of messages")


class EmailAccepted(BaseModel):
    message: str
