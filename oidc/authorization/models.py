"""The bodies and answers of the authorization endpoint's own routes (SPEC §14): a waiting request's
handle, its completion by the browser's device, its cancellation, and where the browser goes next."""
from __future__ import annotations

from pydantic import BaseModel, Field, StrictBool

from oidc.core.models import PendingRequest


class CompleteRequest(PendingRequest):
    """`POST /oidc/authorize/complete`: the signed-in browser finishes the authorization request."""

    consent: StrictBool = False


class DeviceSignIn(CompleteRequest):
    """`POST /oidc/authorize/device`: single sign-on with the device's live session; `signature` over
    "citylogin-sso:" + `challenge` (from `POST /login/challenge`) by the device's key."""

    client_cert: str = Field(min_length=1, max_length=32768, description="base64 of the certificate PEM")
    challenge: str = Field(min_length=1, max_length=128)
    signature: str = Field(min_length=1, max_length=12000, description="base64 signature")


class CancelRequest(PendingRequest):
    error: str = Field(default="access_denied", pattern=r"^(access_denied|login_required|consent_required)$")


class Interaction(BaseModel):
    """What the sign-in page shows of an authorization request."""

    client_id: str
    client_name: str
    scopes: list[str]
    prompt: list[str]
    max_age: int | None = None
    login_hint: str | None = None
    consent: bool
    # What the app registered to be shown by (RFC 7591 §2): its logo, its home page, its policy and terms
    logo_uri: str | None = None
    client_uri: str | None = None
    policy_uri: str | None = None
    tos_uri: str | None = None
    registered_itself: bool = Field(default=False, description="the app registered itself (RFC 7591) and no "
                                                               "operator verified it: the page says so")


class Redirect(BaseModel):
    """Where the browser goes next: the app's redirect URI with the code or the error in its query; for
    `response_mode=form_post`, the redirect URI alone and, in `form_post`, the response sealed, which
    the browser POSTs (field `response`) to /oidc/authorize/respond for the page that posts it on."""

    redirect_to: str
    form_post: str | None = None


class FormPostResponse(BaseModel):
    """`POST /oidc/authorize/respond` (a form): the sealed response of Redirect's `form_post`."""

    response: str = Field(max_length=16384)


class PushedRequest(BaseModel):
    """RFC 9126 §2.2: where the browser's authorization request points instead of its parameters."""

    request_uri: str
    expires_in: int
