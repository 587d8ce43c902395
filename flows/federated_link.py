"""Linking a provider's identity to an account the person proves (SPEC §16): its password, under the
login's lockout, and one of its registered devices, as at POST /login/. Then, in one transaction, the
identity is linked (claim, map, mail, history) and the ticket spent; then the device signs in as /login/
does (200, or the 409 in-use question: the link stands either way). No e-mail ever links. No Flask here."""
from __future__ import annotations

from common.runtime.context import AppContext
from common.web.caller import Caller
from federation import tickets
from federation.flow_models import FederatedLinkRequest
from flows import identity_link, login
from flows.models import LoginRequest, LoginResponse
from sessions import service as sessions
from sessions.binding import ProofOffer


def link_and_sign_in(ctx: AppContext, *, ticket_value: str | None, request: FederatedLinkRequest, caller: Caller,
                     offer: ProofOffer | None = None) -> LoginResponse:
    """Link the ticket's identity to the account `request` proves, then sign its device in: 401
    federation_ticket_invalid, the login's refusals (401 invalid_credentials, certificate_mismatch,
    invalid_proof; 429), 409 identity_linked_elsewhere, then 200 or 409 concurrent_login."""
    ticket = tickets.read_ticket(ctx.dynamodb, ctx.tables, value=ticket_value, now=ctx.epoch())
    if ticket.purpose != "sign_in" or ticket.stage != "fresh":
        raise tickets.TicketInvalid()
    as_login = LoginRequest.model_construct(
        username=request.username, password=request.password, client_cert=request.client_cert,
        client_cert_fp=request.client_cert_fp, challenge=request.challenge, signature=request.signature,
        force=request.force, displace=request.displace, passkey=None, device_name=None)
    dpop = login.binding_proof(ctx, offer)
    checked = login.check_password_login(ctx, request=as_login, caller=caller)
    with login.challenge_spent_on_refusal(ctx, request.challenge):
        identity_link.link(ctx, user=checked.user, identity=ticket.identity, caller=caller,
                           device_id=checked.device.device_id,
                           first=[tickets.spend_write(ctx.tables, ticket, now=ctx.epoch())])
        factor = login.FirstFactor(amr=sessions.PASSWORD_AMR)
        return login.finish(ctx, as_login, caller, checked=checked, dpop=dpop, factor=factor)
