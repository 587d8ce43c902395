"""The device authorization grant (RFC 8628, SPEC §14): a TV, a console or a command line asks for a
code (POST /oidc/device_authorization), shows the person its user code and a QR code of the page, and
polls the token endpoint; the person approves on a device they already use (the web UI's /device page,
flows.device_approval), which opens the screen's own session under the device limit; the screen's next
poll gets the tokens of that session, once.

Codes: the device_code is 32 random bytes, stored as a digest; the user code is 8 letters of an alphabet
without vowels (no words) and without look-alikes (0/O, 1/I/L): 19^8, about 34 bits, shown XXXX-XXXX and
taken in any case, with or without the dash or spaces, and in its compatibility forms (full width, as a
Japanese IME types it). Guessing is limited per address (a minute's presentations, right or wrong) and per
code (its presentations capped), RFC 8628 §5.1."""
from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, OAuth2Error, UnauthorizedClientError
from authlib.oauth2.rfc8628 import AuthorizationPendingError, ExpiredTokenError, SlowDownError
from authlib.oauth2.rfc6749.errors import AccessDeniedError

from relying_parties.models import AppRecord
from relying_parties.registry import current_app
from relying_parties import service as apps
from common.errors import ApiError, ErrorCode, TooManyRequests
from common.crypto.tokens import token_digest
from common.database.guarded_write import GuardedWrite, write_all
from oidc.core.live_writes import write_while_live
from oidc.core.context import grant_store, issuer, one_time_tokens
from oidc.device.store import (APPROVED, DENIED, PENDING, DeviceRequest, DeviceRequestDecided, DeviceStore,
                               PresentedCode)
from oidc.core.models import SCOPES, Grant
from sessions import service as sessions
from sessions.models import SESSION_ACTIVE, EndedBy, RevokeReason
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore, limit_subject

USER_CODE_ALPHABET = "BCDFGHJKMNPQRSTVWXZ"  # no vowels, no L (1/I/L): 19 letters
USER_CODE_LENGTH = 8
# What may stand between the letters, after NFKC (which makes the full width "－", the small "﹣" and every
# Unicode space but the Ogham mark these ASCII ones): the dashes a keyboard or an autocorrect types (U+2010
# hyphen to U+2015 horizontal bar, U+2212 minus) and U+30FC, the long-vowel mark the "-" key types in a
# Japanese IME's kana mode. A separator says nothing, so taking one more never makes a wrong code right.
USER_CODE_SEPARATORS = frozenset("- \t\u2010\u2012\u2013\u2014\u2015\u2212\u30fc")
USER_CODE_TRIES = 20       # presentations of one user code (a person: a lookup, an approval, a retry or two)
DEVICE_CODE_BYTES = 32
DEVICE_PURPOSE, USER_CODE_PURPOSE = "oidc_device_code", "oidc_user_code"
WINDOW_SECONDS = 60
CREATE_ATTEMPTS = 5        # user codes drawn again while a live request holds the same one
MAX_DEVICE_CODE_LENGTH = 128
# A poll this much earlier than the interval asks is still in time: a screen waits the interval after
# the last answer, and the request carrying the previous poll may have travelled slower than this one.
POLL_LEEWAY = 0.2


class InvalidUserCode(ApiError):
    status, code = 400, ErrorCode.INVALID_USER_CODE
    detail = "This code is wrong, used or expired."


class TooManyUserCodes(TooManyRequests):
    code = ErrorCode.RATE_LIMITED


class UserCodeTaken(Exception):
    """A live request holds the user code drawn: another is drawn."""


class TooManyDeviceRequests(OAuth2Error):
    """Too many device authorization requests from one address this minute: RFC 6749 §5.2's format with
    `temporarily_unavailable`, 429 and Retry-After (as /oidc/par)."""

    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, *, retry_after: int) -> None:
        super().__init__("Too many device authorization requests from this address; try again in a minute.")
        self.retry_after = retry_after  # oidc.core.oauth_errors.json_error: the Retry-After header


def store(ctx: AppContext) -> DeviceStore:
    return DeviceStore(one_time_tokens(ctx))


# --- codes -------------------------------------------------------------------------------------

def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def shown(code: str) -> str:
    """A user code as a person reads it: XXXX-XXXX."""
    return f"{code[:4]}-{code[4:]}"


