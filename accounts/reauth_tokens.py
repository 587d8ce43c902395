"""Reauth tokens (SPEC §16): what a fresh sign-in with one of the account's providers leaves, to stand in for
the password once where a signed-in person is asked for it again (credential_service.reauthenticate). An
account made with a provider has no password to give; this is its way to confirm an e-mail change, new
recovery codes, a deletion, a passkey added or removed, or a first password.

A token is ≥ 256 bits of randomness, stored only as its digest in the one_time_tokens table with the account
it was issued to, for five minutes. It is spent by one conditional delete that names its account: of two
uses racing, one wins; another account's, a used or an expired one is refused (and counted, by the caller,
as a wrong password is). federation/ issues it through `issue_write`, in the transaction that spends the
provider's ticket; nothing here knows of providers. No Flask here."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from common.crypto.tokens import new_token, token_digest
from common.database import dynamo
from common.database.guarded_write import GuardedWrite
from common.database.one_time_tokens import OneTimeTokenStore
from common.errors import StorageUnavailable
from common.runtime.context import AppContext

KIND = "reauth_token"
PURPOSE = "reauth-token"
TTL = 300
MAX_VALUE = 256  # a presented value longer than any issued is nobody's


def _digest(value: str) -> str:
    return token_digest(value, purpose=PURPOSE)


def issue_write(ctx: AppContext, *, user_uuid: str) -> tuple[str, GuardedWrite]:
    """A new token for `user_uuid`: its value (for the answer only) and the entry that stores its digest,
    for the caller's transaction."""
    value = new_token(32)
    item = OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens).create_item(
        digest=_digest(value), kind=KIND, expires_epoch=ctx.epoch() + TTL, data={"user_uuid": user_uuid})
    return value, GuardedWrite(item, StorageUnavailable)  # a digest taken: 256 random bits never do


def spend(ctx: AppContext, *, user_uuid: str, value: str) -> bool:
    """Use the token up if it is `user_uuid`'s, unused and unexpired (one conditional delete); else False and
    nothing changes (another account's token stays good for its own)."""
    if not value or len(value) > MAX_VALUE:
        return False
    try:
        ctx.dynamodb.delete_item(**_spend_item(ctx.tables.one_time_tokens, digest=_digest(value),
                                               user_uuid=user_uuid, now=ctx.epoch()))
    except ClientError as exc:
        if dynamo.is_condition_failure(exc):
            return False
        raise
    return True


def _spend_item(table: str, *, digest: str, user_uuid: str, now: int) -> dict[str, Any]:
    return {"TableName": table, "Key": OneTimeTokenStore.key(digest),
            "ConditionExpression": "attribute_exists(token_digest) AND #k = :k AND user_uuid = :u "
                                   "AND expires_epoch > :now",
            "ExpressionAttributeNames": {"#k": "kind"},
            "ExpressionAttributeValues": {":k": {"S": KIND}, ":u": {"S": user_uuid}, ":now": {"N": str(now)}}}
