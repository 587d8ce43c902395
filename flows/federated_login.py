"""Signing in with a provider's answer (SPEC §16): the ticket stands in for the password, never for the
device. The device proves its key as at POST /login/, must be one of the account the identity is linked
to, and takes its seat under the limit through the login's own path (flows.login.open_session: the 409
in-use question, its confirm at /login/confirm, the history row "signed in with <provider>"). The ticket
is spent in the seat's transaction (or, after a 409, in the confirmation's): of two sign-ins racing with one
ticket, one commits. No Flask here."""
from __future__ import annotations

from typing import Any

from accounts import user_service as users
from accounts.models import UserRecord
from common.database.batch_read import read_together
from common.errors import MissingFields
from common.runtime.context import AppContext
from common.web.caller import Caller
from devices import challenges
from devices import service as devices
from devices.models import DeviceRecord
from federation import identities, tickets
from federation.flow_models import DeviceProof
from flows import identity_notices as notices
from flows import in_use, login
from flows.models import LoginResponse
from sessions import service as sessions
from sessions.binding import ProofOffer

OWNER, USER, PRESENCE, DEVICE, CHALLENGE = "fed.owner", "fed.user", "fed.presence", "fed.device", "fed.challenge"


def required_proof(ctx: AppContext, proof: DeviceProof, caller: Caller) -> str:
    """The presented certificate, once every field of the device's proof is there (else 400 missing_fields)."""
    certificate = caller.verified_cert or proof.client_cert
    missing = [] if certificate else ["client_cert"]
    if ctx.settings.require_proof_of_possession and not caller.verified_cert:
        missing += [f for f in ("challenge", "signature") if not getattr(proof, f)]
    if missing:
        raise MissingFields(missing)
    assert certificate is not None
    return certificate


def sign_in(ctx: AppContext, *, ticket_value: str | None, request: DeviceProof, caller: Caller,
            offer: ProofOffer | None = None) -> LoginResponse:
    """Sign the device in to the account the ticket's identity is linked to: 401 federation_ticket_invalid
    (no live ticket), 404 identity_not_found (linked to no account), the device's refusals as at /login/
    (401 certificate_mismatch for another account's device), then 200 or the 409 in-use question."""
    certificate = required_proof(ctx, request, caller)
    dpop = login.binding_proof(ctx, offer)
    with login.challenge_spent_on_refusal(ctx, request.challenge):
        ticket = tickets.read_ticket(ctx.dynamodb, ctx.tables, value=ticket_value, now=ctx.epoch())
        if ticket.purpose != "sign_in":
            raise tickets.TicketInvalid()
        presented = devices.presented_certificate(certificate)
        facts = _read(ctx, ticket, presented, challenge=request.challenge)
        user, device = _account_and_device(ctx, ticket, presented, facts)
        proof = devices.login_proof(ctx, device, certificate_verified=bool(caller.verified_cert),
                                    challenge=request.challenge, signature=request.signature,
                                    challenge_usable=facts.get(CHALLENGE, False))
        factor = login.FirstFactor(amr=sessions.FEDERATED_AMR, spend=tickets.HeldTicket.of(ticket),
                                   provider=notices.display_name(ctx, ticket.identity.provider))
        return login.open_session(ctx, user=user, device=device, caller=caller,
                                  answer=in_use.Answer(force=request.force, displace=tuple(request.displace)),
                                  presence=facts[PRESENCE], proof=proof, dpop=dpop, factor=factor)


def _read(ctx: AppContext, ticket: tickets.Ticket, presented: devices.PresentedCertificate, *,
          challenge: str | None) -> dict[str, Any]:
    """One batch read: who the identity is linked to, and the user, presence and device the certificate names."""
    identity = ticket.identity
    reads: dict[str, Any] = {
        OWNER: identities.owner_read(ctx.tables, issuer=identity.issuer, sub=identity.sub),
        USER: users.user_read(ctx.tables, user_uuid=presented.user_uuid),
        PRESENCE: sessions.presence_read(ctx.tables, user_uuid=presented.user_uuid),
        DEVICE: devices.device_read(ctx.tables, user_uuid=presented.user_uuid, device_id=presented.device_id)}
    if challenge:
        reads[CHALLENGE] = challenges.challenge_read(ctx.tables, challenge, now=ctx.epoch())
    return read_together(ctx.dynamodb, reads)


def _account_and_device(ctx: AppContext, ticket: tickets.Ticket, presented: devices.PresentedCertificate,
                        facts: dict[str, Any]) -> tuple[UserRecord, DeviceRecord]:
    """The linked account, and the presented device if it is that account's (the sign-up's own device for
    a ticket of stage enrolled)."""
    owner = facts[OWNER]
    if owner is None:
        raise identities.IdentityNotFound()
    if owner != presented.user_uuid or (ticket.stage == "enrolled" and (
            ticket.user_uuid != owner or ticket.device_id != presented.device_id)):
        raise devices.CertificateMismatch()
    user = facts[USER]
    if user is None or user.deleting:
        raise sessions.AccountDeleted()
    return user, devices.device_for_presented(ctx, presented, user_uuid=owner, record=facts[DEVICE])
