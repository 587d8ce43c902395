"""An app's RP-initiated logout, finished by the browser's device (SPEC §14): /oidc/logout kept the app's
request (oidc.logout.rp_initiated), and citylogin's sign-out page has this browser's device sign a fresh challenge
under a purpose of its own ("citylogin-sign-out:", so that no login, renewal or single sign-on signature
stands in for it). The device's live session ends without a question only when it is the session the
app's ID token hint named, of that person; any other — no hint, another session, a hint that named
someone else — ends only once the person said yes (`confirm`). The hint never ends anything by itself:
an expired one still names its session, but only the device's proof ends it. No Flask here."""
from __future__ import annotations

from common.errors import ErrorCode, Forbidden
from flows import device_proof
from oidc.logout import rp_initiated as logout
from oidc import service as oidc
from oidc.logout.models import DeviceSignOut, LogoutRequest, SignedOut
from sessions import service as sessions
from sessions.models import EndedBy, Principal
from common.runtime.context import AppContext

SIGN_OUT_PURPOSE = "citylogin-sign-out:"  # the device signs this prefix + the challenge
REQUEST = "sign_out.request"


class SignOutUnconfirmed(Forbidden):
    code = ErrorCode.LOGOUT_CONFIRMATION_REQUIRED
    detail = "This device's session is not the one the app named: ask the person first."


def finish_with_device(ctx: AppContext, *, body: DeviceSignOut) -> SignedOut:
    """The app's logout request answered by the device that signed the challenge: one batch read (the
    device, its account's presence, the challenge, the request), the signature, the challenge used up,
    the device's live session read; it ends when the request named it or the person confirmed, and the
    browser goes on to the app's registered URI with its state."""
    proven = device_proof.prove(ctx, client_cert=body.client_cert, challenge=body.challenge,
                                signature=body.signature, purpose=SIGN_OUT_PURPOSE,
                                reads={REQUEST: logout.request_read(ctx, handle=body.request)})
    device, session = proven.device, proven.session
    request: LogoutRequest | None = proven.facts[REQUEST]
    if request is None:
        raise logout.LogoutRequestUnknown()
    if session is None:
        raise oidc.LoginRequired("This device has no live citylogin session: nothing to sign out of.")
    if not (request.names(session_id=session.session_id, user_uuid=device.user_uuid) or body.confirm):
        raise SignOutUnconfirmed()
    # The person's other pages on this device are told which app signed them out (SPEC §4 by_app).
    by_app = EndedBy(by_app=request.client_id, by_app_name=logout.app_name(ctx, client_id=request.client_id))
    sessions.logout(ctx, principal=Principal(user_uuid=device.user_uuid, session_id=session.session_id,
                                             device_id=device.device_id, session=session, token_expires_epoch=0),
                    ended_by=by_app)
    # Used up after the ending, not before: a failure in between leaves the person's session ended and
    # the request to a retry (which then finds no live session here), never the session live and the request gone.
    logout.finish(ctx, handle=body.request)
    return SignedOut(redirect_to=request.redirect_to)

