"""Linking a provider's identity to the account that holds its e-mail address, on that account's word only
(SPEC §16): the address never links by itself. The person asks for a link (POST /federation/link/mail);
the account holding the address, if any, is mailed a one-time link in its language (30 minutes, stored as
a digest, the identity inside); the identity is linked only when it is used (POST /federation/link/confirm).
The answer is the same whether or not an account holds the address. No Flask here."""
from __future__ import annotations

import uuid
from dataclasses import asdict

from accounts import user_service as users
from common.crypto.tokens import new_token, token_digest
from common.database.guarded_write import GuardedWrite, write_all
from common.database.one_time_tokens import OneTimeTokenStore
from common.errors import BadRequest, ErrorCode
from common.mail.message import Link
from common.mail.notifier import localized_message, mail_time
from common.runtime.context import AppContext
from federation import identities, tickets
from federation.flow_models import LinkedIdentityView
from federation.models import UpstreamIdentity
from flows import identity_link
from flows import identity_notices as notices

KIND, PURPOSE, LINK_KIND = "federation_link", "federation-link", "federation-link"
TTL = 1800  # 30 minutes, as a password reset's link
NOBODY = str(uuid.UUID(int=0))  # the token's account when no account holds the address: never usable


class LinkTokenInvalid(BadRequest):
    code, detail = (ErrorCode.FEDERATION_TICKET_INVALID,
                    "The sign-in with the provider has expired or was already used; start again.")


def _tokens(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


def mail_link(ctx: AppContext, *, ticket_value: str | None) -> None:
    """Spend the ticket and, if an account holds the identity's address (and the identity is linked to no
    account), mail that account a one-time link that links it. The same calls and answer either way."""
    ticket = tickets.read_ticket(ctx.dynamodb, ctx.tables, value=ticket_value, now=ctx.epoch())
    if ticket.purpose != "sign_in" or ticket.stage != "fresh":
        raise tickets.TicketInvalid()
    identity = ticket.identity
    holder = users.find_user_by_email(ctx, email=identity.email) if identity.email else None
    linked = identities.owner_of(ctx, issuer=identity.issuer, sub=identity.sub) is not None
    addressee = holder if holder is not None and not linked else None
    token, now = new_token(), ctx.epoch()
    item = _tokens(ctx).create_item(digest=token_digest(token, purpose=PURPOSE), kind=KIND, expires_epoch=now + TTL,
                                    data={"user_uuid": addressee.user_uuid if addressee else NOBODY,
                                          "identity": {k: v for k, v in asdict(identity).items() if v is not None}})
    writes = [tickets.spend_write(ctx.tables, ticket, now=now), GuardedWrite(item=item, refusal=LinkTokenInvalid)]
    mail = ctx.notifier.queued(localized_message(
        "federation_link", user_uuid=addressee.user_uuid, email=addressee.email, locale=addressee.locale,
        provider=notices.display_name(ctx, identity.provider), username=addressee.username,
        time=mail_time(ctx.now(), addressee.locale), link=Link(LINK_KIND, token))) if addressee else None
    write_all(ctx.dynamodb, [*writes, *([mail.write] if mail else [])])
    if mail:
        ctx.notifier.send_queued(mail)


def confirm_link(ctx: AppContext, *, token: str) -> LinkedIdentityView:
    """Link the identity of a mailed link to the account it was mailed to, using the link up in the same
    transaction: 400 federation_ticket_invalid for an unknown, used or expired one; 409
    identity_linked_elsewhere if the identity was linked meanwhile."""
    digest, now = token_digest(token, purpose=PURPOSE), ctx.epoch()
    pending = _tokens(ctx).get(digest=digest, kind=KIND, now=now) if len(token) <= 128 else None
    if pending is None or pending.get("user_uuid") in (None, NOBODY):
        raise LinkTokenInvalid()
    user = users.get_user(ctx, user_uuid=pending["user_uuid"])
    if user is None or user.deleting:
        raise LinkTokenInvalid()
    spend = GuardedWrite(item=_tokens(ctx).consume_item(digest=digest, kind=KIND, now=now), refusal=LinkTokenInvalid)
    linked = identity_link.link(ctx, user=user, identity=UpstreamIdentity(**pending["identity"]), caller=None,
                                device_id=None, first=[spend])
    return LinkedIdentityView(link_id=linked.link_id, provider=linked.provider, email=linked.email,
                              display_name=notices.display_name(ctx, linked.provider), linked_at=linked.linked_at)
