"""Account deletion (SPEC §4 DELETE /account). It revokes the account's devices too, hence this
module sits in login_app, above the domains whose services it composes."""
from __future__ import annotations

from accounts import credential_service as credentials
from accounts import user_service as users
from accounts.password_service import AccountGone
from common.audit import audit
from common.caller import Caller
from common.context import AppContext
from common.notifier import localized_message
from device_manager import service as devices
from session_manager import service as sessions
from session_manager.models import Principal, RevokeReason


def delete_account(ctx: AppContext, *, principal: Principal, password: str, caller: Caller) -> None:
    """Revoke every device certificate (CRL), delete the devices, the profile and the name claims,
    end every session (reason account_deleted, live streams told) and erase the history."""
    user = users.get_user(ctx, user_uuid=principal.user_uuid)
    if user is None:
        raise AccountGone()
    checked, _ = credentials.recheck_password(ctx, user_uuid=user.user_uuid, username=user.username,
                                              password=password, caller=caller, flow="account_deletion")
    if checked.user_uuid != user.user_uuid:  # the name now belongs to someone else
        raise credentials.InvalidCredentials()
    # Devices first: a login racing this fails its device condition, so none outlives the account;
    # one that committed before is in the presence read by end_all_sessions.
    removed = devices.remove_all_devices(ctx, user_uuid=user.user_uuid)
    users.delete_user(ctx, user=user)
    ended = sessions.end_all_sessions(ctx, user_uuid=user.user_uuid, reason=RevokeReason.ACCOUNT_DELETED)
    sessions.erase_user_records(ctx, user_uuid=user.user_uuid)
    credentials.clear_failures(ctx, username=user.username)
    audit("account_deleted", user_uuid=user.user_uuid, devices_revoked=len(removed), sessions_ended=ended,
          ip=caller.ip)
    ctx.notifier.notify(localized_message("account_deleted", user_uuid=user.user_uuid, email=user.email,
                                          locale=user.locale, username=user.username))