def normalized(typed: object) -> str | None:
    """The user code a person typed: letters of the alphabet in any case, with or without separators (a
    dash or a space of any kind, a tab) between them; None for anything else (never an error of its own: a
    wrong code). A compatibility form is its letter (NFKC: what a Japanese IME types, full width letters,
    dashes and the ideographic space); a look-alike of another script is no letter of the code (Cyrillic
    'В' is not 'B'), nor is a letter that only upper-cases into the alphabet ('ß')."""
    if not isinstance(typed, str) or len(typed) > 32:
        return None
    letters = "".join(ch for ch in unicodedata.normalize("NFKC", typed) if ch not in USER_CODE_SEPARATORS)
    if not letters.isascii():
        return None
    letters = letters.upper()
    if len(letters) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in letters):
        return None
    return letters


def user_code_digest(code: str) -> str:
    return token_digest(code, purpose=USER_CODE_PURPOSE)


def device_code_digest(device_code: str) -> str:
    return token_digest(device_code, purpose=DEVICE_PURPOSE)


# --- the screen: asking and polling ------------------------------------------------------------

def begin(ctx: AppContext, *, app: AppRecord, scope: str, jkt: str | None, ip: str | None) -> dict[str, Any]:
    """RFC 8628 §3.2: a new request of `app` for `scope`, kept with its user code and counted against the
    address's minute in one transaction (TooManyDeviceRequests when it is full)."""
    if not app.oidc().device_flow:
        raise UnauthorizedClientError("This app is not allowed the device authorization grant.")
    now, ttl, interval = ctx.epoch(), ctx.settings.device_code_ttl, ctx.settings.device_poll_interval
    counter = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take_item(
        f"oidc_device#ip:{limit_subject(ip)}", limit=ctx.settings.device_authorizations_per_minute_per_ip,
        window_seconds=WINDOW_SECONDS, now=now)
    retry_after = WINDOW_SECONDS - now % WINDOW_SECONDS
    for _ in range(CREATE_ATTEMPTS):
        device_code, user_code = secrets.token_urlsafe(DEVICE_CODE_BYTES), new_user_code()
        kept, code = store(ctx).create_items(
            device_digest=device_code_digest(device_code), user_code_digest=user_code_digest(user_code),
            client_id=app.client_id, scope=scope, jkt=jkt, expires_epoch=now + ttl, interval=interval, now=now)
        try:
            write_all(ctx.dynamodb, [
                GuardedWrite(item=dict(counter), refusal=lambda: TooManyDeviceRequests(retry_after=retry_after)),
                GuardedWrite(item=kept, refusal=UserCodeTaken), GuardedWrite(item=code, refusal=UserCodeTaken)])
        except UserCodeTaken:
            continue
        page = f"{issuer(ctx)}/device"
        return {"device_code": device_code, "user_code": shown(user_code), "verification_uri": page,
                "verification_uri_complete": f"{page}?user_code={shown(user_code)}", "expires_in": ttl,
                "interval": interval}
    raise OAuth2Error("No user code was free; try again.", status_code=503)


