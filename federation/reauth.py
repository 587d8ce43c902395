"""A signed-in person confirms it is them with one of the account's providers (SPEC §16), where others give
their password again: POST /federation/<name>/start with purpose "reauth" sent them to the provider for a fresh
sign-in; the callback checked that it was an identity linked to that account and left a ticket naming it; here
the ticket, presented with a Bearer of the same account, becomes a reauth token (accounts.reauth_tokens) in one
transaction that spends the ticket, holds to the session being live and to the identity still being linked.
The token then stands in for the password once (credential_service.reauthenticate). No Flask here."""
from __future__ import annotations

from accounts import reauth_tokens
from common.database.guarded_write import write_all
from common.runtime.context import AppContext
from federation import identities, tickets
from federation.round_trip_models import ReauthAnswer
from sessions import service as sessions
from sessions.models import Principal


def reauth_token(ctx: AppContext, *, ticket_value: str | None, principal: Principal) -> ReauthAnswer:
    """The reauth token of the ticket in the browser's cookie, for the account of `principal`; 401
    federation_ticket_invalid for a missing, used or expired ticket, one left by another purpose than
    "reauth", one of another account, or one whose identity is no longer linked to it."""
    now = ctx.epoch()
    ticket = tickets.read_ticket(ctx.dynamodb, ctx.tables, value=ticket_value, now=now)
    if ticket.purpose != "reauth" or ticket.user_uuid != principal.user_uuid:
        raise tickets.TicketInvalid()
    value, stored = reauth_tokens.issue_write(ctx, user_uuid=principal.user_uuid)
    write_all(ctx.dynamodb, [tickets.spend_write(ctx.tables, ticket, now=now),
                             identities.linked_check(ctx, user_uuid=principal.user_uuid, identity=ticket.identity,
                                                     refusal=tickets.TicketInvalid),
                             sessions.still_live(ctx, principal), stored])
    return ReauthAnswer(reauth_token=value, expires_in=reauth_tokens.TTL)
