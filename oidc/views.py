"""HTTP routes of /oidc: the OpenID Provider (SPEC §14). The authorization request waits for the
person's browser, which signs in on its device in the web UI (`/#oidc=<request>`) and finishes it
here; the app redeems the code at /oidc/token and reads the person at /oidc/userinfo, and hears of the
session's end by Back-Channel Logout (oidc.logout.backchannel). Discovery is on every service
(/.well-known/openid-configuration, common.web.app_factory). What a route asks of the flows above oidc/
(a device signing in or out for an app, a screen's code approved) it asks of the OidcFlows that the service
mounting this blueprint gives (flows.for_oidc)."""
from __future__ import annotations

import json
from typing import Any, Protocol

from flask import Blueprint, Response, jsonify, request
from werkzeug.wrappers import Response as WsgiResponse

from relying_parties import push
from relying_parties.registry import allowed_client_origins
from common.errors import request_locale
from common.timefmt import iso_from_epoch
from oidc.logout import rp_initiated as rp_logout
from oidc.device import flow as device_flow
from oidc.registration import endpoint as registration
from oidc import service
from oidc.logout.backchannel import BackchannelLogout
from oidc.authorization.models import (CancelRequest, CompleteRequest, DeviceSignIn, FormPostResponse, Interaction,
                                       PushedRequest, Redirect)
from oidc.device.models import (DeviceAuthorization, PendingScreenView, ScreenApproval, ScreenApproved, ScreenDenied,
                                ScreenSignIn, UserCodeBody)
from oidc.logout.models import DeviceSignOut, LogoutInteraction, SignedOut
from oidc.core.models import PendingRequest
from oidc.token.models import ProviderTokenResponse, Revoked
from oidc.userinfo.models import UserInfo
from oidc.core.oauth_errors import in_oauth_format
from oidc.registration.models import ClientMetadataRequest, ClientRegistration
from oidc.parameters import (AuthorizationParameters, DeviceAuthorizationForm, PushedAuthorizationForm, RevocationForm,
                             TokenForm)
from sessions.guard import authenticate_request, credentials, proof_offer
from sessions.models import Principal
from common.web import cors
from common.slots import Slot
from common.web.caller import Caller, current_caller
from common.runtime.context import EXTENSION_KEY, AppContext, ctx
from common.web.openapi import operation
from common.web.validation import parse_body, parse_json_only_body


class OidcFlows(Protocol):
    """What /oidc asks of the flows above oidc/."""

    def sign_in_with_device(self, ctx: AppContext, *, body: DeviceSignIn, browser: str | None) -> Redirect:
        """flows.app_sign_in: single sign-on, the device's live session finishing the app's request."""

    def sign_out_with_device(self, ctx: AppContext, *, body: DeviceSignOut) -> SignedOut:
        """flows.app_sign_out: the device answering the app's logout request."""

    def approve_screen(self, ctx: AppContext, *, principal: Principal, body: ScreenApproval,
                       caller: Caller) -> ScreenApproved:
        """flows.device_approval: the signed-in person approves a screen's user code."""

    def approve_screen_with_device(self, ctx: AppContext, *, body: ScreenSignIn, caller: Caller) -> ScreenApproved:
        """flows.device_approval: the browser's device and its live session approve it."""


FLOWS: Slot[OidcFlows] = Slot("oidc.views.flows")

bp = Blueprint("oidc", __name__, url_prefix="/oidc")
bp.record_once(lambda state: state.app.extensions[EXTENSION_KEY].slots.needed(FLOWS))  # given, or no app
FORM = "application/x-www-form-urlencoded"
# Back-Channel Logout: this process's pusher of logout tokens to the apps that hold an ended session's.
bp.record_once(lambda state: push.start_pusher(state.app.extensions[EXTENSION_KEY],
                                               BackchannelLogout(state.app.extensions[EXTENSION_KEY])))
# A SPA calls these from its own origin: its registration allows it on every host within a second (SPEC §14).
cors.open_to_origins(bp, endpoints={"oidc.token", "oidc.userinfo", "oidc.userinfo_post", "oidc.revoke"},
                     origins=lambda: allowed_client_origins(ctx()))


