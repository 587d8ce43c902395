"""HTTP routes of /federation (SPEC §16): parse, call one service function, shape the answer."""
from __future__ import annotations

from typing import Protocol

from flask import Blueprint, Response, jsonify, request, redirect
from werkzeug.wrappers import Response as WsgiResponse

from common.errors import request_locale
from common.runtime.context import AppContext, ctx
from common.slots import Slot
from common.web.openapi import operation
from common.web.validation import parse_body
from federation import round_trip, tickets, transactions
from federation.models import LinkedIdentity, UpstreamIdentity
from federation.pages import refusal_page
from federation.round_trip_models import OfferedProviders, StartAnswer, StartRequest, TicketView
from sessions.guard import authenticate_request

bp = Blueprint("federation", __name__, url_prefix="/federation")


class FederationFlows(Protocol):
    """What /federation asks of the packages above federation/ (flows/for_federation.py): the work a
    ticket lets the browser do, which spans accounts, devices and sessions."""

    def link_signed_in(self, ctx: AppContext, *, user_uuid: str, session_id: str,
                       identity: UpstreamIdentity) -> LinkedIdentity:
        """flows.identity_link: the provider's answer to "link another", linked to the signed-in account."""


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
           "trip to this browser. Purpose \"link\" needs the person's session (Bearer)", auth="optional",
           body=StartRequest, response=StartAnswer, errors=(400, 401, 404, 503))
def start(name: str) -> Response:
    body = parse_body(StartRequest)
    principal = authenticate_request() if body.purpose == "link" else None
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
           "page naming why it was refused", status=303, errors=(400, 401, 403, 503), error_page=True)
def callback(name: str) -> WsgiResponse:
    return _finish(name, request.args.to_dict(flat=False))


@bp.post("/<name>/callback")
@operation("The provider's answer by form post (response_mode=form_post, as Apple answers)", status=303,
           body_media_type=FORM, errors=(400, 401, 403, 503), error_page=True)
def callback_form(name: str) -> WsgiResponse:
    return _finish(name, request.form.to_dict(flat=False))


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



# --- what a ticket lets the browser do: sign in, sign up, link; the account's identities ----------------
