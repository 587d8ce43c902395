"""The device authorization grant's answers and the bodies of its approval page (RFC 8628 §3.2, §3.3)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from common.fields import Displace
from common.text import DisplayName


class DeviceAuthorization(BaseModel):
    """RFC 8628 §3.2: what a screen shows and polls with."""

    device_code: str
    user_code: str = Field(description="8 letters, shown XXXX-XXXX")
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


UserCode = Field(min_length=1, max_length=32, description="as the screen shows it (XXXX-XXXX), in any case, "
                                                          "with or without the dash")


class UserCodeBody(BaseModel):
    """`POST /oidc/device/lookup` and `/oidc/device/deny`: the code a screen shows."""

    model_config = ConfigDict(extra="ignore")
    user_code: str = UserCode


class ScreenApproval(UserCodeBody):
    """`POST /oidc/device/approve`: the signed-in person approves the screen; `force` once they said yes to
    "in use elsewhere — continue?" (409 concurrent_login)."""

    device_name: DisplayName = Field(description="the screen's name in the Sessions list")
    force: StrictBool = False
    displace: Displace


class ScreenSignIn(ScreenApproval):
    """`POST /oidc/device/approve/device`: single sign-on, the browser's device signs "citylogin-device-flow:" +
    `challenge` (from `POST /login/challenge`) with its key, and its live session approves."""

    client_cert: str = Field(min_length=1, max_length=32768, description="base64 of the certificate PEM")
    challenge: str = Field(min_length=1, max_length=128)
    signature: str = Field(min_length=1, max_length=12000, description="base64 signature")


class PendingScreenView(BaseModel):
    """What the approval page shows of a screen's request."""

    user_code: str
    client_id: str
    client_name: str
    scopes: list[str]
    device_class: str
    expires_at: str  # ISO 8601, UTC
    registered_itself: bool = Field(default=False, description="the app registered itself (RFC 7591) and no "
                                                               "operator verified it: the page says so")


class ScreenApproved(BaseModel):
    """The screen is signed in: its session (listed in Sessions), and the devices it displaced."""

    status: str
    session_id: str
    device_id: str
    device_name: str
    device_class: str
    client_name: str
    evicted: list[dict[str, str]]


class ScreenDenied(BaseModel):
    status: str