@bp.errorhandler(service.BrowserRefusal)
def refused_page(refusal: service.BrowserRefusal) -> WsgiResponse:
    """A request with no trusted way back to an app: an error page in the person's language (SPEC §14)."""
    description = service.unechoed(refusal.description, (v for vs in request.values.listvalues() for v in vs))
    return service.error_page(kind=refusal.kind, error=refusal.error, description=description,
                              locale=request_locale(), home=f"{service.issuer(ctx())}/")


def _flows() -> OidcFlows:
    return ctx().slots.needed(FLOWS)


def _browser(request_id: str) -> str | None:
    """The cookie /oidc/authorize gave the browser that started the request, if this is that browser."""
    return request.cookies.get(service.cookie_name(request_id))


@bp.get("/authorize")
@operation("OpenID Connect authorization request: code flow with PKCE (S256); the browser goes on to sign in, "
           "given a cookie that binds the request to it", status=303, query=AuthorizationParameters, errors=(400,),
           error_page=True)
def authorize() -> WsgiResponse:
    return service.begin(ctx(), request.args)  # every value: a repeated parameter is refused


@bp.post("/authorize")
@operation("The authorization request as a form post (OpenID Connect Core §3.1.2.1)", status=303,
           body=AuthorizationParameters, body_media_type=FORM, errors=(400,), error_page=True)
def authorize_form() -> WsgiResponse:
    return service.begin(ctx(), request.form)  # every value: a repeated parameter is refused


@bp.post("/par")
@operation("Pushed authorization request (RFC 9126): the app's authorization request, kept 60 s behind a "
           "one-time request_uri", status=201, response=PushedRequest, body=PushedAuthorizationForm,
           body_media_type=FORM, errors=(400, 401, 429), oauth_errors=True)
@in_oauth_format
def pushed_authorization_request() -> WsgiResponse:
    return service.push_request(proof_offer())


@bp.post("/interaction")
@operation("What the sign-in page shows of a waiting authorization request, to the browser that started it (its "
           "cookie from /oidc/authorize)", body=PendingRequest,
           response=Interaction, errors=(400, 403))
def interaction() -> Response:
    body = parse_body(PendingRequest)
    return jsonify(service.interaction(ctx(), request_id=body.request, browser=_browser(body.request)).model_dump())


@bp.post("/authorize/complete")
@operation("The signed-in device finishes the authorization request in the browser that started it (its cookie "
           "from /oidc/authorize): where the browser goes next",
           auth=True, body=CompleteRequest, response=Redirect, errors=(400, 401, 403))
def complete() -> Response:
    credentials()  # 401 without a token, before the body is looked at
    body = parse_body(CompleteRequest)
    # The waiting request and the person are read in the session's own batch read.
    principal = authenticate_request(along=service.complete_reads(ctx(), request_id=body.request))
    answer = service.complete(ctx(), principal=principal, request_id=body.request, browser=_browser(body.request),
                              consent=body.consent)
    return jsonify(answer.model_dump())


@bp.post("/authorize/device")
@operation("Single sign-on: the device proves it holds its key (a signed challenge) and its live session "
           "finishes the authorization request, without a password, in the browser that started it",
           body=DeviceSignIn, response=Redirect,
           errors=(400, 401, 403))
def complete_with_device() -> Response:
    body = parse_body(DeviceSignIn)
    return jsonify(_flows().sign_in_with_device(ctx(), body=body, browser=_browser(body.request)).model_dump())


@bp.post("/authorize/respond")
@operation("response_mode=form_post: the page that POSTs the sealed response the web UI was given (Redirect's "
           "form_post) to the app's redirect URI", body=FormPostResponse, body_media_type=FORM,
           media_type="text/html", errors=(400,), error_page=True, database=False)
def respond() -> WsgiResponse:
    context = ctx()
    return service.respond(context.refresh_secrets, sealed=request.form.get("response"), now=context.epoch())


