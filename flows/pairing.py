"""Pairing a new device: it redeems a pairing token (devices/pairing_service.py) with the account's
credentials and gets its own certificate (SPEC §4). Fetch (one batch read) → check → one transaction. The
account may be proven by a provider's answer instead of its password (flows/federated_pairing.py, SPEC §16):
both go through certify_paired_device, where every rule of pairing is. No Flask."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from accounts import credential_service as credentials
from accounts import user_service as users
from accounts.models import UserRecord
from common.errors import ErrorCode, Forbidden
from common.database.batch_read import KeyRead, read_together
from common.database.dynamo import TableNames
from common.database.guarded_write import GuardedWrite
from devices import pairing_service as pairing_tokens
from devices import qr
from devices import service as devices
from devices.models import DeviceCertificateResponse, DeviceKeyFields
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
    """Redeem a pairing token with the account's password: one batch read (the credentials, expecting the
    QR's user, and the token) → check → certify_paired_device."""
    code = ScannedCode.of(qr_code)
    facts = read_together(ctx.dynamodb, {
        **credentials.credential_reads(ctx.tables, username=username, ip=caller.ip, now=ctx.epoch(),
                                       expected_user_uuid=code.user_uuid),
        TOKEN: code.token_read(ctx.tables)})
    user, had_failures = credentials.check_read_credentials(ctx, username=username, secret=password,
                                                            caller=caller, facts=facts)
    key = DeviceKeyFields.model_construct(device_name=device_name, public_key=public_key, csr=csr,
                                          device_class=device_class)
    answer = certify_paired_device(ctx, user=user, code=code, token_record=facts[TOKEN], key=key, caller=caller)
    if had_failures:
        background(ctx).submit(credentials.clear_failures, ctx, username=username)  # off the response path
    return answer


@dataclass(frozen=True)
class ScannedCode:
    """A scanned pairing code: the account it says it is of, and its token."""

    user_uuid: str
    token: str

    @classmethod
    def of(cls, qr_code: str) -> ScannedCode:
        """The code of a pairing link or payload; 400 invalid_qr otherwise."""
        user_uuid, token = qr.decode_payload(qr_code)
        return cls(user_uuid=user_uuid, token=token)

    def token_read(self, tables: TableNames) -> KeyRead[Any]:
        return pairing_tokens.token_read(tables, token=self.token)


def certify_paired_device(ctx: AppContext, *, user: UserRecord, code: ScannedCode, token_record: dict[str, Any] | None,
                          key: DeviceKeyFields, caller: Caller,
                          first: Callable[[str], Sequence[GuardedWrite]] = lambda device_id: ()
                          ) -> DeviceCertificateResponse:
    """The pairing's rules once the account is proven (by its password, or by a provider's answer): the code
    is `user`'s, the account neither being deleted nor locked, the token (read as `token_record`) redeemable;
    then one transaction, within the device limit: `first(device_id)` (what stood in for the password, told
    first if refused), the redemption, the device's "Wasn't you?" link, the account still unlocked, its mail."""
    if code.user_uuid != user.user_uuid:
        raise pairing_tokens.PairingUserMismatch()
    if user.deleting:  # as a lock, and the transaction re-checks both
        raise sessions.AccountDeleted()
    if user.locked:  # an operator's lock stops new devices too; the transaction re-checks it
        raise sessions.AccountLocked()
    record = pairing_tokens.redeemable(token_record, user_uuid=user.user_uuid, now=ctx.epoch())
    issued = devices.issue_device(ctx, user_uuid=user.user_uuid, device_name=key.device_name, is_primary=False,
                                  public_key=key.public_key, csr=key.csr, device_class=key.device_class)
    device = issued.record
    link = not_me.new_link(ctx, user_uuid=user.user_uuid, device_id=device.device_id)
    # The mail of the new device goes into the outbox in the transaction that adds the device.
    mail = ctx.notifier.queued(localized_message(
        "new_device", user_uuid=user.user_uuid, email=user.email, locale=user.locale, device=device.device_name,
        facts=device_facts(user.locale, device_name=device.device_name, device_class=device.device_class,
                           at=ctx.now(), ip=caller.ip),
        link=link.url))
    devices.store_new_device(ctx, issued, extra_writes=[
        *first(device.device_id),
        pairing_tokens.redeem_item(ctx, token=code.token, user_uuid=user.user_uuid, device_id=device.device_id,
                                   record=record),
        link.write, users.not_locked_write(ctx, user_uuid=user.user_uuid), mail.write])
    audit(AuditEvent.PAIRING_TOKEN_REDEEMED, user_uuid=user.user_uuid, device_id=device.device_id,
          created_by_device=record.get("created_by_device"))
    ctx.notifier.send_queued(mail)
    return devices.certificate_response(ctx.ca, issued, message="Device registered.")
