"""Pairing: a registered device asks for a one-time token shown as a QR code; a new device
redeems it with the account's credentials and gets its own certificate (SPEC §4). No Flask."""
from __future__ import annotations

from accounts import credential_service as credentials
from accounts import user_service as users
from common.audit import AuditEvent, audit
from common.background import background
from common.batch_read import KeyRead, read_together
from common.caller import Caller
from common.context import AppContext
from common.crypto import new_token, token_digest
from common.errors import ErrorCode, Forbidden, Gone, NotFound, TooManyRequests
from common.notifier import device_facts, localized_message
from common.rate_limits import RateLimitStore
from common.timefmt import iso, iso_from_epoch
from common.guarded_write import GuardedWrite
from device_manager import not_me_service, qr
from device_manager import service as devices
from device_manager.models import DeviceCertificateResponse
from device_manager.pairing_store import USED, PairingTokenStore
from session_manager import service as sessions

PURPOSE = "pairing"
TOKEN = "pairing.token"  # the pairing token's item in the redemption's batch read
RATE_WINDOW_SECONDS = 3600
# An expired code is still recognised, and answered 410 pairing_token_expired ("show a new one")
# rather than 404, for this long after it expired: its digest's item outlives it by that much
# (DynamoDB deletes items late, never early). Past that it is unknown, whether deleted yet or not.
EXPIRED_CODE_KEPT_SECONDS = 7 * 86400


class DeviceNotRegistered(Forbidden):
    code, detail = ErrorCode.DEVICE_NOT_REGISTERED, "This device is not a registered device of this account."


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


def _now(ctx: AppContext) -> int:
    return int(ctx.now().timestamp())


# --- asking for a token -------------------------------------------------------------------

def device_by_credentials(ctx: AppContext, *, username: str, password: str, client_cert_fp: str,
                          caller: Caller) -> tuple[str, str]:
    """(user_uuid, device_id) for the seed-compatible body: the password, and a fingerprint of
    one of the user's registered, unrevoked devices."""
    user, _ = credentials.check_credentials(ctx, username=username, password=password, caller=caller)
    try:
        device = devices.device_for_fingerprint(ctx, user_uuid=user.user_uuid, fingerprint=client_cert_fp)
    except (devices.CertificateMismatch, devices.DeviceRevoked):
        raise DeviceNotRegistered() from None
    return user.user_uuid, device.device_id


def request_pairing_token(ctx: AppContext, *, user_uuid: str, device_id: str) -> dict:
    """A new single-use token for `user_uuid`: its pairing link (also as a PNG QR code) and bare payload."""
    settings, now = ctx.settings, _now(ctx)
    retry = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take(
        f"pairing#{user_uuid}", limit=settings.pairing_tokens_per_hour, window_seconds=RATE_WINDOW_SECONDS, now=now,
        user_uuid=user_uuid)
    if retry is None:
        raise TooManyRequests("Too many pairing codes requested; try again later.",
                              retry_after=RATE_WINDOW_SECONDS - now % RATE_WINDOW_SECONDS,
                              code=ErrorCode.RATE_LIMITED)
    token = new_token(32)
    expires = now + settings.pairing_token_ttl
    pairing_store(ctx).create(digest=token_digest(token, purpose=PURPOSE), user_uuid=user_uuid,
                              created_by_device=device_id, created_at=iso(ctx.now()), expires_epoch=expires,
                              kept_until=expires + EXPIRED_CODE_KEPT_SECONDS)
    audit(AuditEvent.PAIRING_TOKEN_CREATED, user_uuid=user_uuid, device_id=device_id, expires_at=iso_from_epoch(expires))
    payload = qr.encode_payload(user_uuid=user_uuid, token=token)
    link = qr.pairing_link(settings.public_url, payload)
    return {"qr_code": link, "qr_payload": payload, "qr_png": qr.png_data_uri(link),
            "expires_at": iso_from_epoch(expires), "expires_in": settings.pairing_token_ttl}


def forget_pairing_tokens(ctx: AppContext, *, user_uuid: str) -> int:
    """Delete every pairing token of the user (account deletion); returns how many."""
    return pairing_store(ctx).delete_all_of_user(user_uuid)


# --- redeeming it -----------------------------------------------------------------------

def _redeemable(record: dict | None, *, user_uuid: str, now: int) -> dict:
    if record is None or record["expires_epoch"] + EXPIRED_CODE_KEPT_SECONDS <= now:
        raise PairingTokenUnknown()
    if record["user_uuid"] != user_uuid:
        raise PairingUserMismatch()
    if record["status"] == USED:
        raise PairingTokenUsed()
    if record["expires_epoch"] <= now:
        raise PairingTokenExpired()
    return record


def register_paired_device(ctx: AppContext, *, qr_code: str, username: str, password: str,
                           device_name: str | None, public_key: str | None, csr: str | None,
                           caller: Caller, device_class: str = "other") -> DeviceCertificateResponse:
    """Redeem a pairing token (one read, one transaction) and certify the new device."""
    payload_uuid, token = qr.decode_payload(qr_code)
    digest, now = token_digest(token, purpose=PURPOSE), _now(ctx)
    store = pairing_store(ctx)
    # One batch read: the credentials (expecting the QR's user) and the pairing token.
    facts = read_together(ctx.dynamodb, {
        **credentials.credential_reads(ctx, username=username, ip=caller.ip, expected_user_uuid=payload_uuid),
        TOKEN: KeyRead(ctx.tables.pairing_tokens, PairingTokenStore.key(digest), PairingTokenStore.from_item)})
    user, had_failures = credentials.check_read_credentials(ctx, username=username, password=password,
                                                            caller=caller, facts=facts)
    if payload_uuid != user.user_uuid:
        raise PairingUserMismatch()
    if user.deleting:  # as a lock, and the transaction re-checks both
        raise sessions.AccountDeleted()
    if user.locked:  # an operator's lock stops new devices too; the transaction re-checks it
        raise sessions.AccountLocked()
    record = _redeemable(facts[TOKEN], user_uuid=user.user_uuid, now=now)
    issued = devices.issue_device(ctx, user_uuid=user.user_uuid, device_name=device_name, is_primary=False,
                                  public_key=public_key, csr=csr, device_class=device_class)
    redeem = store.redeem_item(digest=digest, user_uuid=user.user_uuid, device_id=issued.record.device_id,
                               now=now, at=iso(ctx.now()))

    def refused() -> Exception:  # someone redeemed it between our read and our write, or it just expired
        return PairingTokenExpired() if _now(ctx) >= record["expires_epoch"] else PairingTokenUsed()
    not_me = not_me_service.new_link(ctx, user_uuid=user.user_uuid, device_id=issued.record.device_id)
    devices.store_new_device(ctx, issued, extra_writes=[GuardedWrite(item=redeem, refusal=refused), not_me.write,
                                                        users.not_locked_write(ctx, user_uuid=user.user_uuid)])
    audit(AuditEvent.PAIRING_TOKEN_REDEEMED, user_uuid=user.user_uuid, device_id=issued.record.device_id,
          created_by_device=record.get("created_by_device"))
    if had_failures:
        background(ctx).submit(credentials.clear_failures, ctx, username=username)  # off the response path
    device = issued.record
    ctx.notifier.notify(localized_message(
        "new_device", user_uuid=user.user_uuid, email=user.email, locale=user.locale, device=device.device_name,
        facts=device_facts(user.locale, device_name=device.device_name, device_class=device.device_class,
                           at=ctx.now(), ip=caller.ip),
        link=not_me.url))
    return devices.certificate_response(ctx, issued, message="Device registered.")
