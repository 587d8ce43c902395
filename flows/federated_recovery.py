"""Recovering with a provider's answer (SPEC §16): an account made with a provider has no password, yet its
person gets back in after losing every device as anyone does, with one of its recovery codes. The ticket
proves the account in the password's place, nothing else changes (flows.recovery.certify_recovered_device:
the code single use, a wrong one counted toward the lockout of the account's username and of the address,
the device limit unless the others are unbound, the mails). The ticket moves on to `enrolled` in the device's
transaction, so that this browser then signs in once with the new device's proof (POST /federation/login).
No Flask here."""
from __future__ import annotations

from accounts import credential_service as credentials
from accounts import user_service as users
from accounts.models import UserRecord
from common.runtime.context import AppContext
from common.web.caller import Caller
from devices.models import DeviceCertificateResponse
from federation import identities, tickets
from federation.flow_models import FederatedRecoverRequest
from flows import recovery
from sessions import service as sessions

FLOW = "federated_recovery"


def recover(ctx: AppContext, *, ticket_value: str | None, request: FederatedRecoverRequest,
            caller: Caller) -> DeviceCertificateResponse:
    """A new device for the account the ticket's identity is linked to, for one of its recovery codes: 401
    federation_ticket_invalid (no fresh ticket of a sign-in), 404 identity_not_found (linked to no account),
    429 while the account's username or the address is locked out, then recovery's refusals (401
    invalid_recovery_code, 409 device_limit_reached) or 201 the device's certificate."""
    ticket = tickets.read_ticket(ctx.dynamodb, ctx.tables, value=ticket_value, now=ctx.epoch())
    if ticket.purpose != "sign_in" or ticket.stage != "fresh":
        raise tickets.TicketInvalid()
    user = linked_account(ctx, ticket)
    had_failures = credentials.check_not_locked_out(ctx, user=user, caller=caller, flow=FLOW)
    return recovery.certify_recovered_device(
        ctx, user=user, request=request, caller=caller, had_failures=had_failures,
        first=lambda device_id: [tickets.enrol_write(ctx.tables, ticket, user_uuid=user.user_uuid,
                                                     device_id=device_id, now=ctx.epoch())])


def linked_account(ctx: AppContext, ticket: tickets.Ticket) -> UserRecord:
    """The account the ticket's identity is linked to now (it may have been linked after the answer came)."""
    owner = identities.owner_of(ctx, issuer=ticket.identity.issuer, sub=ticket.identity.sub)
    if owner is None:
        raise identities.IdentityNotFound()
    user = users.get_user(ctx, user_uuid=owner)
    if user is None:  # the claim outlived its account's deletion for a moment
        raise sessions.AccountDeleted()
    return user
