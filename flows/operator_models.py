"""Request and response models of the admin API (SPEC §15): finding accounts, an account's page and
the operators' actions on it."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from accounts.models import PasskeyAssertion, Role
from sessions.models import Cursor

REASON_MAX = 500
SEARCH_KEYS = ("username", "email", "user_uuid", "device_id", "session_id")


class AccountSearch(BaseModel):
    """GET /admin/accounts: exactly one of these, matched exactly."""

    model_config = ConfigDict(extra="ignore")
    username: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320)
    user_uuid: str | None = Field(default=None, max_length=64)
    device_id: str | None = Field(default=None, max_length=64)
    session_id: str | None = Field(default=None, max_length=128)


class AccountSummary(BaseModel):
    user_uuid: str
    username: str
    email: str
    locked: bool
    roles: list[str]
    created_at: str


class AccountSearchResult(BaseModel):
    accounts: list[AccountSummary]


class OperatorDevice(BaseModel):
    device_id: str
    device_name: str
    device_class: str
    status: str = Field(description="active or revoked (the certificate's state)")
    cert_expires_at: str
    registered_at: str
    last_login_at: str | None
    logged_in: bool


class OperatorSession(BaseModel):
    session_id: str
    device_id: str
    device_name: str
    created_at: str
    last_seen_at: str
    status: str = Field(description="active, revoked or expired")
    revoked_reason: str | None
    ip: str | None
    user_agent: str | None


class OperatorPasskey(BaseModel):
    name: str
    created_at: str
    last_used_at: str | None


class OperatorAccount(AccountSummary):
    """GET /admin/accounts/<user_uuid>: the account as support sees it."""

    email_verified: bool
    locale: str
    password_locked_until: str | None = Field(description="wrong passwords paused its sign-ins until then")
    limit: int | None = Field(description="the operator's per-user device limit, None: the default")
    default_limit: int
    devices: list[OperatorDevice]
    sessions: list[OperatorSession] = Field(description="live and recent, newest first")
    passkeys: list[OperatorPasskey]


class OperatorPage(BaseModel):
    """GET /admin/accounts/<user_uuid>/history or /audit."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Cursor = None


class ActionRequest(BaseModel):
    """Every operator action: why (required, said in the audit trail), and for a destructive one the
    operator's own password or passkey when their sign-in is older than CITYLOGIN_ADMIN_REAUTH_SECONDS."""

    model_config = ConfigDict(extra="ignore")
    reason: str | None = Field(default=None, max_length=REASON_MAX, description="required, not blank")
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    passkey: PasskeyAssertion | None = None


class LimitRequest(ActionRequest):
    limit: int | None = Field(ge=0, le=1000, description="devices logged in at once (0 = unlimited); null: the default")


class RoleRequest(ActionRequest):
    role: Role
    grant: StrictBool
