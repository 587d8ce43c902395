"""Single sign-on for an app (SPEC §14): a browser whose device already has a live citylogin session —
opened in another tab, or through the web SDK on citylogin's origin — finishes an app's authorization
request without a password. The device proves it holds its key by signing a fresh challenge under a
purpose of its own ("citylogin-sso:", so that no login or renewal signature stands in for it); the
request is then finished with that device's live session, which counts once against the device limit
however many tabs and apps it serves. A device with no live session gets 401 login_required: the
sign-in page then asks for the password or a passkey as for any login. No Flask here."""
from __future__ import annotations

from common import challenges
from common.batch_read import read_together
from common.context import AppContext
from devices import service as devices
from oidc import service as oidc
from oidc.models import DeviceSignIn, Redirect
from sessions import service as sessions
from sessions.models import Principal

SSO_PURPOSE = "citylogin-sso:"  # the device signs this prefix + the challenge
PRESENCE, DEVICE, CHALLENGE = "sso.presence", "sso.device", "sso.challenge"


def finish_with_device(ctx: AppContext, *, body: DeviceSignIn) -> Redirect:
    """The app's waiting request finished with the live session of the device that signed the
    challenge: one batch read (the device, its account's presence, the challenge), the signature, the
    challenge used up, the session read; then as /oidc/authorize/complete (prompt, max_age, consent)."""
    presented = devices.presented_certificate(body.client_cert)
    facts = read_together(ctx.dynamodb, {
        DEVICE: devices.device_read(ctx, user_uuid=presented.user_uuid, device_id=presented.device_id),
        PRESENCE: sessions.presence_read(ctx, user_uuid=presented.user_uuid),
        CHALLENGE: challenges.challenge_read(ctx, body.challenge)})
    try:
        device = devices.device_for_presented(ctx, presented, user_uuid=presented.user_uuid, record=facts[DEVICE])
        devices.check_signed_challenge(device, purpose=SSO_PURPOSE, challenge=body.challenge,
                                       signature=body.signature, challenge_was_valid=facts[CHALLENGE])
    finally:  # single-use whatever the outcome
        used = challenges.consume_challenge(ctx, body.challenge)
    if not used:  # a parallel request spent it between the read and now
        raise devices.InvalidProof("The challenge is unknown, expired or already used.")
    entry = next((e for e in facts[PRESENCE].entries.values() if e.device_id == device.device_id), None)
    session = entry and sessions.live_session(ctx, session_id=entry.session_id, user_uuid=device.user_uuid,
                                              device_id=device.device_id)
    if not session:
        raise oidc.LoginRequired("This device has no live citylogin session: sign in on it.")
    principal = Principal(user_uuid=device.user_uuid, session_id=session.session_id, device_id=device.device_id,
                          session=session, token_expires_epoch=0)
    return oidc.complete(ctx, principal=principal, request_id=body.request, consent=body.consent)
