"""Request and response models of /login."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from common.text import DisplayName, LoginName
from device_manager.models import DeviceKeyFields


class LoginRequest(BaseModel):
    """POST /login/ (SPEC §4). Proof of possession: `signature` over "citylogin-login:" + challenge."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    username: LoginName
    password: str = Field(min_length=1, max_length=1024)
    client_cert: str | None = Field(default=None, max_length=32768, description="base64 of the certificate PEM")
    client_cert_fp: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    challenge: str | None = Field(default=None, max_length=128)
    signature: str | None = Field(default=None, max_length=12000, description="base64 signature")
    device_name: DisplayName | None = None
    force: StrictBool = False


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    confirm_token: str = Field(min_length=1, max_length=256)


class ChallengeResponse(BaseModel):
    challenge: str
    expires_in: int


class EvictedDevice(BaseModel):
    device_id: str
    device_name: str


class LoginResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"
    expires_in: int
    session_id: str
    device_id: str
    user_uuid: str
    evicted: list[EvictedDevice]
    cert_expires_at: str
    renew_certificate: bool = Field(description="the certificate expires within CITYLOGIN_CERT_RENEW_BEFORE_DAYS "
                                                "(or has expired, within the grace): renew it with POST /device/renew")


class RecoverRequest(DeviceKeyFields):
    """POST /device/recover: a new device for an account whose devices are all lost (SPEC §4)."""

    username: LoginName
    password: str = Field(min_length=1, max_length=1024)
    recovery_code: str = Field(min_length=1, max_length=64, description="one of the account's recovery codes")
    unbind_other_devices: StrictBool = Field(default=False, description="revoke every other device and end its session")
