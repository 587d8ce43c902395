"""The first device of an account that has none, an imported one (SPEC §17): its password and a code
mailed to its address give the device its certificate. Only for an account with no registered device:
one that has a device adds others by pairing or a recovery code (409 device_exists). The code request
never tells whether an account exists, by its answer or its time: the lookup and the mail run off the
response path, as a reset link's do. The enrol is one transaction: the device, counted with a limit of
one (of racing ways in, one first device), the code used up, and the account's password seat (its
imported hash replaced by citylogin's Argon2id there). No Flask here."""
from __future__ import annotations

import logging
from concurrent.futures import Future
from datetime import datetime
from typing import Any, Callable, Sequence

from accounts import credential_service as credentials
from accounts import enrol_codes
from accounts import user_service as users
from accounts.models import UserRecord
from common.database.guarded_write import GuardedWrite, write_all
from common.mail.notifier import Notifier, Queued, device_facts, localized_message
from common.runtime.context import AppContext
from common.web.audit import AuditEvent, audit
from common.web.background import background
from common.web.caller import Caller
from devices import first_device
from devices import service as devices
from devices.models import DeviceCertificateResponse, DeviceKeyFields, EnrolRequest, IssuedDevice
from sessions import service as sessions
from sessions.models import HistoryResult

FLOW = "device_enrol"

log = logging.getLogger(__name__)


# --- the code --------------------------------------------------------------------------------

def request_code(ctx: AppContext, *, username: str, caller: Caller) -> None:
    """Mail a code if `username` names an account with an address and no device; an e-mail address in its
    place names the account that holds it (a source whose usernames were addresses: the mail tells the
    person their username). Only the client's own allowance can refuse (429); the lookup and the mail run
    off the response path."""
    enrol_codes.take_request_allowance(ctx, ip=caller.ip)
    sent = background(ctx).submit(_send_code, ctx, username=username)
    sent.add_done_callback(_log_unsent)


def _send_code(ctx: AppContext, *, username: str) -> None:
    user = (users.find_user_by_email(ctx, email=username) if "@" in username
            else users.find_user(ctx, username=username))
    if user is None or not user.email or user.deleting or user.locked:
        return
    code = enrol_codes.new_code()
    # The mail goes into the outbox in the code's own transaction: a code stored is a code mailed.
    mail = ctx.notifier.queued(localized_message("enrol_code", user_uuid=user.user_uuid, email=user.email,
                                                 locale=user.locale, username=user.username, code=code))
    try:
        write_all(ctx.dynamodb, [first_device.no_device_write(ctx, user_uuid=user.user_uuid),
                                 users.not_locked_write(ctx, user_uuid=user.user_uuid),
                                 *enrol_codes.new_code_writes(ctx, user=user, code=code), mail.write])
    except enrol_codes.CodeBudgetSpent:
        audit(AuditEvent.ENROL_CODE_WITHHELD, user_uuid=user.user_uuid)
        return
    except (first_device.DeviceExists, sessions.AccountLocked, sessions.AccountDeleted):
        return  # nothing to enrol: the answer was the same
    audit(AuditEvent.ENROL_CODE_MAILED, user_uuid=user.user_uuid)
    ctx.notifier.send_queued(mail)


def _log_unsent(done: Future[Any]) -> None:
    if done.exception() is not None:
        log.error("first-device code not sent", exc_info=done.exception())


# --- the enrol -------------------------------------------------------------------------------

