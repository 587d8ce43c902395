"""Signing up with a provider's answer (SPEC §16): a new account for an unlinked identity, with its first
device, made as POST /registration/ makes one (flows.registration.create_account, under its limits) but
without a password, in ONE transaction with the identity's claim, the account's map of identities and the
ticket moved on to `enrolled` (good for one sign-in with that device's proof). The address the provider gave
is held only if no account holds it, and verified only if the provider said email_verified true: another
account's address never reaches it. No Flask here."""
from __future__ import annotations

from typing import Any

from common.database.guarded_write import GuardedWrite
from common.errors import ErrorCode, Forbidden
from common.runtime.context import AppContext
from common.timefmt import iso
from devices.models import RegistrationResponse
from federation import identities, providers, tickets
from federation.flow_models import FederatedSignupRequest
from federation.models import UpstreamIdentity
from flows import registration


class SignupClosed(Forbidden):
    code, detail = (ErrorCode.FEDERATION_SIGNUP_CLOSED, "No account is linked to this identity, and new accounts "
                    "cannot be made with this provider.")


def sign_up(ctx: AppContext, *, ticket_value: str | None, request: FederatedSignupRequest, locale: str,
            ip: str | None) -> RegistrationResponse:
    """The account, its device and the link: 401 federation_ticket_invalid (no fresh ticket of a sign-in),
    403 federation_signup_closed (the provider's signup is not "allow"), 409 identity_linked_elsewhere (the
    identity has an account: sign in instead), 409 username_taken, 429 as registration's limits say."""
    ticket = tickets.read_ticket(ctx.dynamodb, ctx.tables, value=ticket_value, now=ctx.epoch())
    if ticket.purpose != "sign_in" or ticket.stage != "fresh":
        raise tickets.TicketInvalid()
    if providers.get_provider(ctx, ticket.identity.provider).signup != "allow":
        raise SignupClosed()
    identity = ticket.identity
    if identities.owner_of(ctx, issuer=identity.issuer, sub=identity.sub) is not None:
        raise identities.IdentityLinkedElsewhere()
    new = registration.NewAccount(
        username=request.username, email=identity.email or "", password=None, device_name=request.device_name,
        public_key=request.public_key, csr=request.csr, device_class=request.device_class, locale=locale,
        email_verified=identity.email_verified is True,
        more=lambda user_uuid, device_id: _linked(ctx, ticket, user_uuid=user_uuid, device_id=device_id))
    return registration.rate_limited(ctx, ip=ip, register=lambda: registration.create_account(ctx, new).response)


def _linked(ctx: AppContext, ticket: tickets.Ticket, *, user_uuid: str,
            device_id: str) -> tuple[dict[str, Any], list[GuardedWrite]]:
    """The new account's map with the identity, and the entries: the ticket enrolled first (a used ticket
    is told as such), then the identity's claim."""
    identity: UpstreamIdentity = ticket.identity
    link = identities.link_id(identity.issuer, identity.sub)
    entry = {k: v for k, v in identities.map_entry(identity, linked_at=iso(ctx.now())).items() if v is not None}
    return ({"identities": {link: entry}},
            [tickets.enrol_write(ctx.tables, ticket, user_uuid=user_uuid, device_id=device_id, now=ctx.epoch()),
             identities.claim_write(ctx, user_uuid=user_uuid, identity=identity)])
