"""The writes that give or keep an app's tokens (a code's redemption, a refresh's rotation, a device's approved
request) commit only while the person's session lives: one transaction whose first write checks it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from authlib.oauth2.rfc6749 import InvalidGrantError

from common.database.guarded_write import GuardedWrite, write_all
from common.errors import ApiError

if TYPE_CHECKING:  # the stubs package is a test (type-check) dependency only
    from mypy_boto3_dynamodb import DynamoDBClient


def write_while_live(dynamodb: DynamoDBClient, writes: list[GuardedWrite]) -> None:
    """`writes` (the first the session's liveness check) in one transaction; a session that ended
    meanwhile, for whatever reason (a logout, an account locked: its session stays ended after an unlock),
    is the token endpoint's invalid_grant (RFC 6749 §5.2), not a 401 or 403 of citylogin's own API. Only a
    session too busy to tell (503) is left as it is."""
    try:
        write_all(dynamodb, writes)
    except ApiError as error:
        if error.status >= 500:
            raise
        raise InvalidGrantError("The citylogin session of this grant has ended.") from None
