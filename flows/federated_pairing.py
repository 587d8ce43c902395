"""Pairing a further device with a provider's answer (SPEC §16): an account made with a provider has no
password, yet its person adds a device as anyone does: one of its devices shows the pairing code, the new
device scans it. The ticket proves the account in the password's place, nothing else changes: the code must
be the account the identity is linked to (else 403 pairing_user_mismatch), and every rule of pairing holds
(flows.pairing.certify_paired_device: single use, the device limit, the account neither locked nor being
deleted, the mail). The ticket moves on to `enrolled` in the device's transaction, so that this browser then
signs in once with the new device's proof (POST /federation/login). No Flask here."""
from __future__ import annotations

from typing import Any

from accounts import user_service as users
from common.database.batch_read import read_together
from common.runtime.context import AppContext
from common.web.caller import Caller
from devices import pairing_service as pairing_tokens
from devices.models import DeviceCertificateResponse
from federation import identities, tickets
from federation.flow_models import FederatedPairRequest
from flows import pairing
from sessions import service as sessions

OWNER, USER, TOKEN = "fed.owner", "fed.user", "fed.pairing_token"


def pair(ctx: AppContext, *, ticket_value: str | None, request: FederatedPairRequest,
         caller: Caller) -> DeviceCertificateResponse:
    """Certify the device that scanned `request.qr_code` for the account the ticket's identity is linked to:
    400 invalid_qr, 401 federation_ticket_invalid (no fresh ticket of a sign-in), 404 identity_not_found
    (linked to no account), then pairing's refusals (403 pairing_user_mismatch, 404/410 the token, 409
    device_limit_reached) or 201 the device's certificate."""
    code = pairing.ScannedCode.of(request.qr_code)
    ticket = tickets.read_ticket(ctx.dynamodb, ctx.tables, value=ticket_value, now=ctx.epoch())
    if ticket.purpose != "sign_in" or ticket.stage != "fresh":
        raise tickets.TicketInvalid()
    facts = _read(ctx, ticket, code)
    owner = facts[OWNER]
    if owner is None:
        raise identities.IdentityNotFound()
    if owner != code.user_uuid:
        raise pairing_tokens.PairingUserMismatch()
    user = facts[USER]
    if user is None:  # the claim outlived its account's deletion for a moment
        raise sessions.AccountDeleted()
    return pairing.certify_paired_device(
        ctx, user=user, code=code, token_record=facts[TOKEN], key=request, caller=caller,
        first=lambda device_id: [tickets.enrol_write(ctx.tables, ticket, user_uuid=user.user_uuid,
                                                     device_id=device_id, now=ctx.epoch())])


def _read(ctx: AppContext, ticket: tickets.Ticket, code: pairing.ScannedCode) -> dict[str, Any]:
    """One batch read: who the identity is linked to, the account the code names, and the code's token."""
    identity = ticket.identity
    return read_together(ctx.dynamodb, {
        OWNER: identities.owner_read(ctx.tables, issuer=identity.issuer, sub=identity.sub),
        USER: users.user_read(ctx.tables, user_uuid=code.user_uuid),
        TOKEN: code.token_read(ctx.tables)})
