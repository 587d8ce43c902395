"""Single sign-on for an app (SPEC §14): a browser whose device already has a live citylogin session —
opened in another tab, or through the web SDK on citylogin's origin — finishes an app's authorization
request without a password. The device proves it holds its key by signing a fresh challenge under a
purpose of its own ("citylogin-sso:", so that no login or renewal signature stands in for it); the
request is then finished with that device's live session, which counts once against the device limit
however many tabs and apps it serves. A device with no live session gets 401 login_required: the
sign-in page then asks for the password or a passkey as for any login. No Flask here."""
from __future__ import annotations

from flows import device_proof
from oidc import service as oidc
from oidc.authorization.models import DeviceSignIn, Redirect
from sessions.models import Principal
from common.runtime.context import AppContext

SSO_PURPOSE = "citylogin-sso:"  # the device signs this prefix + the challenge


def finish_with_device(ctx: AppContext, *, body: DeviceSignIn, browser: str | None) -> Redirect:
    """The app's waiting request finished with the live session of the device that signed the
    challenge: one batch read (the device, its account's presence, the challenge), the signature, the
    challenge used up, the session read; then as /oidc/authorize/complete (the browser that started the
    request, `browser` its cookie; prompt, max_age, consent)."""
    proven = device_proof.prove(ctx, client_cert=body.client_cert, challenge=body.challenge,
                                signature=body.signature, purpose=SSO_PURPOSE)
    device, session = proven.device, proven.session
    if session is None:
        raise oidc.LoginRequired("This device has no live citylogin session: sign in on it.")
    principal = Principal(user_uuid=device.user_uuid, session_id=session.session_id, device_id=device.device_id,
                          session=session, token_expires_epoch=0)
    return oidc.complete(ctx, principal=principal, request_id=body.request, browser=browser, consent=body.consent)
