"""Recovery codes at work: a new device when every device is lost, and new codes for a logged-in
user (SPEC §4). Recovery certifies a device, hence this module sits in login_app, above accounts
and device_manager whose services it composes; the password is checked by accounts under the
login lockout. A provider's answer may prove the account instead of its password
(flows/federated_recovery.py, SPEC §16): both go through certify_recovered_device. No Flask here."""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Sequence

from accounts import credential_service as credentials
from accounts import service as accounts
from accounts.models import Secret, UserRecord
from common import i18n
from common.database.guarded_write import GuardedWrite
from devices import service as devices
from devices.models import DeviceCertificateResponse, DeviceRecord, RecoverRequest, RecoveryCodeFields
from common.mail.notifier import Notifier, device_facts, localized_message
from sessions import service as sessions
from sessions.models import HistoryResult
from common.web.audit import AuditEvent, audit
from common.web.caller import Caller
from common.runtime.context import AppContext


def recover_device(ctx: AppContext, *, request: RecoverRequest, caller: Caller) -> DeviceCertificateResponse:
    """Certify a new device for the account proven by its password (under the lockout), using up one
    recovery code: certify_recovered_device."""
    user, had_failures = credentials.check_credentials(ctx, username=request.username,
                                                       secret=request.password, caller=caller)
    return certify_recovered_device(ctx, user=user, request=request, caller=caller, had_failures=had_failures)


def certify_recovered_device(ctx: AppContext, *, user: UserRecord, request: RecoveryCodeFields, caller: Caller,
                             had_failures: bool,
                             first: Callable[[str], Sequence[GuardedWrite]] = lambda device_id: ()
                             ) -> DeviceCertificateResponse:
    """The recovery's rules once the account is proven (by its password, or by a provider's answer): a new
    device, using up one recovery code in the same transaction (of parallel redemptions of one code exactly
    one wins) with `first(device_id)` (what stood in for the password, told first if refused); optionally
    every other device unbound. A wrong code counts toward the lockout of the account's username."""
    if user.deleting:  # as a lock; the code's entry in the transaction re-checks it
        raise sessions.AccountDeleted()
    if user.locked:  # only once the account is proven, as at login: it tells a guesser nothing
        raise sessions.AccountLocked()
    issued = devices.issue_device(ctx, user_uuid=user.user_uuid, device_name=request.device_name,
                                  is_primary=request.unbind_other_devices, public_key=request.public_key,
                                  csr=request.csr, device_class=request.device_class)
    writes = [*first(issued.record.device_id),
              accounts.redemption_write(ctx, user_uuid=user.user_uuid, code=request.recovery_code)]
    try:
        if request.unbind_other_devices:
            unbound = devices.store_device_replacing_others(ctx, issued, extra_writes=writes)
        else:
            devices.store_new_device(ctx, issued, extra_writes=writes)
            unbound = []
    except accounts.InvalidRecoveryCode:  # the code's entry was refused: used, or never one
        credentials.count_failed_attempt(ctx, username=user.username, user=user, caller=caller,
                                         result=HistoryResult.INVALID_RECOVERY_CODE)
        raise
    if had_failures:
        credentials.clear_failures(ctx, username=user.username)
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