def poll(ctx: AppContext, *, device_code: object, client_id: str) -> DeviceRequest:
    """RFC 8628 §3.4-3.5: the approved request behind `device_code` of `client_id`, or the error to
    answer: authorization_pending, slow_down (polled sooner than its interval: the interval grows by 5 s
    on every host), access_denied, expired_token; invalid_grant for anything else (made up, another
    app's, redeemed). One UpdateItem records the poll and answers the request as it was: no read."""
    if not isinstance(device_code, str) or not 0 < len(device_code) <= MAX_DEVICE_CODE_LENGTH:
        raise InvalidGrantError("Unknown device_code.")
    now_ms = ctx.epoch_ms()
    request, live = store(ctx).polled(digest=device_code_digest(device_code), client_id=client_id,
                                      now=now_ms // 1000, now_ms=now_ms)
    if request is None or request.client_id != client_id:
        raise InvalidGrantError("Unknown device_code.")
    if not live:
        raise ExpiredTokenError("The device code expired: start again.")
    if request.status == DENIED:
        raise AccessDeniedError("The person denied this request.")
    if request.status == APPROVED:
        return request
    if request.status != PENDING:
        raise InvalidGrantError("This device code was used already.")
    if request.last_poll_ms is not None and now_ms - request.last_poll_ms < request.interval * 1000 * (1 - POLL_LEEWAY):
        store(ctx).slow_down(digest=request.digest)
        raise SlowDownError(f"Poll every {request.interval + 5} seconds.")
    raise AuthorizationPendingError()


def redeem(ctx: AppContext, request: DeviceRequest, *, grant: Grant, app: AppRecord) -> None:
    """The approved request gives `app` its grant on the screen's session, in one transaction with the
    request's spending, the session's liveness (its sign-out since gives nothing; so does the code's
    expiry, which ends a session never redeemed), the session and its seat lasting their max lifetime
    from now on, and the app's registration: of parallel polls, one gets the tokens; every refusal is
    invalid_grant."""
    assert request.session_id is not None and request.user_uuid is not None and request.device_id is not None
    recorded = grant_store(ctx).redeem_item(grant, request_digest=request.digest, now=ctx.epoch(),
                                            expires_epoch=request.session_expires_epoch,
                                            issued_ms=request.approved_ms, replacing=None)
    write_while_live(ctx.dynamodb, [
        *sessions.screen_redeemed(ctx, session_id=request.session_id, user_uuid=request.user_uuid,
                                  device_id=request.device_id, app=(app.client_id, app.name),
                                  expires_epoch=request.session_expires_epoch,
                                  refusal=lambda: InvalidGrantError("The citylogin session of this grant has ended.")),
        GuardedWrite(item=store(ctx).redeem_item(request),
                     refusal=lambda: InvalidGrantError("This device code was used already.")),
        apps.still_registered(ctx, client_id=app.client_id,
                              refusal=lambda: InvalidGrantError("This app was removed after the approval.")),
        GuardedWrite(item=recorded, refusal=lambda: InvalidGrantError("This device code was used already."))])


# --- the person: presenting a code -------------------------------------------------------------

@dataclass(frozen=True)
class PendingScreen:
    """A live user code and its app, as the approval page shows it."""

    code: PresentedCode
    app: AppRecord
    user_code: str

    def scopes(self) -> list[str]:
        return [s for s in self.code.scope.split() if s in SCOPES]


def presented(ctx: AppContext, *, user_code: object, ip: str | None) -> PendingScreen:
    """The pending request behind a user code a person presents, counted against the address's minute
    (429 once full, right code or wrong) and against the code's tries; InvalidUserCode for a wrong, used
    or expired one, or one whose app was removed or no longer has the grant (never told apart)."""
    now = ctx.epoch()
    left = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take(
        f"oidc_user_code#ip:{limit_subject(ip)}", limit=ctx.settings.user_codes_per_minute_per_ip,
        window_seconds=WINDOW_SECONDS, now=now)
    if left is None:
        raise TooManyUserCodes("Too many codes tried from this address; try again in a minute.",
                               retry_after=WINDOW_SECONDS - now % WINDOW_SECONDS)
    code = normalized(user_code)
    found = None if code is None else store(ctx).present(digest=user_code_digest(code), now=now,
                                                         max_tries=USER_CODE_TRIES)
    app = None if found is None else current_app(ctx, client_id=found.client_id)
    if found is None or code is None or app is None or not app.oidc().device_flow:
        raise InvalidUserCode()
    return PendingScreen(code=found, app=app, user_code=shown(code))


def deny(ctx: AppContext, *, user_code: object, ip: str | None) -> None:
    """The person says no (RFC 8628 §3.3): the screen hears access_denied at its next poll."""
    pending = presented(ctx, user_code=user_code, ip=ip)
    decide = store(ctx).decide_items(pending.code, now=ctx.epoch(), approval=None)
    try:
        write_all(ctx.dynamodb, [GuardedWrite(item=decide[0], refusal=DeviceRequestDecided),
                                 GuardedWrite(item=decide[1], refusal=DeviceRequestDecided)])
    except DeviceRequestDecided:
        raise InvalidUserCode() from None


def end_screen_of(ctx: AppContext, *, session_id: str, client_id: str) -> None:
    """The screen's app gave its grant back (RFC 7009: the TV signs out): a session that was that screen's
    ends with it, its seat free at once, and the app is told as of any session's end."""
    session = sessions.session_store(ctx).get(session_id)
    if session is None or session.screen_of != client_id or session.status != SESSION_ACTIVE:
        return
    sessions.revoke_session(ctx, session=session, reason=RevokeReason.LOGGED_OUT,
                            ended_by=EndedBy(by_app=client_id, by_app_name=_app_name(ctx, client_id)))


def _app_name(ctx: AppContext, client_id: str) -> str | None:
    app = current_app(ctx, client_id=client_id)
    return app.name if app else None
