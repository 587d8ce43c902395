"""Pairing tokens: a registered device asks for a one-time token shown as a QR code (SPEC §4);
how a new device redeems it with the account's credentials is flows/pairing.py. No Flask."""
from __future__ import annotations

from typing import Any, Sequence

from common.errors import ErrorCode, Forbidden, Gone, NotFound, StorageUnavailable, TooManyRequests
from common.timefmt import iso, iso_from_epoch
from common.crypto.tokens import new_token, token_digest
from common.database.batch_read import KeyRead
from common.database.dynamo import TableNames
from common.database.guarded_write import GuardedWrite, write_all
from devices import qr
from devices.pairing_store import USED, PairingTokenStore
from common.web.audit import AuditEvent, audit
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore

PURPOSE = "pairing"
RATE_WINDOW_SECONDS = 3600
# An expired code is still recognised, and answered 410 pairing_token_expired ("show a new one")
# rather than 404, for this long after it expired: its digest's item outlives it by that much
# (DynamoDB deletes items late, never early). Past that it is unknown, whether deleted yet or not.
EXPIRED_CODE_KEPT_SECONDS = 7 * 86400


class PairingUserMismatch(Forbidden):
    code, detail = ErrorCode.PAIRING_USER_MISMATCH, "This pairing code belongs to another account."


class PairingTokenUnknown(NotFound):
    code, detail = ErrorCode.PAIRING_TOKEN_UNKNOWN, "This pairing code is not known."


class PairingTokenExpired(Gone):
    code, detail = ErrorCode.PAIRING_TOKEN_EXPIRED, "This pairing code has expired; show a new one."


class PairingTokenUsed(Gone):
    code, detail = ErrorCode.PAIRING_TOKEN_USED, "This pairing code was already used; show a new one."


def pairing_store(ctx: AppContext) -> PairingTokenStore:
    return PairingTokenStore(ctx.dynamodb, ctx.tables.pairing_tokens)


# --- asking for a token -------------------------------------------------------------------

def request_pairing_token(ctx: AppContext, *, user_uuid: str, device_id: str,
                          checks: Sequence[GuardedWrite] = ()) -> dict[str, Any]:
    """A new single-use token for `user_uuid`: its pairing link (also as a PNG QR code) and bare
    payload. One transaction: the caller's `checks` (its session still live), the hourly count,
    the token."""
    settings, now = ctx.settings, ctx.epoch()
    token = new_token(32)
    expires = now + settings.pairing_token_ttl
    count = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take_item(
        f"pairing#{user_uuid}", limit=settings.pairing_tokens_per_hour, window_seconds=RATE_WINDOW_SECONDS, now=now,
        user_uuid=user_uuid)
    put = pairing_store(ctx).create_item(digest=token_digest(token, purpose=PURPOSE), user_uuid=user_uuid,
                                         created_by_device=device_id, created_at=iso(ctx.now()),
                                         expires_epoch=expires, kept_until=expires + EXPIRED_CODE_KEPT_SECONDS)
    write_all(ctx.dynamodb, [*checks, GuardedWrite(item=dict(count), refusal=lambda: _too_many(now)),
                             GuardedWrite(item=put, refusal=StorageUnavailable)])
    audit(AuditEvent.PAIRING_TOKEN_CREATED, user_uuid=user_uuid, device_id=device_id,
          expires_at=iso_from_epoch(expires))
    payload = qr.encode_payload(user_uuid=user_uuid, token=token)
    link = qr.pairing_link(ctx.public_url(), payload)
    return {"qr_code": link, "qr_payload": payload, "qr_png": qr.png_data_uri(link),
            "expires_at": iso_from_epoch(expires), "expires_in": settings.pairing_token_ttl}


def _too_many(now: int) -> TooManyRequests:
    return TooManyRequests("Too many pairing codes requested; try again later.",
                           retry_after=RATE_WINDOW_SECONDS - now % RATE_WINDOW_SECONDS, code=ErrorCode.RATE_LIMITED)


def forget_pairing_tokens(ctx: AppContext, *, user_uuid: str) -> int:
    """Delete every pairing token of the user (account deletion); returns how many."""
    return pairing_store(ctx).delete_all_of_user(user_uuid)


# --- redeeming it -----------------------------------------------------------------------

def redeemable(record: dict[str, Any] | None, *, user_uuid: str, now: int) -> dict[str, Any]:
    if record is None or record["expires_epoch"] + EXPIRED_CODE_KEPT_SECONDS <= now:
        raise PairingTokenUnknown()
    if record["user_uuid"] != user_uuid:
        raise PairingUserMismatch()
    if record["status"] == USED:
        raise PairingTokenUsed()
    if record["expires_epoch"] <= now:
        raise PairingTokenExpired()
    return record


def token_read(tables: TableNames, *, token: str) -> KeyRead[Any]:
    """The pairing token's item, for the redemption's batch read (None: unknown)."""
    return KeyRead(tables.pairing_tokens, PairingTokenStore.key(token_digest(token, purpose=PURPOSE)),
                   PairingTokenStore.from_item)


def redeem_item(ctx: AppContext, *, token: str, user_uuid: str, device_id: str, record: dict[str, Any]) -> GuardedWrite:
    """The redemption of a token read as `record`, for the new device's transaction: refused as used,
    or as expired if it expired meanwhile, when someone redeemed it between the read and the write."""
    now = ctx.epoch()
    item = pairing_store(ctx).redeem_item(digest=token_digest(token, purpose=PURPOSE), user_uuid=user_uuid,
                                          device_id=device_id, now=now, at=iso(ctx.now()))

    def refused() -> Exception:
        return PairingTokenExpired() if ctx.epoch() >= record["expires_epoch"] else PairingTokenUsed()
    return GuardedWrite(item=item, refusal=refused)
