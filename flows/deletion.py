"""Account deletion (SPEC §4 DELETE /account). It revokes the account's devices too, hence this
module sits in login_app, above the domains whose services it composes.

The account enters the deleting state in one conditional write on its users item (an admin's: one
transaction that also lowers the count of admins, refused for the last one, SPEC §15); from then on
nothing of it works: every write that adds a session, a device or a certificate (login, confirm,
pairing, recovery, renewal) carries a condition on that item in its transaction, so none commits
after it. Then `finish_deletion` removes everything of the account. It is idempotent and
resumable: the request runs it, so does a retry (DELETE again, 204), and so does the sweeper
(flows/deletion_sweeper.py) for a deletion whose request failed. Finishing leaves a tombstone
of the users item without personal data; the sweeper's last pass, once
CITYLOGIN_DELETION_SETTLE_SECONDS have passed, finishes again (anything written by a request that
was already past its checks, and what the eventually consistent indexes showed late) and removes it.

What stays once it has finished is no personal data, only ids, digests, times and reasons, each
until its own TTL (docs/reference/http-api.md, DELETE /account): the ended session records (device name emptied,
no IP, user agent or apps signed in), their events in the apps' feed, the CRL's entries of the account's
certificates and the apps' grants on its sessions. The items keyed by personal data itself (the
name claims, the lockout counters of the username, the reset counters of the address) can only be
found while the users item still holds the username and address (and the claims of its linked identities,
only while it holds their map): `_forget_names` deletes them
before the tombstone replaces it, and runs again on every pass until it has."""
from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError

from accounts import credential_service as credentials
from accounts import passkey_service as passkeys
from accounts import password_service
from accounts import user_service as users
from accounts.models import Role, Secret, UserRecord
from common.errors import ServiceUnavailable
from common.database import dynamo
from common.database.one_time_tokens import OneTimeTokenStore
from devices import pairing_service as pairing_tokens
from devices import service as devices
from federation import identities
from common.mail.notifier import localized_message
from common.mail.outbox_store import OutboxStore
from oidc.app_grants import consents as oidc_consents
from sessions import service as sessions
from sessions.models import Principal, RevokeReason
from common.web.audit import AuditEvent, audit
from common.web.caller import Caller
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore

DELETED_NOTICE = "account_deleted"

log = logging.getLogger(__name__)


def delete_account(ctx: AppContext, *, principal: Principal, secret: Secret, caller: Caller) -> None:
    """Check the password (or a passkey), put the account into the deleting state, then finish the deletion.
    Once the state is entered the answer is 204, even if finishing fails now (the sweeper or a
    retry finishes); a retry of a deletion already entered or finished is 204 without a password.
    409 last_admin for the last account holding the admin role (the count of admins moves with the state)."""
    user = users.get_user(ctx, user_uuid=principal.user_uuid)
    if user is None:
        return  # finished before: nothing of it is left
    if not user.deleting:
        checked, _ = credentials.reauthenticate(ctx, user_uuid=user.user_uuid, username=user.username,
                                                secret=secret, caller=caller, flow="account_deletion")
        if checked.user_uuid != user.user_uuid:  # the name now belongs to someone else
            raise credentials.InvalidCredentials()
        # The last admin's account is not deleted (SPEC §15: the last admin cannot lose the role): 409 last_admin.
        if users.begin_deletion(ctx, user_uuid=user.user_uuid, holds_admin=Role.ADMIN.value in (user.roles or ())):
            audit(AuditEvent.ACCOUNT_DELETION_STARTED, user_uuid=user.user_uuid, device_id=principal.device_id,
                  ip=caller.ip)
            ctx.notifier.notify(localized_message("account_deleted", user_uuid=user.user_uuid, email=user.email,
                                                  locale=user.locale, username=user.username))
    try:
        finish_deletion(ctx, user_uuid=user.user_uuid)
    except (BotoCoreError, ClientError, ServiceUnavailable) as exc:
        if isinstance(exc, (BotoCoreError, ClientError)) and not dynamo.is_unavailable(exc):
            raise
        log.warning("deletion of account %s entered but not finished (%s); the sweeper finishes it",
                    user.user_uuid, type(exc).__name__)


