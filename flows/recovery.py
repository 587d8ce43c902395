"""Recovery codes at work: a new device when every device is lost, and new codes for a logged-in
user (SPEC §4). Recovery certifies a device, hence this module sits in login_app, above accounts
and device_manager whose services it composes; the password is checked by accounts under the
login lockout. No Flask here."""
from __future__ import annotations

from datetime import datetime

from accounts import credential_service as credentials
from accounts import service as accounts
from accounts.models import Secret, UserRecord
from common import i18n
from devices import service as devices
from devices.models import DeviceCertificateResponse, DeviceRecord, RecoverRequest
from common.mail.notifier import Notifier, device_facts, localized_message
from sessions import service as sessions
from sessions.models import HistoryResult
from common.web.audit import AuditEvent, audit
from common.web.caller import Caller
from common.runtime.context import AppContext


def recover_device(ctx: AppContext, *, request: RecoverRequest, caller: Caller) -> DeviceCertificateResponse:
    """Certify a new device for the account, using up one recovery code in the same transaction
    (of parallel redemptions of one code exactly one wins); optionally unbind every other device."""
    user, had_failures = credentials.check_credentials(ctx, username=request.username,
                                                       secret=request.password, caller=caller)
    if user.deleting:  # as a lock; the code's entry in the transaction re-checks it
        raise sessions.AccountDeleted()
    if user.locked:  # only after the password, as at login: it tells a guesser nothing
        raise sessions.AccountLocked()
    issued = devices.issue_device(ctx, user_uuid=user.user_uuid, device_name=request.device_name,
                                  is_primary=request.unbind_other_devices, public_key=request.public_key,
                                  csr=request.csr, device_class=request.device_class)
    redeem = accounts.redemption_write(ctx, user_uuid=user.user_uuid, code=request.recovery_code)
    try:
        if request.unbind_other_devices:
            unbound = devices.store_device_replacing_others(ctx, issued, extra_writes=[redeem])
        else:
            devices.store_new_device(ctx, issued, extra_writes=[redeem])
            unbound = []
    except accounts.InvalidRecoveryCode:  # the code's entry was refused: used, or never one
        credentials.count_failed_attempt(ctx, username=request.username, user=user, caller=caller,
                                         result=HistoryResult.INVALID_RECOVERY_CODE)
        raise
    if had_failures:
        credentials.clear_failures(ctx, username=request.username)
    audit(AuditEvent.DEVICE_RECOVERED, user_uuid=user.user_uuid, device_id=issued.record.device_id,
          unbound=[d.device_id for d in unbound], ip=caller.ip)
    _notify_recovered(ctx.notifier, user=user, device=issued.record, unbound=len(unbound), caller=caller,
                      at=ctx.now())
    return devices.certificate_response(ctx.ca, issued, message="Device recovered.")



def _notify_recovered(notifier: Notifier, *, user: UserRecord, device: DeviceRecord, unbound: int,
                      caller: Caller, at: datetime) -> None:
    removed = i18n.text("mail.device_recovered.others_removed", user.locale, count=unbound) if unbound else ""
    notifier.notify(localized_message(
        "device_recovered", user_uuid=user.user_uuid, email=user.email, locale=user.locale,
        device=device.device_name, others_removed=removed,
        facts=device_facts(user.locale, device_name=device.device_name, device_class=device.device_class,
                           at=at, ip=caller.ip)))

def regenerate_recovery_codes(ctx: AppContext, *, user_uuid: str, secret: Secret, caller: Caller) -> list[str]:
    """Ten new codes for the caller, re-authenticated by password or passkey; the old codes are void."""
    account = accounts.get_account(ctx, user_uuid=user_uuid)
    _, had_failures = credentials.reauthenticate(ctx, user_uuid=user_uuid, username=account.username,
                                                 secret=secret, caller=caller, flow="recovery_codes")
    codes = accounts.replace_recovery_codes(ctx, account=account)
    if had_failures:
        credentials.clear_failures(ctx, username=account.username)
    audit(AuditEvent.RECOVERY_CODES_REPLACED, user_uuid=user_uuid, ip=caller.ip)
    return codes
