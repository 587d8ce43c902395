"""A signed-in person's passkeys (SPEC §13): adding or removing one asks again for the password or
a passkey (the creation options are issued only after it, and their challenge is this person's
for five minutes); listing and renaming do not. No Flask here."""
from __future__ import annotations

from accounts import credential_service as credentials
from accounts import passkey_service as passkeys
from accounts import user_service as users
from accounts.models import PasskeyAdded, PasskeyRegistration, Secret, UserRecord
from sessions import service as sessions
from sessions.models import Principal
from common.database.batch_read import read_together
from common.web.caller import Caller
from common.runtime.context import AppContext


COUNT = "passkeys.count"


def _account(ctx: AppContext, principal: Principal) -> UserRecord:
    user = users.get_user(ctx, user_uuid=principal.user_uuid)
    if user is None or user.deleting:
        raise credentials.AccountGone()
    return user


def _reauthenticated(ctx: AppContext, *, principal: Principal, secret: Secret, caller: Caller,
                     flow: str) -> UserRecord:
    user = _account(ctx, principal)
    _, had_failures = credentials.reauthenticate(ctx, user_uuid=user.user_uuid, username=user.username,
                                                 secret=secret, caller=caller, flow=flow)
    if had_failures:
        credentials.clear_failures(ctx, username=user.username)
    return user


def creation_options(ctx: AppContext, *, principal: Principal, secret: Secret, caller: Caller) -> str:
    """The options of a new passkey (JSON), once the caller proved again it is the account's owner."""
    user = _reauthenticated(ctx, principal=principal, secret=secret, caller=caller, flow="passkey_add")
    return passkeys.creation_options(ctx, user=user)


def add_passkey(ctx: AppContext, *, principal: Principal, registration: PasskeyRegistration) -> PasskeyAdded:
    return passkeys.add_passkey(ctx, user=_account(ctx, principal), credential=registration.credential,
                                name=registration.name, caller_live=sessions.still_live(ctx, principal))


def remove_passkey(ctx: AppContext, *, principal: Principal, credential_id: str, secret: Secret,
                   caller: Caller) -> None:
    """Remove a passkey once the caller proved again it is the account's owner; 409 last_way_in (before the
    proof is asked, and again in the removal's transaction) when it is the account's last way in."""
    user = _account(ctx, principal)
    count = read_together(ctx.dynamodb, {COUNT: passkeys.passkey_count_read(ctx.tables, user_uuid=user.user_uuid)})
    keeps = passkeys.removal_keeps(user, passkey_count=count[COUNT])
    user = _reauthenticated(ctx, principal=principal, secret=secret, caller=caller, flow="passkey_remove")
    passkeys.remove_passkey(ctx, user_uuid=user.user_uuid, credential_id=credential_id, keeps=keeps)
