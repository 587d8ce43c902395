"""authorize: the app's request waits for the person. It is checked and kept (begin), shown on the
sign-in page (interaction), and finished by the signed-in browser with a code or the app's error
(complete, cancel): only by the browser that started it, which shows the cookie begin gave it
(oidc.authorization.browser_binding)."""
from __future__ import annotations

import re
import secrets
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from flask import redirect
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from accounts import service as accounts
from relying_parties import service as apps
from relying_parties.models import AppRecord, OidcClient
from relying_parties.registry import current_app
from common.errors import ApiError, ErrorCode, Forbidden, Unauthorized, request_locale
from common.crypto.tokens import token_digest
from common.database.batch_read import KeyRead, read_together
from common.database.guarded_write import GuardedWrite, write_all
from common.keys.ring_reader import RefreshSecrets
from oidc.authorization import browser_binding
from oidc.app_grants import consents
from oidc.core import pages
from oidc.authorization import par
from oidc.core import refusals
from oidc.authorization import checks as request_checks
from oidc.core import request_limits
from oidc.authorization import request_objects
from oidc.authorization import response_mode
from oidc.core import dpop
from oidc.authorization.request import REQUEST_PURPOSE, REQUEST_TTL, Pending, authorization_request
from oidc.core.context import grant_store, issuer, one_time_tokens
from oidc.core.models import SCOPES, SignedIn, WaitingRequest
from oidc.authorization.models import Interaction, Redirect
from oidc.core.pages import BrowserRefusal
from oidc.token.server import Provider, provider
from oidc.core.store import RequestStore
from sessions import service as sessions
from sessions.models import Principal
from common.web.caller import current_caller
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


def begin(ctx: AppContext, sent: request_checks.Params) -> Response:
    """GET|POST /oidc/authorize with every value of every parameter (`sent`): check the request (a
    pushed one's parameters, for a PAR `request_uri`; a request object's over the query's, for a `request`
    or another `request_uri`) by the standard's refusals and as Authlib does, keep it bound to this browser
    (a cookie of its own), and send the browser to the sign-in page. An unknown client or redirect URI, a
    PAR request_uri that is not good, or a client_id, redirect_uri or request_uri sent twice or malformed
    gets an error page, never a redirect; any other refusal goes to the trusted redirect URI (one about a
    request object, in the response mode and with the state the object asked for)."""
    server = provider(ctx)
    try:
        request_checks.check_target(sent)
        pushed = _pushed(ctx, sent)
        # the app is looked up here only for a request object (Authlib looks it up for every request)
        carried = None if pushed or not ("request" in sent or "request_uri" in sent) else request_objects.carried(
            ctx, sent, client=server.query_client(sent.get("client_id")))
    except OAuth2Error as error:
        return _refusal(ctx, error, request_objects.reply_params(error, sent), client_id=sent.get("client_id"))
    params = MultiDict(pushed.params) if pushed else carried.params if carried else sent
    try:
        _check_authorization_request(server, params)
        grant = server.get_consent_grant(request=authorization_request(ctx, params.to_dict()), end_user=Pending())
        _check_app_rules(grant.client.app.oidc(), params, redirect_uri=grant.redirect_uri, pushed=pushed is not None,
                         signed=bool(carried and carried.signed))
        request_id, binding = _request_id(grant.client.client_id), browser_binding.new_binding()
        spending = [*([pushed.spending] if pushed else []), *([carried.spending] if carried and carried.spending
                                                              else [])]
        _keep(ctx, digest=token_digest(request_id, purpose=REQUEST_PURPOSE), params=params.to_dict(),
              spending=spending, browser_digest=binding.digest, redirect_uri=grant.redirect_uri)
    except OAuth2Error as error:
        untrusted = None if error.redirect_uri or refusals.reason_of(error) else _untrusted_target(server, params)
        if untrusted:
            refusals.because(error, untrusted)
        return _refusal(ctx, error, request_objects.reply_params(error, params), client_id=params.get("client_id"))
    response = redirect(f"{issuer(ctx)}/#oidc={request_id}", code=303)
    browser_binding.set_cookie(response, request_id=request_id, binding=binding, issuer=issuer(ctx),
                               max_age=REQUEST_TTL)
    return response


def _pushed(ctx: AppContext, sent: request_checks.Params) -> par.PushedRequest | None:
    """The pushed request a PAR `request_uri` stands for (RFC 9126 §4), None for a request without one."""
    if not par.names_pushed(sent.get("request_uri")):
        return None
    if "request" in sent:
        raise refusals.because(InvalidRequestError("Send request or request_uri, not both (RFC 9101 section 5)."),
                               "request_object_and_uri")
    return par.presented_request(one_time_tokens(ctx), request_uri=sent["request_uri"],
                                 client_id=sent.get("client_id"), now=ctx.epoch())


