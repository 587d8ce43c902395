"""Account rules: the profile view and the recovery codes (SPEC §4). No Flask here.

Recovery codes are shown once; only digests are kept, each salted with the user's uuid, as a set
on the users item. Checking the password before replacing them is the caller's job (login_app's
recovery flow), since the lockout lives above this package."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.models import AccountRecord, AccountView
from accounts.store import AccountStore, CodesChanged
from common.context import AppContext
from common.crypto import compact_recovery_code, new_recovery_code, token_digest
from common.errors import Conflict, ErrorCode, NotFound, Unauthorized

PURPOSE = "recovery"
CODE_COUNT = 10


class InvalidRecoveryCode(Unauthorized):
    code, detail = ErrorCode.INVALID_RECOVERY_CODE, "This recovery code is not valid or was already used."


class RecoveryCodesChanged(Conflict):
    code, detail = ErrorCode.RECOVERY_CODES_CHANGED, "The recovery codes were just replaced elsewhere; try again."


class AccountNotFound(NotFound):
    detail = "No such account."


@dataclass(frozen=True)
class NewRecoveryCodes:
    """Codes to show once, and the attributes that store their digests on a new users item."""

    codes: list[str]
    user_attributes: dict[str, Any]


def account_store(ctx: AppContext) -> AccountStore:
    return AccountStore(ctx.dynamodb, users_table=ctx.tables.users)


def _digest(user_uuid: str, code: str) -> str:
    # Salted with the uuid: equal codes of two users differ, and no table serves all users at once.
    return token_digest(f"{user_uuid}:{compact_recovery_code(code)}", purpose=PURPOSE)


def _new_codes() -> list[str]:
    codes: set[str] = set()
    while len(codes) < CODE_COUNT:
        codes.add(new_recovery_code())
    return sorted(codes)


def first_recovery_codes(*, user_uuid: str) -> NewRecoveryCodes:
    """The codes of a new account, for registration's create transaction."""
    codes = _new_codes()
    return NewRecoveryCodes(codes=codes, user_attributes=AccountStore.initial_attributes(
        [_digest(user_uuid, c) for c in codes]))


def get_account(ctx: AppContext, *, user_uuid: str) -> AccountRecord:
    account = account_store(ctx).get(user_uuid)
    if account is None:
        raise AccountNotFound()
    return account


def account_view(ctx: AppContext, *, user_uuid: str) -> AccountView:
    account = get_account(ctx, user_uuid=user_uuid)
    limit = account.max_concurrent_devices
    return AccountView(
        user_uuid=account.user_uuid, username=account.username, email=account.email,
        email_verified=account.email_verified, created_at=account.created_at, locale=account.locale,
        recovery_codes_left=account.recovery_codes_left,
        max_concurrent_devices=ctx.settings.max_concurrent_devices if limit is None else limit)


def replace_recovery_codes(ctx: AppContext, *, account: AccountRecord) -> list[str]:
    """Ten new codes for `account` as read; the old ones are void. RecoveryCodesChanged if
    they were replaced since it was read (of two parallel replacements one fails)."""
    codes = _new_codes()
    try:
        account_store(ctx).replace_codes(account.user_uuid, [_digest(account.user_uuid, c) for c in codes],
                                         expected_generation=account.recovery_generation)
    except CodesChanged:
        raise RecoveryCodesChanged() from None
    return codes


def redemption_write(ctx: AppContext, *, user_uuid: str, code: str) -> dict[str, Any]:
    """The transaction entry that uses up `code` (a refusal means InvalidRecoveryCode)."""
    return account_store(ctx).redeem_item(user_uuid, _digest(user_uuid, code))