def finish_deletion(ctx: AppContext, *, user_uuid: str) -> bool:
    """Remove everything of an account in the deleting state, step by step, each step idempotent:
    end its sessions (reason account_deleted, live streams told), revoke every device certificate
    into the CRL and delete the devices, erase presence, history and audit trail and strip the
    ended session records of device name, IP and user agent, delete its passkeys and the apps it
    allowed (consents), its one-time tokens, pairing tokens and rate-limit counters, free its names
    and leave the tombstone. False if the account is not being deleted (or is gone)."""
    user = users.get_user(ctx, user_uuid=user_uuid)
    if user is None or not user.deleting:
        return False
    ended = sessions.end_all_sessions(ctx, user_uuid=user_uuid, reason=RevokeReason.ACCOUNT_DELETED)
    removed = devices.remove_all_devices(ctx, user_uuid=user_uuid)
    sessions.erase_user_records(ctx, user_uuid=user_uuid)
    passkeys.delete_all_passkeys(ctx, user_uuid=user_uuid)
    oidc_consents.forget_all(ctx, user_uuid=user_uuid)
    tokens = OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens).delete_all_of_user(user_uuid)
    tokens += pairing_tokens.forget_pairing_tokens(ctx, user_uuid=user_uuid)
    counters = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).delete_all_of_user(user_uuid)
    # Its waiting mail goes, but the notice that the account is deleted (sent, it keeps no contents).
    OutboxStore(ctx.dynamodb, ctx.tables.mail_outbox).delete_all_of_user(user_uuid, keep_event=DELETED_NOTICE)
    if user.username:  # not yet a tombstone: the parts only its personal data can find
        _forget_names(ctx, user)
        audit(AuditEvent.ACCOUNT_DELETED, user_uuid=user_uuid, devices_revoked=len(removed), sessions_ended=ended,
              one_time_codes_deleted=tokens, counters_deleted=counters)
    return True


def _forget_names(ctx: AppContext, user: UserRecord) -> None:
    """Delete what is keyed by the username or the address, then free both, then replace the users
    item (the only place they are still read from) by the tombstone: last, so that a pass cut off
    before it does all of this again."""
    credentials.clear_failures(ctx, username=user.username)
    password_service.forget_reset_allowance(ctx, email=user.email)
    identities.release_all(ctx, user=user)  # its linked identities (SPEC §16) are free to sign up or link again
    _release_names(ctx, user)
    users.leave_tombstone(ctx, user=user)


def _release_names(ctx: AppContext, user: UserRecord) -> None:
    # Both claims go in one transaction, refused only where a claim is someone else's: while the
    # account is being deleted nobody can take its names, so a refusal means an earlier pass freed
    # them both (cut off before the tombstone) and a new account has taken one since. Freed, then.
    try:
        users.release_names(ctx, user=user)
    except ClientError as exc:
        if "ConditionalCheckFailed" not in dynamo.cancellation_codes(exc):
            raise


def sweep_deletions(ctx: AppContext) -> int:
    """One sweeper pass: finish every deletion begun more than the settle time ago, and make the
    last pass of those finished that long ago (then their tombstone goes). Returns how many
    accounts it acted on. Several processes may sweep at once: every step is idempotent."""
    now = ctx.epoch()
    settle = ctx.settings.deletion_settle_seconds
    acted = 0
    for user_uuid in users.users_being_deleted(ctx, since_before=now - settle + 1):
        user = users.get_user(ctx, user_uuid=user_uuid)
        if user is None or not user.deleting:
            continue
        if user.deletion_finished is None:
            finish_deletion(ctx, user_uuid=user_uuid)
        elif user.deletion_finished <= now - settle:
            finish_deletion(ctx, user_uuid=user_uuid)
            users.remove_tombstone(ctx, user_uuid=user_uuid)
        else:
            continue
        acted += 1
    return acted