def enrol(ctx: AppContext, *, request: EnrolRequest, caller: Caller) -> DeviceCertificateResponse:
    """The first device of the account, for its password (under the lockout) and the code mailed to it: 401
    invalid_credentials, 429 too_many_attempts, 403 account_locked, 409 device_exists (it has a device), 401
    invalid_email_code (counted toward the lockout and the code's tries), or 201 the device's certificate."""
    user, had_failures = credentials.check_credentials(ctx, username=request.username, secret=request.password,
                                                       caller=caller, flow=FLOW, defer_upgrade=True)
    _check_usable(ctx, user)
    try:
        code_use = enrol_codes.checked_code(ctx, user=user, code=request.email_code)
    except enrol_codes.InvalidEmailCode:
        credentials.count_failed_attempt(ctx, username=user.username, user=user, caller=caller,
                                         result=HistoryResult.INVALID_EMAIL_CODE)
        raise
    issued = _issue_first(ctx, user=user, key=request)
    upgrade = credentials.password_upgrade(ctx.passwords, user=user, secret=request.password)
    mail = _enrolled_mail(ctx.notifier, user=user, issued=issued, caller=caller, at=ctx.now())
    first_device.store_first_device(ctx, issued, extra_writes=[
        code_use, credentials.seat_write(ctx, user_uuid=user.user_uuid, upgrade=upgrade), mail.write])
    users.mark_email_verified(ctx, user_uuid=user.user_uuid, email=user.email)  # the code proved the address
    if had_failures:
        credentials.clear_failures(ctx, username=user.username)
    audit(AuditEvent.DEVICE_ENROLLED, user_uuid=user.user_uuid, device_id=issued.record.device_id, by="email_code",
          ip=caller.ip)
    ctx.notifier.send_queued(mail)
    return devices.certificate_response(ctx.ca, issued, message="First device set up.")


def _check_usable(ctx: AppContext, user: UserRecord) -> None:
    """Once the account is proven: neither being deleted nor locked (the transaction re-checks both), and
    without a registered device (409 device_exists; the device count's limit re-checks it)."""
    if user.deleting:
        raise sessions.AccountDeleted()
    if user.locked:
        raise sessions.AccountLocked()
    if first_device.has_registered_device(ctx, user_uuid=user.user_uuid):
        raise first_device.DeviceExists()


def _issue_first(ctx: AppContext, *, user: UserRecord, key: DeviceKeyFields) -> IssuedDevice:
    return devices.issue_device(ctx, user_uuid=user.user_uuid, device_name=key.device_name, is_primary=True,
                                public_key=key.public_key, csr=key.csr, device_class=key.device_class)


def _enrolled_mail(notifier: Notifier, *, user: UserRecord, issued: IssuedDevice, caller: Caller,
                   at: datetime) -> Queued:
    """The mail telling the account of its first device, for the device's transaction (its outbox entry)."""
    device = issued.record
    return notifier.queued(localized_message(
        "device_enrolled", user_uuid=user.user_uuid, email=user.email, locale=user.locale, device=device.device_name,
        facts=device_facts(user.locale, device_name=device.device_name, device_class=device.device_class,
                           at=at, ip=caller.ip)))


def certify_first_device(ctx: AppContext, *, user: UserRecord, key: DeviceKeyFields, caller: Caller,
                         first: Callable[[str], Sequence[GuardedWrite]]) -> DeviceCertificateResponse:
    """The first device of an account proven otherwise (a linked provider's answer, flows.federated_enrol):
    neither deleted nor locked, no device yet (409 device_exists), then one transaction with `first(device_id)`
    (what stood in for the password and the code) and the account still unlocked."""
    _check_usable(ctx, user)
    issued = _issue_first(ctx, user=user, key=key)
    mail = _enrolled_mail(ctx.notifier, user=user, issued=issued, caller=caller, at=ctx.now())
    first_device.store_first_device(ctx, issued, extra_writes=[
        *first(issued.record.device_id), users.not_locked_write(ctx, user_uuid=user.user_uuid), mail.write])
    audit(AuditEvent.DEVICE_ENROLLED, user_uuid=user.user_uuid, device_id=issued.record.device_id, by="provider",
          ip=caller.ip)
    ctx.notifier.send_queued(mail)
    return devices.certificate_response(ctx.ca, issued, message="First device set up.")
