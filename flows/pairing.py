"""Pairing a new device: it redeems a pairing token (devices/pairing_service.py) with the account's
credentials and gets its own certificate (SPEC §4). Fetch (one batch read) → check → one transaction. No Flask."""
from __future__ import annotations

from accounts import credential_service as credentials
from accounts import user_service as users
from common.errors import ErrorCode, Forbidden
from common.database.batch_read import read_together
from devices import pairing_service as pairing_tokens
from devices import qr
from devices import service as devices
from devices.models import DeviceCertificateResponse
from flows import not_me
from common.mail.notifier import device_facts, localized_message
from sessions import service as sessions
from common.web.audit import AuditEvent, audit
from common.web.background import background
from common.web.caller import Caller
from common.runtime.context import AppContext

TOKEN = "pairing.token"  # the pairing token's item in the redemption's batch read


class DeviceNotRegistered(Forbidden):
    code, detail = ErrorCode.DEVICE_NOT_REGISTERED, "This device is not a registered device of this account."


def device_by_credentials(ctx: AppContext, *, username: str, password: str, client_cert_fp: str,
                          caller: Caller) -> tuple[str, str]:
    """(user_uuid, device_id) for the seed-compatible body: the password, and a fingerprint of
    one of the user's registered, unrevoked devices."""
    user, _ = credentials.check_credentials(ctx, username=username, secret=password, caller=caller)
    try:
        device = devices.device_for_fingerprint(ctx, user_uuid=user.user_uuid, fingerprint=client_cert_fp)
    except (devices.CertificateMismatch, devices.DeviceRevoked):
        raise DeviceNotRegistered() from None
    return user.user_uuid, device.device_id


def register_paired_device(ctx: AppContext, *, qr_code: str, username: str, password: str,
                           device_name: str | None, public_key: str | None, csr: str | None,
                           caller: Caller, device_class: str = "other") -> DeviceCertificateResponse:
    """Redeem a pairing token and certify the new device: one batch read (the credentials, expecting
    the QR's user, and the token) → check → one transaction (the device, the redemption, its
    "Wasn't you?" link, and the account still unlocked)."""
    payload_uuid, token = qr.decode_payload(qr_code)
    facts = read_together(ctx.dynamodb, {
        **credentials.credential_reads(ctx.tables, username=username, ip=caller.ip, now=ctx.epoch(),
                                       expected_user_uuid=payload_uuid),
        TOKEN: pairing_tokens.token_read(ctx.tables, token=token)})
    user, had_failures = credentials.check_read_credentials(ctx, username=username, secret=password,
                                                            caller=caller, facts=facts)
    if payload_uuid != user.user_uuid:
        raise pairing_tokens.PairingUserMismatch()
    if user.deleting:  # as a lock, and the transaction re-checks both
        raise sessions.AccountDeleted()
    if user.locked:  # an operator's lock stops new devices too; the transaction re-checks it
        raise sessions.AccountLocked()
    record = pairing_tokens.redeemable(facts[TOKEN], user_uuid=user.user_uuid, now=ctx.epoch())
    issued = devices.issue_device(ctx, user_uuid=user.user_uuid, device_name=device_name, is_primary=False,
                                  public_key=public_key, csr=csr, device_class=device_class)
    device = issued.record
    link = not_me.new_link(ctx, user_uuid=user.user_uuid, device_id=device.device_id)
    # The mail of the new device goes into the outbox in the transaction that adds the device.
    mail = ctx.notifier.queued(localized_message(
        "new_device", user_uuid=user.user_uuid, email=user.email, locale=user.locale, device=device.device_name,
        facts=device_facts(user.locale, device_name=device.device_name, device_class=device.device_class,
                           at=ctx.now(), ip=caller.ip),
        link=link.url))
    devices.store_new_device(ctx, issued, extra_writes=[
        pairing_tokens.redeem_item(ctx, token=token, user_uuid=user.user_uuid, device_id=device.device_id,
                                   record=record),
        link.write, users.not_locked_write(ctx, user_uuid=user.user_uuid), mail.write])
    audit(AuditEvent.PAIRING_TOKEN_REDEEMED, user_uuid=user.user_uuid, device_id=device.device_id,
          created_by_device=record.get("created_by_device"))
    if had_failures:
        background(ctx).submit(credentials.clear_failures, ctx, username=username)  # off the response path
    ctx.notifier.send_queued(mail)
    return devices.certificate_response(ctx.ca, issued, message="Device registered.")
