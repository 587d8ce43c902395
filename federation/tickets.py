"""The ticket: what a provider's answer leaves in the browser that started the round trip (SPEC §16).

The callback checks the provider's answer, then writes one single-use item in the one_time_tokens table
(keyed by the ticket's digest, never the ticket) holding the upstream identity, and gives the browser the
ticket in an HttpOnly cookie scoped to /federation; it never rides in a URL. What the browser then does
with it (sign in with its device's proof, sign up, link) each spends it in that flow's own transaction:
`spend_write`. A sign-up first moves it on to the stage `enrolled` (`enrol_write`), naming the account and
the device it made, so that the same browser can then sign in once with that device's proof."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from common.crypto.tokens import new_token, token_digest
from common.database.batch_read import KeyRead
from common.database.dynamo import TableNames
from common.database.guarded_write import GuardedWrite
from common.database.one_time_tokens import OneTimeTokenStore
from common.errors import ErrorCode, Unauthorized
from federation.models import Purpose, UpstreamIdentity

KIND = "federation_ticket"
PURPOSE = "federation-ticket"
TTL = 600  # seconds: choosing a username included
COOKIE = "citylogin_federation"
COOKIE_PATH = "/federation"
MAX_VALUE = 128  # a presented value longer than any ticket is nobody's
Stage = Literal["fresh", "enrolled"]


class TicketInvalid(Unauthorized):
    code, detail = (ErrorCode.FEDERATION_TICKET_INVALID,
                    "The sign-in with the provider has expired or was already used; start again.")


@dataclass(frozen=True)
class Ticket:
    digest: str
    identity: UpstreamIdentity
    purpose: Purpose
    expires_epoch: int
    user_uuid: str | None = None    # the account the identity was linked to when the answer came, if any
    return_to: str | None = None    # where the web UI goes on (a path of this service, checked at start)
    stage: Stage = "fresh"
    device_id: str | None = None    # stage "enrolled": the device the sign-up made


def _store(dynamodb: Any, tables: TableNames) -> OneTimeTokenStore:
    return OneTimeTokenStore(dynamodb, tables.one_time_tokens)


def digest_of(value: str) -> str:
    return token_digest(value, purpose=PURPOSE)


def issue(dynamodb: Any, tables: TableNames, *, identity: UpstreamIdentity, purpose: Purpose, now: int,
          user_uuid: str | None = None, return_to: str | None = None) -> str:
    """A new ticket for `identity`; the value for the browser's cookie (stored only as its digest)."""
    value = new_token()
    data: dict[str, Any] = {"identity": asdict(identity), "purpose": purpose, "stage": "fresh",
                            "return_to": return_to}
    if user_uuid:
        data["user_uuid"] = user_uuid  # the account's own token: listed and deleted with it
    _store(dynamodb, tables).create(digest=digest_of(value), kind=KIND, expires_epoch=now + TTL, data=data)
    return value


def _ticket(digest: str, item: dict[str, Any] | None) -> Ticket | None:
    if not item:
        return None
    return Ticket(digest=digest, identity=UpstreamIdentity(**item["identity"]), purpose=item["purpose"],
                  expires_epoch=int(item["expires_epoch"]), user_uuid=item.get("user_uuid"),
                  return_to=item.get("return_to"), stage=item.get("stage", "fresh"), device_id=item.get("device_id"))


def ticket_read(tables: TableNames, *, value: str | None, now: int) -> KeyRead[Ticket | None]:
    """The ticket of a cookie's value for a caller's batch read: None when unknown, used or expired (the
    write that spends it checks again)."""
    digest = digest_of(value) if value and len(value) <= MAX_VALUE else digest_of("-")
    read = OneTimeTokenStore(None, tables.one_time_tokens).read(digest=digest, kind=KIND, now=now)
    return KeyRead(read.table, read.key, lambda item: _ticket(digest, read.parse(item)))


def read_ticket(dynamodb: Any, tables: TableNames, *, value: str | None, now: int) -> Ticket:
    """The live ticket of a cookie's value (read strongly consistent), else 401 federation_ticket_invalid."""
    if not value or len(value) > MAX_VALUE:
        raise TicketInvalid()
    digest = digest_of(value)
    ticket = _ticket(digest, _store(dynamodb, tables).get(digest=digest, kind=KIND, now=now))
    if ticket is None:
        raise TicketInvalid()
    return ticket


def spend_write(tables: TableNames, ticket: Ticket, *, now: int) -> GuardedWrite:
    """The entry that uses the ticket up, for the transaction of the flow it lets happen: of two flows
    racing with one ticket, one commits and the other is 401 federation_ticket_invalid."""
    item = OneTimeTokenStore(None, tables.one_time_tokens).consume_item(digest=ticket.digest, kind=KIND, now=now)
    item["Delete"]["ConditionExpression"] += " AND #stage = :stage"
    item["Delete"]["ExpressionAttributeNames"]["#stage"] = "stage"
    item["Delete"]["ExpressionAttributeValues"][":stage"] = {"S": ticket.stage}
    return GuardedWrite(item, TicketInvalid)


def enrol_write(tables: TableNames, ticket: Ticket, *, user_uuid: str, device_id: str, now: int) -> GuardedWrite:
    """The entry that moves a fresh ticket on to `enrolled` (a sign-up made `user_uuid` and its first
    device `device_id`): it is then good for one sign-in with that device's proof."""
    return GuardedWrite({"Update": {
        "TableName": tables.one_time_tokens, "Key": OneTimeTokenStore.key(ticket.digest),
        "UpdateExpression": "SET #stage = :enrolled, user_uuid = :u, device_id = :d",
        "ConditionExpression": ("attribute_exists(token_digest) AND #k = :k AND expires_epoch > :now"
                                " AND #stage = :fresh"),
        "ExpressionAttributeNames": {"#stage": "stage", "#k": "kind"},
        "ExpressionAttributeValues": {":enrolled": {"S": "enrolled"}, ":fresh": {"S": "fresh"},
                                      ":u": {"S": user_uuid}, ":d": {"S": device_id}, ":k": {"S": KIND},
                                      ":now": {"N": str(now)}}}}, TicketInvalid)


@dataclass(frozen=True)
class HeldTicket:
    """What a sign-in asked "in use elsewhere — continue?" keeps of its ticket (in its confirm token), so
    that the confirmation spends it in its own transaction: its digest and its stage, never its value."""

    digest: str
    stage: Stage

    @classmethod
    def of(cls, ticket: Ticket) -> HeldTicket:
        return cls(digest=ticket.digest, stage=ticket.stage)

    @classmethod
    def of_data(cls, data: dict[str, Any] | None) -> HeldTicket | None:
        return cls(digest=data["digest"], stage=data["stage"]) if data else None

    def data(self) -> dict[str, Any]:
        return {"digest": self.digest, "stage": self.stage}


def held_spend_write(tables: TableNames, held: HeldTicket, *, now: int) -> GuardedWrite:
    """spend_write for a ticket known by its HeldTicket (a sign-in's confirmation)."""
    return spend_write(tables, Ticket(digest=held.digest, identity=UpstreamIdentity(provider="", issuer="", sub=""),
                                      purpose="sign_in", expires_epoch=0, stage=held.stage), now=now)
