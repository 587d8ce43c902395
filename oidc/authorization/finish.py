"""A waiting authorization request ends (OpenID Connect Core §3.1.2.3-§3.1.2.6): it is shown on the sign-in
page (interaction) and finished by the signed-in browser with a code (complete) or the app's error (cancel),
only by the browser that started it, which shows the cookie /oidc/authorize gave it
(oidc.authorization.browser_binding); a form_post answer is posted from citylogin's own page (respond).
How the request began is oidc.authorization.begin's."""
from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from werkzeug.wrappers import Response

from accounts import service as accounts
from relying_parties import service as apps
from relying_parties.models import AppRecord
from relying_parties.registry import current_app
from common.errors import ApiError, ErrorCode, Forbidden, Unauthorized, request_locale
from common.crypto.tokens import token_digest
from common.database.batch_read import KeyRead, read_together
from common.keys.ring_reader import RefreshSecrets
from oidc.authorization import browser_binding
from oidc.authorization.handles import app_of
from oidc.app_grants import consents
from oidc.core import pages
from oidc.core import refusals
from oidc.authorization import response_mode
from oidc.authorization.request import REQUEST_PURPOSE, authorization_request
from oidc.core.context import grant_store, issuer, one_time_tokens
from oidc.core.models import SCOPES, SignedIn, WaitingRequest
from oidc.authorization.models import Interaction, Redirect
from oidc.core.pages import BrowserRefusal
from oidc.token.server import provider
from oidc.core.store import RequestStore
from sessions import service as sessions
from sessions.models import Principal, SessionRecord
from common.runtime.context import AppContext


class AuthorizationRequestUnknown(ApiError):
    status, code = 400, ErrorCode.OIDC_REQUEST_UNKNOWN
    detail = "This sign-in request is unknown, finished or expired: start again from the app."


class LoginRequired(Unauthorized):
    code, detail = ErrorCode.LOGIN_REQUIRED, "The app asks for a fresh sign-in on this device."


class ConsentRequired(Forbidden):
    code, detail = ErrorCode.CONSENT_REQUIRED, "Allow the app to use your account first."


class AuthorizationRefused(ApiError):
    status, code = 400, ErrorCode.INVALID_REQUEST
    detail = "The app's sign-in request is not valid."


WAITING, PERSON = "oidc.waiting", "oidc.person"  # complete()'s reads beside the session
GRANT_NOW = "oidc.grant_now"  # and the app's grant on the session, the handle naming the app


def interaction(ctx: AppContext, *, request_id: str, browser: str | None) -> Interaction:
    """What the sign-in page shows: which app asks, for what, and how (prompt, max_age); only to the
    browser that started the request."""
    params = _pending(ctx, request_id, browser=browser).params
    app = _app(ctx, params["client_id"])
    return Interaction(client_id=app.client_id, client_name=app.name,
                       scopes=[s for s in params.get("scope", "").split() if s in SCOPES],
                       prompt=params.get("prompt", "").split(), max_age=_max_age(params),
                       login_hint=params.get("login_hint"), consent=app.oidc().consent, logo_uri=app.oidc().logo_uri,
                       client_uri=app.oidc().client_uri, policy_uri=app.oidc().policy_uri, tos_uri=app.oidc().tos_uri,
                       registered_itself=app.registered_itself())


def complete_reads(ctx: AppContext, *, request_id: str) -> sessions.Along:
    """What finishing a request reads in the device's session's own batch read (the guard's `along`):
    the waiting request and the person (the ID token's claims are taken now, with the code)."""
    def reads(claims: dict[str, Any]) -> dict[str, KeyRead[Any]]:
        return _complete_reads(ctx, request_id=request_id, user_uuid=str(claims.get("sub")),
                               session_id=str(claims.get("sid")))
    return reads


def complete(ctx: AppContext, *, principal: Principal, request_id: str, browser: str | None,
             consent: bool) -> Redirect:
    """The signed-in browser that started the request (`browser`: its cookie) finishes it: a code for
    its session, or the app's error; any other browser gets OtherBrowser, and nothing. An app
    added with --consent asks the person (403 consent_required, or that error at the app for
    prompt=none) unless they allowed it these scopes before; prompt=consent asks every time. Nothing is
    written: the code is sealed (oidc.token.codes), and every code of one request counts as one at the token
    endpoint (a second redemption is a replay)."""
    found = principal.along if WAITING in principal.along else read_together(
        ctx.dynamodb, _complete_reads(ctx, request_id=request_id, user_uuid=principal.user_uuid,
                                      session_id=principal.session_id))
    waiting = _this_browsers(found[WAITING], browser=browser)
    if found[PERSON] is None:
        raise sessions.AccountDeleted()
    params = waiting.params
    _check_sign_in_fresh(params, session=principal.session, asked_at=waiting.asked_at, now=ctx.epoch())
    app = _app(ctx, params["client_id"])
    if not _consent_given(ctx, app, params, user_uuid=principal.user_uuid, consent=consent):
        return cancel(ctx, request_id=request_id, browser=browser, error="consent_required")
    location = _code_location(ctx, found, params, principal=principal, request_id=request_id, app=app)
    # nothing written: the code is sealed, its redemption marks the request
    return _answer(ctx.refresh_secrets, response_mode.response_at(params, location), now=ctx.epoch())


def _complete_reads(ctx: AppContext, *, request_id: str, user_uuid: str, session_id: str) -> dict[str, KeyRead[Any]]:
    reads: dict[str, KeyRead[Any]] = {
        WAITING: RequestStore(one_time_tokens(ctx)).read(digest=token_digest(request_id, purpose=REQUEST_PURPOSE),
                                                         now=ctx.epoch()),
        PERSON: accounts.account_read(ctx.tables, user_uuid=user_uuid)}
    named = app_of(request_id)
    if named is not None:
        reads[GRANT_NOW] = grant_store(ctx).read(session_id=session_id, client_id=named)
    return reads