def _check_app_rules(app: OidcClient, params: request_checks.Params, *, redirect_uri: str, pushed: bool,
                     signed: bool) -> None:
    """The app's own rules: PAR only (--require-par), signed request objects only (RFC 9101 §10.5: a pushed
    request was held to it at /oidc/par), and a dpop_jkt of its grammar."""
    if app.par_required() and not pushed:
        raise refusals.because(InvalidRequestError("This app signs in with pushed authorization requests (PAR) "
                                                   "only.", redirect_uri=redirect_uri), "par_required")
    if app.require_signed_request_object and not (pushed or signed):
        raise refusals.because(InvalidRequestError("This app sends its authorization requests as signed request "
                                                   "objects only (RFC 9101).", redirect_uri=redirect_uri),
                               "signed_request_object_required")
    if "dpop_jkt" in params and not dpop.JKT.match(params["dpop_jkt"]):
        raise refusals.because(InvalidRequestError("dpop_jkt must be a key's RFC 7638 thumbprint.",
                                                   redirect_uri=redirect_uri), "dpop_jkt_malformed")


def _request_id(client_id: str) -> str:
    """A new request's handle: 32 random characters, then the app's client_id (public), by which
    complete() reads the app's grant on the session with the request (the redemption's first try then
    replaces that grant, rather than learning of it from a refused write)."""
    return secrets.token_urlsafe(RANDOM_BYTES) + (client_id if _APP_IN_HANDLE.fullmatch(client_id) else "")


def _app_of(request_id: str) -> str | None:
    """The client_id a request's handle names (a hint: complete() takes it only if the request says so)."""
    named = request_id[RANDOM_CHARS:]
    return named if named and _APP_IN_HANDLE.fullmatch(named) else None


def _keep(ctx: AppContext, *, digest: str, params: dict[str, str], spending: list[GuardedWrite],
          browser_digest: str, redirect_uri: str) -> None:
    """Keep the request for the sign-in page, counted against its address's allowance in the same
    transaction (oidc.core.request_limits: TooManyRequests to `redirect_uri`), and spending there too what it
    came by: a pushed request's request_uri, a request object's jti (a refusal of any leaves them to
    their client)."""
    kept = RequestStore(one_time_tokens(ctx)).create_item(digest=digest, params=params, client_id=params["client_id"],
                                                          browser_digest=browser_digest, now=ctx.epoch(),
                                                          ttl=REQUEST_TTL)
    counter = request_limits.counted(ctx, kind=request_limits.AUTHORIZE, ip=current_caller().ip,
                                     redirect_uri=redirect_uri)
    write_all(ctx.dynamodb, [*spending, counter,
                             GuardedWrite(item=kept, refusal=lambda: RuntimeError("a new id"))])


def _untrusted_target(server: Provider, params: request_checks.Params) -> str | None:
    """Why a request has no redirect URI to send its error to, if that is why (the reason oidc.core.refusals
    gives)."""
    client = server.query_client(params.get("client_id"))
    if client is None:
        return "client_unknown"
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        return "redirect_uri_missing"
    return None if client.check_redirect_uri(redirect_uri) else "redirect_uri_not_registered"


def _check_authorization_request(server: Provider, params: request_checks.Params) -> None:
    """The standard's refusals of an authorization request whose client_id and redirect_uri were
    checked (request_checks.check_target); each goes to the redirect URI once that is trusted: the
    client is known and registered it (RFC 6749 §4.1.2.1), else to an error page."""
    try:
        request_checks.check_authorization_request(params)
    except OAuth2Error as error:
        error.redirect_uri = _trusted_redirect_uri(server, params)
        raise


def _trusted_redirect_uri(server: Provider, params: request_checks.Params) -> str | None:
    client = server.query_client(params.get("client_id"))
    redirect_uri = params.get("redirect_uri")
    if client is None or redirect_uri is None or not client.check_redirect_uri(redirect_uri):
        return None
    return redirect_uri


def _refusal(ctx: AppContext, error: OAuth2Error, params: request_checks.Params, *,
             client_id: str | None) -> Response:
    """A refused authorization request, logged and counted (oidc.core.refusals): to the app's trusted redirect
    URI in the response mode it asked for, else an error page for the person."""
    refusals.refused(error, endpoint=refusals.AUTHORIZE, client_id=client_id)
    if not error.redirect_uri:
        raise BrowserRefusal(kind="authorize", error=error.error, description=error.description)
    state = request_checks.echoable_state(params)
    fields = [("error", error.error), ("error_description", error.description or error.error),
              *([("state", state)] if state else []), ("iss", issuer(ctx))]
    response = response_mode.response_to({**params.to_dict(), "redirect_uri": error.redirect_uri}, fields)
    if response.form_post:
        return pages.form_post_page(action=response.redirect_uri, fields=response.fields, locale=request_locale())
    return redirect(response.location(), code=303)


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