@bp.post("/authorize/cancel")
@operation("The person declines (or prompt=none finds nobody signed in): the app hears the error, in the browser "
           "that started the request",
           body=CancelRequest, response=Redirect, errors=(400, 403))
def cancel() -> Response:
    body = parse_body(CancelRequest)
    return jsonify(service.cancel(ctx(), request_id=body.request, browser=_browser(body.request),
                                  error=body.error).model_dump())


@bp.post("/token")
@operation("OAuth 2.0 token endpoint (RFC 6749 §3.2): the authorization code grant with PKCE",
           response=ProviderTokenResponse, body=TokenForm, body_media_type=FORM, errors=(400, 401), oauth_errors=True)
@in_oauth_format
def token() -> WsgiResponse:
    return service.token_response(proof_offer())


@bp.post("/device_authorization")
@operation("Device authorization request (RFC 8628 §3.1): a TV or a command line of an app allowed the grant gets a "
           "device_code to poll /oidc/token with and a user code the person approves at /device",
           response=DeviceAuthorization, body=DeviceAuthorizationForm, body_media_type=FORM, errors=(400, 401, 429),
           oauth_errors=True)
@in_oauth_format
def device_authorization() -> WsgiResponse:
    return service.device_authorization_response(proof_offer())


@bp.post("/device/lookup")
@operation("What the approval page shows of a screen's user code: the app and what it asks for. Limited per "
           "address and per code; a wrong, used or expired code is one answer", body=UserCodeBody,
           response=PendingScreenView, errors=(400, 429))
def device_lookup() -> Response:
    body = parse_body(UserCodeBody)
    pending = device_flow.presented(ctx(), user_code=body.user_code, ip=current_caller().ip)
    view = PendingScreenView(user_code=pending.user_code, client_id=pending.app.client_id,
                             client_name=pending.app.name, scopes=pending.scopes(),
                             device_class=pending.app.oidc().device_class,
                             expires_at=iso_from_epoch(pending.code.expires_epoch),
                             registered_itself=pending.app.registered_itself())
    return jsonify(view.model_dump())


@bp.post("/device/approve")
@operation("The signed-in person approves a screen's user code: the screen gets a session of its own under the "
           "device limit (409 concurrent_login: ask, then again with force) and its tokens at its next poll",
           auth=True, body=ScreenApproval, response=ScreenApproved, errors=(400, 401, 403, 409, 429))
def device_approve() -> Response:
    credentials()  # 401 without a token, before the body is looked at
    body = parse_body(ScreenApproval)
    principal = authenticate_request()
    return jsonify(_flows().approve_screen(ctx(), principal=principal, body=body,
                                           caller=current_caller()).model_dump())


@bp.post("/device/approve/device")
@operation("Single sign-on: the browser's device proves it holds its key (a signed challenge) and its live session "
           "approves the screen's user code (401 login_required when it has none)", body=ScreenSignIn,
           response=ScreenApproved, errors=(400, 401, 403, 409, 429))
def device_approve_with_device() -> Response:
    body = parse_body(ScreenSignIn)
    return jsonify(_flows().approve_screen_with_device(ctx(), body=body, caller=current_caller()).model_dump())


@bp.post("/device/deny")
@operation("The person denies a screen's user code: the screen hears access_denied at its next poll",
           body=UserCodeBody, response=ScreenDenied, errors=(400, 415, 429))
def device_deny() -> Response:
    body = parse_json_only_body(UserCodeBody)  # a page on another site must not deny a code
    device_flow.deny(ctx(), user_code=body.user_code, ip=current_caller().ip)
    return jsonify(ScreenDenied(status="denied").model_dump())


@bp.get("/logout")
@operation("OpenID Connect RP-Initiated Logout: the app's request is kept and the browser goes to the web UI, "
           "where this browser's device proves which session it holds; nothing ends here", status=303,
           errors=(400,), error_page=True)
def logout() -> WsgiResponse:
    return service.end_session_response(ctx())


@bp.post("/logout")
@operation("RP-Initiated Logout as a form post", status=303, body_media_type="application/x-www-form-urlencoded",
           errors=(400,), error_page=True)
def logout_form() -> WsgiResponse:
    return service.end_session_response(ctx())


