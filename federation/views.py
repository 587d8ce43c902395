"""HTTP routes of /federation (SPEC §16): parse, call one service function, shape the answer."""
from __future__ import annotations

from typing import Protocol

from flask import Blueprint, Response, jsonify, redirect, request
from werkzeug.wrappers import Response as WsgiResponse

from common.errors import request_locale
from common.i18n import LANGUAGES
from common.runtime.context import AppContext, ctx
from common.slots import Slot
from common.web.caller import Caller, current_caller
from common.web.openapi import operation
from common.web.validation import parse_body
from devices.models import DeviceCertificateResponse, LoginResponse, RegistrationResponse
from federation import round_trip, tickets, transactions
from federation.flow_models import (DeviceProof, FederatedEnrolRequest, FederatedLinkRequest, FederatedLoginRequest,
                                    FederatedPairRequest, FederatedRecoverRequest, FederatedSignupRequest, IdentityList,
                                    LinkConfirmRequest, LinkedIdentityView, LinkMailAccepted)
from federation.models import LinkedIdentity, UpstreamIdentity
from federation.pages import refusal_page, repost_page
from federation.reauth import reauth_token
from federation.round_trip_models import OfferedProviders, ReauthAnswer, StartAnswer, StartRequest, TicketView
from sessions.binding import ProofOffer
from sessions.guard import authenticate_request, current_principal, proof_offer, require_session
from sessions.models import Principal

bp = Blueprint("federation", __name__, url_prefix="/federation")


class FederationFlows(Protocol):
    """What /federation asks of the packages above federation/ (flows/for_federation.py): the work a
    ticket lets the browser do, which spans accounts, devices and sessions."""

    def link_signed_in(self, ctx: AppContext, *, user_uuid: str, session_id: str,
                       identity: UpstreamIdentity) -> LinkedIdentity:
        """flows.identity_link: the provider's answer to "link another", linked to the signed-in account."""

    def sign_in(self, ctx: AppContext, *, ticket_value: str | None, request: DeviceProof, caller: Caller,
                offer: ProofOffer | None = None) -> LoginResponse:
        """flows.federated_login: the device signed in with the provider's answer in the password's place."""

    def sign_up(self, ctx: AppContext, *, ticket_value: str | None, request: FederatedSignupRequest, locale: str,
                ip: str | None) -> RegistrationResponse:
        """flows.federated_signup: a new account for the identity, with its first device."""

    def link_and_sign_in(self, ctx: AppContext, *, ticket_value: str | None, request: FederatedLinkRequest,
                         caller: Caller, offer: ProofOffer | None = None) -> LoginResponse:
        """flows.federated_link: the identity linked to the account proven by password and device, then signed in."""

    def pair(self, ctx: AppContext, *, ticket_value: str | None, request: FederatedPairRequest,
             caller: Caller) -> DeviceCertificateResponse:
        """flows.federated_pairing: a further device of the linked account, by a pairing code and the ticket."""

    def recover(self, ctx: AppContext, *, ticket_value: str | None, request: FederatedRecoverRequest,
                caller: Caller) -> DeviceCertificateResponse:
        """flows.federated_recovery: a new device of the linked account, by a recovery code and the ticket."""

    def enrol(self, ctx: AppContext, *, ticket_value: str | None, request: FederatedEnrolRequest,
              caller: Caller) -> DeviceCertificateResponse:
        """flows.federated_enrol: the first device of the linked account, one that has none, by the ticket."""

    def mail_link(self, ctx: AppContext, *, ticket_value: str | None) -> None:
        """flows.federated_link_mail: a one-time link to the account holding the identity's address, if any."""

    def confirm_link(self, ctx: AppContext, *, token: str) -> LinkedIdentityView:
        """flows.federated_link_mail: the mailed link used, the identity linked."""

    def list_identities(self, ctx: AppContext, *, user_uuid: str) -> list[LinkedIdentityView]:
        """flows.identity_unlink: the account's linked identities."""

    def unlink(self, ctx: AppContext, *, principal: Principal, link_id: str, caller: Caller) -> None:
        """flows.identity_unlink: one identity unlinked while a way in remains."""


FLOWS: Slot[FederationFlows] = Slot("federation.views.flows")


# --- the provider's round trip: the providers offered, start, callback, the ticket's view ----------------

FORM = "application/x-www-form-urlencoded"


@bp.errorhandler(round_trip.CallbackRefused)
def refused_page(refused: round_trip.CallbackRefused) -> WsgiResponse:
    """A refused answer of a provider: a page in the person's language, never JSON (SPEC §16)."""
    response = refusal_page(refused.error, locale=refused.locale or request_locale(), home="/")
    if refused.state:
        transactions.clear_cookie(response, state=refused.state, public_url=ctx().public_url())
    return response


