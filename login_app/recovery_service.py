"""Recovery codes at work: a new device when every device is lost, and new codes for a logged-in
user (SPEC §4). Recovery certifies a device, hence this module sits in login_app, above accounts
and device_manager whose services it composes; the password is checked by accounts under the
login lockout. No Flask here."""
from __future__ import annotations

from accounts import credential_service as credentials
from accounts import service as accounts
from common.audit import audit
from common.caller import Caller
from common.context import AppContext
from common.notifier import Message
from device_manager import service as devices
from device_manager.models import DeviceCertificateResponse
from login_app.models import RecoverRequest
from session_manager import service as sessions


def recover_device(ctx: AppContext, *, request: RecoverRequest, caller: Caller) -> DeviceCertificateResponse:
    """Certify a new device for the account, using up one recovery code in the same transaction
    (of parallel redemptions of one code exactly one wins); optionally unbind every other device."""
    user, had_failures = credentials.check_credentials(ctx, username=request.username,
                                                       password=request.password, caller=caller)
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
                                         result="invalid_recovery_code")
        raise
    if had_failures:
        credentials.clear_failures(ctx, username=request.username)
    audit("device_recovered", user_uuid=user.user_uuid, device_id=issued.record.device_id,
          unbound=[d.device_id for d in unbound], ip=caller.ip)
    removed = f" Every other device ({len(unbound)}) was removed." if unbound else ""
    ctx.notifier.notify(Message(
        event="device_recovered", user_uuid=user.user_uuid, email=user.email,
        subject="A device was added with a recovery code",
        body=f"The device {issued.record.device_name} was added to your account with a recovery code.{removed} "
             f"If this was not you, change your password and create new recovery codes."))
    return devices.certificate_response(ctx, issued, message="Device recovered.")


def regenerate_recovery_codes(ctx: AppContext, *, user_uuid: str, password: str, caller: Caller) -> list[str]:
    """Ten new codes for the caller, whose password is checked again; the old codes are void."""
    account = accounts.get_account(ctx, user_uuid=user_uuid)
    user, had_failures = credentials.check_credentials(ctx, username=account.username, password=password,
                                                       caller=caller, expected_user_uuid=user_uuid)
    if user.user_uuid != user_uuid:  # the name now belongs to someone else (an account deleted meanwhile)
        raise credentials.InvalidCredentials()
    codes = accounts.replace_recovery_codes(ctx, account=account)
    if had_failures:
        credentials.clear_failures(ctx, username=account.username)
    audit("recovery_codes_replaced", user_uuid=user_uuid, ip=caller.ip)
    return codes
