"""RP-initiated logout's kept request and the bodies and answers of its sign-out page (SPEC §14)."""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field, StrictBool

from oidc.core.models import PendingRequest


@dataclass(frozen=True)
class LogoutRequest:
    """An app's RP-initiated logout, checked and waiting for the browser's device (SPEC §14): the
    session its ID token hint names (None without a hint), the app, and where the browser goes once
    it is over (the registered post_logout_redirect_uri with `state`; None: it stays at citylogin)."""

    client_id: str | None = None
    session_id: str | None = None
    user_uuid: str | None = None
    redirect_to: str | None = None

    def names(self, *, session_id: str, user_uuid: str) -> bool:
        """Whether the hint named this very session of this person (no hint names none)."""
        return self.session_id is not None and (self.session_id, self.user_uuid) == (session_id, user_uuid)


class DeviceSignOut(PendingRequest):
    """`POST /oidc/logout/device`: the browser's device proves it holds its key — `signature` over
    "citylogin-sign-out:" + `challenge` (from `POST /login/challenge`) — for the app's logout request
    `request`; `confirm` once the person said yes to signing out."""

    client_cert: str = Field(min_length=1, max_length=32768, description="base64 of the certificate PEM")
    challenge: str = Field(min_length=1, max_length=128)
    signature: str = Field(min_length=1, max_length=12000, description="base64 signature")
    confirm: StrictBool = False


class LogoutInteraction(BaseModel):
    """What the sign-out page shows of an app's logout request: the app (None when the request named
    none) and where the browser goes after (None: it stays)."""

    client_id: str | None = None
    client_name: str | None = None
    redirect_to: str | None = None


class SignedOut(BaseModel):
    """A device's session ended for an app's logout: where the browser goes next (None: it stays)."""

    redirect_to: str | None = None
