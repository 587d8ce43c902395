"""GET|POST /oidc/authorize: an app's authorization request begins. It is taken as it arrived (a pushed
request's parameters for a PAR `request_uri`, RFC 9126 §4; a request object's over the query's for a
`request` or another `request_uri`, RFC 9101), checked by the standard's refusals and as Authlib checks it,
held to the app's own rules, kept bound to this browser (a cookie of its own,
oidc.authorization.browser_binding), and the browser is sent to the sign-in page. What happens there is
oidc.authorization.finish's.

An unknown client or redirect URI, a PAR request_uri that is not good, or a client_id, redirect_uri or
request_uri sent twice or malformed gets an error page, never a redirect (RFC 6749 §4.1.2.1); any other
refusal goes to the trusted redirect URI (one about a request object, in the response mode and with the
state the object asked for)."""
from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from flask import redirect
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from relying_parties.models import OidcClient
from common.errors import request_locale
from common.crypto.tokens import token_digest
from common.database.guarded_write import GuardedWrite, write_all
from oidc.authorization import browser_binding
from oidc.authorization import handles
from oidc.core import pages
from oidc.authorization import par
from oidc.core import refusals
from oidc.authorization import checks as request_checks
from oidc.core import request_limits
from oidc.authorization import request_objects
from oidc.authorization import response_mode
from oidc.core import dpop
from oidc.authorization.request import REQUEST_PURPOSE, Pending, authorization_request
from oidc.core.kept_request import REQUEST_TTL
from oidc.core.context import issuer, one_time_tokens
from oidc.core.pages import BrowserRefusal
from oidc.token.server import Provider, provider
from oidc.core.store import RequestStore
from common.web.caller import current_caller
from common.runtime.context import AppContext


@dataclass(frozen=True)
class Arrived:
    """An authorization request as it arrived: its parameters, whether it was pushed (PAR) or carried by a
    signed request object, and the writes that spend what it came by (a request_uri, a jti)."""

    params: request_checks.Params
    pushed: bool = False
    signed: bool = False
    spending: tuple[GuardedWrite, ...] = ()


def begin(ctx: AppContext, sent: request_checks.Params) -> Response:
    """GET|POST /oidc/authorize with every value of every parameter (`sent`): the request as it arrived,
    checked and kept, and the browser sent to the sign-in page; a refusal to the app or on an error page."""
    server = provider(ctx)
    try:
        arrived = _arrived(ctx, server, sent)
    except OAuth2Error as error:
        return _refusal(ctx, error, request_objects.reply_params(error, sent), client_id=sent.get("client_id"))
    params = arrived.params
    try:
        request_id, binding = _checked_and_kept(ctx, server, arrived)
    except OAuth2Error as error:
        return _refusal(ctx, _with_untrusted_reason(server, error, params),
                        request_objects.reply_params(error, params), client_id=params.get("client_id"))
    return _to_sign_in(ctx, request_id=request_id, binding=binding)


def _arrived(ctx: AppContext, server: Provider, sent: request_checks.Params) -> Arrived:
    """The request `sent` stands for: a pushed one, one a request object carries, or `sent` itself, once its
    client_id, redirect_uri and request_uri are sent once each and well formed."""
    request_checks.check_target(sent)
    pushed = _pushed(ctx, sent)
    if pushed is not None:
        return Arrived(MultiDict(pushed.params), pushed=True, spending=(pushed.spending,))
    if "request" not in sent and "request_uri" not in sent:
        return Arrived(sent)
    # the app is looked up here only for a request object (Authlib looks it up for every request)
    carried = request_objects.carried(ctx, sent, client=server.query_client(sent.get("client_id")))
    if carried is None:
        return Arrived(sent)
    return Arrived(carried.params, signed=carried.signed, spending=(carried.spending,) if carried.spending else ())


def _pushed(ctx: AppContext, sent: request_checks.Params) -> par.PushedRequest | None:
    """The pushed request a PAR `request_uri` stands for (RFC 9126 §4), None for a request without one."""
    if not par.names_pushed(sent.get("request_uri")):
        return None
    if "request" in sent:
        raise refusals.because(InvalidRequestError("Send request or request_uri, not both (RFC 9101 section 5)."),
                               "request_object_and_uri")
    return par.presented_request(one_time_tokens(ctx), request_uri=sent["request_uri"],
                                 client_id=sent.get("client_id"), now=ctx.epoch())


def _checked_and_kept(ctx: AppContext, server: Provider, arrived: Arrived) -> tuple[str, browser_binding.Binding]:
    """The request checked (the standard's refusals, Authlib's, the app's own rules) and kept for the
    browser: its new handle and the browser's binding."""
    params = arrived.params
    _check_authorization_request(server, params)
    grant = server.get_consent_grant(request=authorization_request(ctx, params.to_dict()), end_user=Pending())
    _check_app_rules(grant.client.app.oidc(), params, redirect_uri=grant.redirect_uri, pushed=arrived.pushed,
                     signed=arrived.signed)
    request_id, binding = handles.new_handle(grant.client.client_id), browser_binding.new_binding()
    _keep(ctx, digest=token_digest(request_id, purpose=REQUEST_PURPOSE), params=params.to_dict(),
          spending=list(arrived.spending), browser_digest=binding.digest, redirect_uri=grant.redirect_uri)
    return request_id, binding


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
    """The request's redirect URI if its client is known and registered it, else None."""
    return None if _untrusted_target(server, params) else params.get("redirect_uri")


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


def _to_sign_in(ctx: AppContext, *, request_id: str, binding: browser_binding.Binding) -> Response:
    """The browser sent to the sign-in page with the request's handle, and the cookie that binds it."""
    response = redirect(f"{issuer(ctx)}/#oidc={request_id}", code=303)
    browser_binding.set_cookie(response, request_id=request_id, binding=binding, issuer=issuer(ctx),
                               max_age=REQUEST_TTL)
    return response


def _with_untrusted_reason(server: Provider, error: OAuth2Error, params: request_checks.Params) -> OAuth2Error:
    """`error`, with the reason it has no redirect URI to go to if that is why and it has no reason yet."""
    untrusted = None if error.redirect_uri or refusals.reason_of(error) else _untrusted_target(server, params)
    return refusals.because(error, untrusted) if untrusted else error


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