@bp.post("/logout/interaction")
@operation("What the sign-out page shows of an app's logout request: the app, and where the browser goes after",
           body=PendingRequest, response=LogoutInteraction, errors=(400,))
def logout_interaction() -> Response:
    body = parse_body(PendingRequest)
    return jsonify(rp_logout.interaction(ctx(), handle=body.request).model_dump())


@bp.post("/logout/device")
@operation("The browser's device proves it holds its key (a signed challenge): its live session ends if the app's "
           "logout named it, or once the person confirmed", body=DeviceSignOut, response=SignedOut,
           errors=(400, 401, 403))
def logout_with_device() -> Response:
    body = parse_body(DeviceSignOut)
    return jsonify(_flows().sign_out_with_device(ctx(), body=body).model_dump())


@bp.post("/revoke")
@operation("OAuth 2.0 token revocation (RFC 7009): the app gives back a refresh or access token; its grant ends",
           response=Revoked, body=RevocationForm, body_media_type=FORM, errors=(400, 401), oauth_errors=True)
@in_oauth_format
def revoke() -> WsgiResponse:
    return service.revocation_response()


# --- apps that register themselves (RFC 7591) and their registrations (RFC 7592) -------------------------

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _document(answer: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(answer), status=status, mimetype="application/json", headers=NO_STORE)


@bp.post("/register")
@operation("Dynamic client registration (RFC 7591): with an operator's initial access token (Bearer; none with "
           "CITYLOGIN_OIDC_OPEN_REGISTRATION), an app registers itself, its metadata checked as `apps add` checks it",
           body=ClientMetadataRequest, response=ClientRegistration, status=201, errors=(400, 401, 429),
           oauth_errors=True)
@in_oauth_format
def register() -> Response:
    return _document(registration.register(ctx(), authorization=request.headers.get("Authorization"),
                                           raw=request.get_data(), ip=current_caller().ip), status=201)


@bp.get("/register/<string(maxlength=64):client_id>")
@operation("Read a registration (RFC 7592 §2.1) with its registration access token (Bearer)",
           response=ClientRegistration, errors=(401,), oauth_errors=True)
@in_oauth_format
def registration_read(client_id: str) -> Response:
    return _document(registration.read(ctx(), client_id=client_id,
                                       authorization=request.headers.get("Authorization")))


@bp.put("/register/<string(maxlength=64):client_id>")
@operation("Replace a registration's metadata (RFC 7592 §2.2) with its registration access token (Bearer): the "
           "body is the whole metadata again, with the app's client_id", body=ClientMetadataRequest,
           response=ClientRegistration, errors=(400, 401), oauth_errors=True)
@in_oauth_format
def registration_replace(client_id: str) -> Response:
    return _document(registration.replace(ctx(), client_id=client_id, raw=request.get_data(),
                                          authorization=request.headers.get("Authorization")))


@bp.delete("/register/<string(maxlength=64):client_id>")
@operation("Delete a registration (RFC 7592 §2.3) with its registration access token (Bearer): the app is removed "
           "as `citylogin apps remove` removes it", status=204, errors=(401,), oauth_errors=True)
@in_oauth_format
def registration_delete(client_id: str) -> Response:
    registration.delete(ctx(), client_id=client_id, authorization=request.headers.get("Authorization"))
    return Response(status=204, headers=NO_STORE)


@bp.get("/userinfo")
@operation("OpenID Connect UserInfo: the person behind an app's access token, by its scope", auth=True,
           response=UserInfo)
def userinfo() -> Response:
    scheme, access_token = credentials()
    answer = service.userinfo(ctx(), access_token=access_token, scheme=scheme, offer=proof_offer())
    if answer.signed is not None:  # the app registered userinfo_signed_response_alg (OIDC Core §5.3.2)
        return Response(answer.signed, mimetype="application/jwt")
    return jsonify(answer.claims)


@bp.post("/userinfo")
@operation("UserInfo as a POST (OpenID Connect Core §5.3.1)", auth=True, response=UserInfo)
def userinfo_post() -> Response:
    return userinfo()
