"""Challenges: single-use nonces a device signs to prove it holds its key (SPEC §4). Issued by
`POST /login/challenge`; consumed by the login and by certificate renewal, each signing under
its own purpose prefix."""
from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from common.database import dynamo
from common.database.dynamo import TableNames
from common.database.batch_read import KeyRead

from common.crypto.tokens import new_token, token_digest
from common.database.one_time_tokens import OneTimeTokenStore
from common.runtime.context import AppContext

if TYPE_CHECKING:  # the stubs package is a test (type-check) dependency only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

CHALLENGE_TTL = 60
_KIND = "challenge"


def _store(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


def issue_challenge(ctx: AppContext, *, counter: TransactWriteItemTypeDef) -> str | None:
    """A new challenge stored in one transaction with `counter` (a rate-limit entry that is refused
    when its window is full): the challenge, or None if the counter refused."""
    challenge = new_token(32)
    put = _store(ctx).create_item(digest=token_digest(challenge, purpose=_KIND), kind=_KIND,
                                  expires_epoch=ctx.epoch() + CHALLENGE_TTL)
    try:  # create_item's entry is a Put alone: rebuilt as one, it is typed for the client
        ctx.dynamodb.transact_write_items(TransactItems=[counter, {"Put": put["Put"]}])
    except ClientError as exc:
        if dynamo.cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            return None
        raise
    return challenge


def challenge_read(tables: TableNames, challenge: str, *, now: int) -> KeyRead[bool]:
    """Whether `challenge` is usable (issued here, unused, unexpired), for a caller's batch read;
    only its consumption (challenge_consumption, in the caller's transaction) makes it count."""

    def usable(item: dict[str, Any] | None) -> bool:
        if not item:
            return False
        return item["kind"]["S"] == _KIND and int(item["expires_epoch"]["N"]) > now
    return KeyRead(tables.one_time_tokens, OneTimeTokenStore.key(token_digest(challenge, purpose=_KIND)), usable)


def challenge_consumption(ctx: AppContext, challenge: str) -> dict[str, Any]:
    """The TransactWriteItems entry that uses `challenge` up; refused if it is not usable."""
    return _store(ctx).consume_item(digest=token_digest(challenge, purpose=_KIND), kind=_KIND, now=ctx.epoch())


def consume_challenge(ctx: AppContext, challenge: str) -> bool:
    """Use up `challenge` (one conditional delete); True if it was issued here, unused and unexpired."""
    return _store(ctx).consume(digest=token_digest(challenge, purpose=_KIND), kind=_KIND,
                               now=ctx.epoch()) is not None


def signature_bytes(signature: str) -> bytes | None:
    """The raw bytes of a base64 or base64url signature; None if it is neither."""
    standard = signature.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