def _check_sign_in_fresh(params: dict[str, str], *, session: SessionRecord, asked_at: int, now: int) -> None:
    """LoginRequired when the session's sign-in is older than the request asks (OIDC Core §3.1.2.1):
    prompt=login wants one after the request, max_age one within so many seconds."""
    max_age = _max_age(params)
    if ("login" in params.get("prompt", "").split() and session.login_epoch < asked_at) or \
            (max_age is not None and now - session.login_epoch > max_age):
        raise LoginRequired()


def _consent_given(ctx: AppContext, app: AppRecord, params: dict[str, str], *, user_uuid: str,
                   consent: bool) -> bool:
    """Whether the person allowed an app added with --consent these scopes (now, remembered, or before);
    ConsentRequired for the page to ask, False for prompt=none, which the app hears as consent_required."""
    if not app.oidc().consent:
        return True
    prompts = params.get("prompt", "").split()
    scopes = frozenset(s for s in params.get("scope", "").split() if s in SCOPES)
    if consent:
        consents.remember(ctx, user_uuid=user_uuid, client_id=app.client_id, scopes=scopes)
        return True
    if "consent" in prompts or consents.needs_asking(ctx, user_uuid=user_uuid, client_id=app.client_id,
                                                     scopes=scopes):
        if "none" in prompts:
            return False
        raise ConsentRequired()
    return True


def _code_location(ctx: AppContext, found: dict[str, Any], params: dict[str, str], *, principal: Principal,
                   request_id: str, app: AppRecord) -> str:
    """Authlib's answer to the request for this session's person: the redirect URI with its code."""
    session = principal.session
    user = SignedIn(user_uuid=principal.user_uuid, session_id=principal.session_id, device_id=principal.device_id,
                    auth_time=session.login_epoch, amr=tuple(session.amr or sessions.PASSWORD_AMR))
    server = provider(ctx)
    stored = authorization_request(ctx, params)
    stored.person, stored.session_expires_epoch = found[PERSON], session.expires_epoch
    stored.digest = token_digest(request_id, purpose=REQUEST_PURPOSE)
    live = found.get(GRANT_NOW) if app_of(request_id) == app.client_id else None
    stored.replacing = live.grant_id if live is not None else None
    response = server.create_authorization_response(request=stored, grant_user=user,
                                                    grant=server.get_authorization_grant(stored))
    location = response.headers.get("Location")
    if response.status_code != 302 or not location:
        raise AuthorizationRefused()
    return str(location)


def cancel(ctx: AppContext, *, request_id: str, browser: str | None, error: str) -> Redirect:
    """The person declined, or prompt=none found nobody signed in: the app hears `error`, in the browser
    that started the request (`browser`: its cookie) and no other."""
    params = _pending(ctx, request_id, browser=browser).params
    if error != "access_denied":  # the person's own "no" is no refusal; prompt=none's answers are
        refusals.refused(refusals.because(OAuth2Error(error=error), "prompt_none"), endpoint=refusals.AUTHORIZE,
                         client_id=params.get("client_id"))
    RequestStore(one_time_tokens(ctx)).finish(digest=token_digest(request_id, purpose=REQUEST_PURPOSE), now=ctx.epoch())
    fields = [("error", error), *([("state", params["state"])] if params.get("state") else []), ("iss", issuer(ctx))]
    return _answer(ctx.refresh_secrets, response_mode.response_to(params, fields), now=ctx.epoch())


def respond(ring: RefreshSecrets, *, sealed: object, now: int) -> Response:
    """POST /oidc/authorize/respond: the auto-submitting page of a form_post response the web UI was
    given; one that is not citylogin's, or is over (at `now`), is an error page."""
    response = response_mode.opened(ring, sealed, now=now)
    if response is None:
        raise BrowserRefusal(kind="respond", error=ErrorCode.OIDC_REQUEST_UNKNOWN.value)
    return pages.form_post_page(action=response.redirect_uri, fields=response.fields, locale=request_locale())


def _pending(ctx: AppContext, request_id: str, *, browser: str | None) -> WaitingRequest:
    """The waiting request, for the browser that started it (`browser`: the cookie it sent)."""
    return _this_browsers(RequestStore(one_time_tokens(ctx)).get(
        digest=token_digest(request_id, purpose=REQUEST_PURPOSE), now=ctx.epoch()), browser=browser)


def _this_browsers(found: WaitingRequest | None, *, browser: str | None) -> WaitingRequest:
    """AuthorizationRequestUnknown unless the request waits; OtherBrowser unless `browser` started it."""
    if found is None:
        raise AuthorizationRequestUnknown()
    browser_binding.check(kept=found.browser_digest, presented=browser)
    return found


def _app(ctx: AppContext, client_id: str) -> AppRecord:
    """The app of a waiting request, as every host sees it within a second of a change (relying_parties.registry)."""
    app = current_app(ctx, client_id=client_id)
    if app is None:
        raise apps.AppNotFound()
    return app


def _max_age(params: dict[str, str]) -> int | None:
    value = params.get("max_age", "")
    return int(value) if value.isdigit() and len(value) < 10 else None


def _answer(ring: RefreshSecrets, response: response_mode.AuthorizationResponse, *, now: int) -> Redirect:
    """Where the web UI sends the browser: the redirect URI with the response in its query, or, for
    form_post, the response sealed for /oidc/authorize/respond (oidc.authorization.response_mode)."""
    if not response.form_post:
        return Redirect(redirect_to=response.location())
    sealed = response_mode.seal(ring, response, now=now)
    return Redirect(redirect_to=response.redirect_uri, form_post=sealed)