@bp.get("/providers")
@operation("The upstream identity providers offered for \"Continue with ...\": enabled ones, no secret",
           response=OfferedProviders)
def providers() -> Response:
    return jsonify(OfferedProviders(providers=round_trip.offered(ctx())).model_dump())


@bp.post("/<name>/start")
@operation("Start a round trip with the provider: the URL to send the browser to, and a cookie binding the round "
           "trip to this browser. Purposes \"link\" and \"reauth\" need the person's session (Bearer); \"reauth\" "
           "asks the provider for a fresh sign-in, with a provider one of the account's identities is linked at "
           "(else 404 identity_not_found)", auth="optional",
           body=StartRequest, response=StartAnswer, errors=(400, 401, 404, 503))
def start(name: str) -> Response:
    body = parse_body(StartRequest)
    principal = authenticate_request() if body.purpose in ("link", "reauth") else None
    context = ctx()
    started = round_trip.start(context, name=name, purpose=body.purpose, return_to=body.return_to,
                               locale=body.locale, user_uuid=principal.user_uuid if principal else None,
                               session_id=principal.session_id if principal else None)
    response = jsonify(StartAnswer(authorization_url=started.authorization_url).model_dump())
    transactions.set_cookie(response, state=started.state, value=started.browser_value,
                            public_url=context.public_url())
    return response


@bp.get("/<name>/callback")
@operation("The provider's answer (its redirect URI): checked, then a ticket cookie and on to the web UI, or a "
           "page naming why it was refused", status=303, errors=(400, 401, 403, 404, 409, 503), error_page=True)
def callback(name: str) -> WsgiResponse:
    return _finish(name, request.args.to_dict(flat=False))


@bp.post("/<name>/callback")
@operation("The provider's answer by form post (response_mode=form_post, as Apple answers); one that came without "
           "its cookie (a cross-site post) is posted again from citylogin's own page (200)", status=303,
           body_media_type=FORM, errors=(400, 401, 403, 404, 409, 503), error_page=True, pages=(200,))
def callback_form(name: str) -> WsgiResponse:
    params = request.form.to_dict(flat=False)
    if transactions.needs_repost(params, cookies=request.cookies):
        return repost_page(action=request.path, fields=transactions.reposted(params), locale=request_locale())
    return _finish(name, params)


def _finish(name: str, params: dict[str, list[str]]) -> WsgiResponse:
    context = ctx()
    finished = round_trip.callback(context, name=name, params=params, cookies=request.cookies,
                                   linker=context.slots.needed(FLOWS))
    response = redirect(finished.location, code=303)
    transactions.clear_cookie(response, state=finished.state, public_url=context.public_url())
    if finished.ticket:
        transactions.set_ticket_cookie(response, value=finished.ticket, public_url=context.public_url())
    return response


@bp.get("/ticket")
@operation("What the provider's answer in this browser (its ticket cookie) is good for: a linked account, a new "
           "one, or an e-mail another account holds", response=TicketView, errors=(401,))
def ticket() -> Response:
    return jsonify(round_trip.ticket_view(ctx(), value=request.cookies.get(tickets.COOKIE)).model_dump())


@bp.post("/reauth")
@require_session
@operation("A reauth token for the signed-in account (Bearer) from the provider's fresh answer to a round trip of "
           "purpose \"reauth\" (the ticket cookie): it stands in for the password once (field reauth_token), for "
           "5 minutes", response=ReauthAnswer, auth=True, errors=(401,))
def reauth() -> Response:
    context = ctx()
    answer = reauth_token(context, ticket_value=request.cookies.get(tickets.COOKIE), principal=current_principal())
    response = jsonify(answer.model_dump())
    response.headers["Cache-Control"] = "no-store"
    transactions.clear_ticket_cookie(response, public_url=context.public_url())
    return response



# --- what a ticket lets the browser do: sign in, sign up, link; the account's identities ----------------

def _flows() -> FederationFlows:
    return ctx().slots.needed(FLOWS)


def _ticket() -> str | None:
    return request.cookies.get(tickets.COOKIE)


def _locale(locale: str | None) -> str:
    """The new account's language: the body's, if one of ours, else from Accept-Language."""
    language = (locale or "").split("-")[0].strip().lower()
    return language if language in LANGUAGES else request_locale()


LINK_MAIL_ACCEPTED = ("If an account holds this address, a link to link this sign-in to it is on its way; the "
                      "sign-in with the provider is used up.")


@bp.post("/login")
@operation("Sign a device in with the provider's answer (the ticket cookie) in the password's place: the device's "
           "proof as at POST /login/, the same 409 concurrent_login (continued at /login/confirm)",
           body=FederatedLoginRequest, response=LoginResponse, errors=(401, 403, 404, 409, 429))
