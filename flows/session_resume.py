"""One device, one session, in any tab (SPEC §4, §5): a new tab of a browser whose device has a live
session resumes that session instead of asking for a login that would replace it (and sign every app on
the device out). The device proves it holds its key twice over: it signs a fresh challenge under a
purpose of its own ("citylogin-resume:", so that no login, renewal, single sign-on or sign-out signature
stands in for it), and the request carries a DPoP proof by the same key. The answer is an access token of
the device's live session bound to that key, with no refresh token: the session's rotating refresh token
stays with the tab that has it, and a resumed tab resumes again when its access token runs out. A device
with no live session gets 401 login_required. No Flask here."""
from __future__ import annotations

from common.errors import ErrorCode, Unauthorized
from common.crypto.tokens import digests_equal
from devices import service as devices
from flows import device_proof
from oidc.logout import session_apps
from sessions import binding, resume
from sessions.binding import ProofOffer
from sessions.models import ResumeRequest, ResumedSession
from common.runtime.context import AppContext

RESUME_PURPOSE = "citylogin-resume:"  # the device signs this prefix + the challenge


class NoLiveSession(Unauthorized):
    code, detail = ErrorCode.LOGIN_REQUIRED, "This device has no live citylogin session: sign in on it."


def resume_session(ctx: AppContext, *, body: ResumeRequest, offer: ProofOffer | None) -> ResumedSession:
    """An access token of the live session of the device that signed the challenge and the DPoP proof:
    the proof checked first (a nonce asked for leaves the challenge to the retry), then one batch read
    (the device, its account's presence, the challenge), the signature, the challenge used up whatever
    the outcome, the session read; the proof is spent last, once nothing refused the request."""
    proof = binding.checked_proof(ctx.refresh_secrets, ctx.epoch(), offer)
    proven = device_proof.prove(ctx, client_cert=body.client_cert, challenge=body.challenge,
                                signature=body.signature, purpose=RESUME_PURPOSE)
    device, session = proven.device, proven.session
    if not digests_equal(proof.jkt, devices.certified_thumbprint(device) or ""):
        raise binding.InvalidDpopProof(reason="the proof is not signed by the key this device's certificate certifies")
    # A session not bound to this key (a bearer one) cannot lend a bound token: the tab logs in.
    if session is None or not (session.jkt and digests_equal(session.jkt, proof.jkt)):
        raise NoLiveSession()
    binding.spend_proof(ctx, proof)
    lent = resume.lent_access_token(ctx, session)
    apps = session_apps.signed_in_apps(ctx, session_ids=[session.session_id])[session.session_id]
    return ResumedSession(access_token=lent.access_token, token_type=lent.token_type, expires_in=lent.expires_in,
                          session_id=session.session_id, device_id=device.device_id, device_name=device.device_name,
                          user_uuid=device.user_uuid, apps=apps)
