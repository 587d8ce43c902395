"""The first device with a provider's answer (SPEC §16, §17): an account with a linked identity and no
registered device (an imported one whose identity came with it) sets up its first device with a fresh
sign-in at the provider, in the password's and the mailed code's place; every other rule of the first
device holds (flows.device_enrol.certify_first_device: one first device of racing ways in, 409
device_exists once there is one, the account neither locked nor being deleted, the mail). The ticket moves
on to `enrolled` in the device's transaction, so that this browser then signs in once with the new device's
proof (POST /federation/login). No Flask here."""
from __future__ import annotations

from common.runtime.context import AppContext
from common.web.caller import Caller
from devices.models import DeviceCertificateResponse
from federation import tickets
from federation.flow_models import FederatedEnrolRequest
from flows import device_enrol
from flows.federated_recovery import linked_account


def enrol(ctx: AppContext, *, ticket_value: str | None, request: FederatedEnrolRequest,
          caller: Caller) -> DeviceCertificateResponse:
    """The first device of the account the ticket's identity is linked to: 401 federation_ticket_invalid (no
    fresh ticket of a sign-in), 404 identity_not_found (linked to no account), 403 account_locked, 409
    device_exists, or 201 the device's certificate."""
    ticket = tickets.read_ticket(ctx.dynamodb, ctx.tables, value=ticket_value, now=ctx.epoch())
    if ticket.purpose != "sign_in" or ticket.stage != "fresh":
        raise tickets.TicketInvalid()
    user = linked_account(ctx, ticket)
    return device_enrol.certify_first_device(
        ctx, user=user, key=request, caller=caller,
        first=lambda device_id: [tickets.enrol_write(ctx.tables, ticket, user_uuid=user.user_uuid,
                                                     device_id=device_id, now=ctx.epoch())])