def _max_age(params: dict[str, str]) -> int | None:
    value = params.get("max_age", "")
    return int(value) if value.isdigit() and len(value) < 10 else None


WAITING, PERSON = "oidc.waiting", "oidc.person"  # complete()'s reads beside the session
GRANT_NOW = "oidc.grant_now"  # and the app's grant on the session, the handle naming the app
RANDOM_BYTES, RANDOM_CHARS = 24, 32  # a handle's random part: token_urlsafe(24) is 32 characters
_APP_IN_HANDLE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # the handle's alphabet (oidc.core.models.PendingRequest)


def complete_reads(ctx: AppContext, *, request_id: str) -> sessions.Along:
    """What finishing a request reads in the device's session's own batch read (the guard's `along`):
    the waiting request and the person (the ID token's claims are taken now, with the code)."""
    def reads(claims: dict[str, Any]) -> dict[str, KeyRead[Any]]:
        return _complete_reads(ctx, request_id=request_id, user_uuid=str(claims.get("sub")),
                               session_id=str(claims.get("sid")))
    return reads


def _complete_reads(ctx: AppContext, *, request_id: str, user_uuid: str, session_id: str) -> dict[str, KeyRead[Any]]:
    reads: dict[str, KeyRead[Any]] = {
        WAITING: RequestStore(one_time_tokens(ctx)).read(digest=token_digest(request_id, purpose=REQUEST_PURPOSE),
                                                         now=ctx.epoch()),
        PERSON: accounts.account_read(ctx.tables, user_uuid=user_uuid)}
    named = _app_of(request_id)
    if named is not None:
        reads[GRANT_NOW] = grant_store(ctx).read(session_id=session_id, client_id=named)
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
    params, asked_at, session = waiting.params, waiting.asked_at, principal.session
    prompts, max_age, now = params.get("prompt", "").split(), _max_age(params), ctx.epoch()
    if ("login" in prompts and session.login_epoch < asked_at) or \
            (max_age is not None and now - session.login_epoch > max_age):
        raise LoginRequired()
    app = _app(ctx, params["client_id"])
    if app.oidc().consent:
        scopes = frozenset(s for s in params.get("scope", "").split() if s in SCOPES)
        if not consent and ("consent" in prompts or consents.needs_asking(
                ctx, user_uuid=principal.user_uuid, client_id=app.client_id, scopes=scopes)):
            if "none" in prompts:
                return cancel(ctx, request_id=request_id, browser=browser, error="consent_required")
            raise ConsentRequired()
        if consent:
            consents.remember(ctx, user_uuid=principal.user_uuid, client_id=app.client_id, scopes=scopes)
    user = SignedIn(user_uuid=principal.user_uuid, session_id=principal.session_id, device_id=principal.device_id,
                    auth_time=session.login_epoch, amr=tuple(session.amr or sessions.PASSWORD_AMR))
    server = provider(ctx)
    stored = authorization_request(ctx, params)
    stored.person, stored.session_expires_epoch = found[PERSON], session.expires_epoch
    stored.digest = token_digest(request_id, purpose=REQUEST_PURPOSE)
    live = found.get(GRANT_NOW) if _app_of(request_id) == app.client_id else None
    stored.replacing = live.grant_id if live is not None else None
    response = server.create_authorization_response(request=stored, grant_user=user,
                                                    grant=server.get_authorization_grant(stored))
    location = response.headers.get("Location")
    if response.status_code != 302 or not location:
        raise AuthorizationRefused()
    # nothing written: the code is sealed, its redemption marks the request
    return _answer(ctx.refresh_secrets, response_mode.response_at(params, location), now=ctx.epoch())


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


def _answer(ring: RefreshSecrets, response: response_mode.AuthorizationResponse, *, now: int) -> Redirect:
    """Where the web UI sends the browser: the redirect URI with the response in its query, or, for
    form_post, the response sealed for /oidc/authorize/respond (oidc.authorization.response_mode)."""
    if not response.form_post:
        return Redirect(redirect_to=response.location())
    sealed = response_mode.seal(ring, response, now=now)
    return Redirect(redirect_to=response.redirect_uri, form_post=sealed)


def respond(ring: RefreshSecrets, *, sealed: object, now: int) -> Response:
    """POST /oidc/authorize/respond: the auto-submitting page of a form_post response the web UI was
    given; one that is not citylogin's, or is over (at `now`), is an error page."""
    response = response_mode.opened(ring, sealed, now=now)
    if response is None:
        raise BrowserRefusal(kind="respond", error=ErrorCode.OIDC_REQUEST_UNKNOWN.value)
    return pages.form_post_page(action=response.redirect_uri, fields=response.fields, locale=request_locale())