def federated_login() -> Response:
    body = parse_body(FederatedLoginRequest)
    return jsonify(_flows().sign_in(ctx(), ticket_value=_ticket(), request=body, caller=current_caller(),
                                    offer=proof_offer()).model_dump())


@bp.post("/signup")
@operation("A new account for the provider's identity (the ticket cookie), with its first device and no password; "
           "the browser then signs in with POST /federation/login", body=FederatedSignupRequest,
           response=RegistrationResponse, status=201, errors=(401, 403, 409, 429))
def federated_signup() -> tuple[Response, int]:
    body = parse_body(FederatedSignupRequest)
    made = _flows().sign_up(ctx(), ticket_value=_ticket(), request=body, locale=_locale(body.locale),
                            ip=current_caller().ip)
    return jsonify(made.model_dump(exclude_none=True)), 201


@bp.post("/link")
@operation("Link the provider's identity (the ticket cookie) to the account proven by its password and one of its "
           "devices, then sign that device in as POST /login/ does", body=FederatedLinkRequest,
           response=LoginResponse, errors=(401, 403, 409, 429))
def federated_link() -> Response:
    body = parse_body(FederatedLinkRequest)
    return jsonify(_flows().link_and_sign_in(ctx(), ticket_value=_ticket(), request=body, caller=current_caller(),
                                             offer=proof_offer()).model_dump())


@bp.post("/pair")
@operation("Add a further device to the account the provider's identity (the ticket cookie) is linked to, with the "
           "pairing code one of its devices shows, in the password's place (as POST /device/register); the browser "
           "then signs in with POST /federation/login", body=FederatedPairRequest,
           response=DeviceCertificateResponse, status=201, errors=(401, 403, 404, 409, 410))
def federated_pair() -> tuple[Response, int]:
    body = parse_body(FederatedPairRequest)
    made = _flows().pair(ctx(), ticket_value=_ticket(), request=body, caller=current_caller())
    return jsonify(made.model_dump(exclude_none=True)), 201


@bp.post("/recover")
@operation("A new device for the account the provider's identity (the ticket cookie) is linked to, with one of its "
           "recovery codes, in the password's place (as POST /device/recover); the browser then signs in with POST "
           "/federation/login", body=FederatedRecoverRequest, response=DeviceCertificateResponse, status=201,
           errors=(401, 403, 404, 409, 429))
def federated_recover() -> tuple[Response, int]:
    body = parse_body(FederatedRecoverRequest)
    made = _flows().recover(ctx(), ticket_value=_ticket(), request=body, caller=current_caller())
    return jsonify(made.model_dump(exclude_none=True)), 201


@bp.post("/enrol")
@operation("The first device of the account the provider's identity (the ticket cookie) is linked to, for an account "
           "that has no device (an imported one), in the password's and the mailed code's place (as POST "
           "/device/enrol); the browser then signs in with POST /federation/login", body=FederatedEnrolRequest,
           response=DeviceCertificateResponse, status=201, errors=(401, 403, 404, 409))
def federated_enrol() -> tuple[Response, int]:
    body = parse_body(FederatedEnrolRequest)
    made = _flows().enrol(ctx(), ticket_value=_ticket(), request=body, caller=current_caller())
    return jsonify(made.model_dump(exclude_none=True)), 201


@bp.post("/link/mail")
@operation("Mail the account holding the identity's address (if any) a one-time link that links the identity to "
           "it; the same answer whether or not one does", response=LinkMailAccepted, status=202, errors=(401,))
def federated_link_mail() -> tuple[Response, int]:
    _flows().mail_link(ctx(), ticket_value=_ticket())
    return jsonify(LinkMailAccepted(message=LINK_MAIL_ACCEPTED).model_dump()), 202


@bp.post("/link/confirm")
@operation("Link the identity of a mailed one-time link to the account it was mailed to", body=LinkConfirmRequest,
           response=LinkedIdentityView, errors=(400, 409))
def federated_link_confirm() -> Response:
    body = parse_body(LinkConfirmRequest)
    return jsonify(_flows().confirm_link(ctx(), token=body.token).model_dump())


@bp.get("/identities")
@require_session
@operation("The caller's linked identities", response=IdentityList, auth=True)
def identities() -> Response:
    listed = _flows().list_identities(ctx(), user_uuid=current_principal().user_uuid)
    return jsonify(IdentityList(identities=listed).model_dump())


@bp.delete("/identities/<string(minlength=1,maxlength=64):link_id>")
@require_session
@operation("Unlink one of the caller's identities, unless it is the account's last way in (409 last_way_in)",
           status=204, auth=True, errors=(404, 409))
def unlink_identity(link_id: str) -> tuple[str, int]:
    _flows().unlink(ctx(), principal=current_principal(), link_id=link_id, caller=current_caller())
    return "", 204

