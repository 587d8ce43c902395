"""Account rules: the profile view and the recovery codes (SPEC §4). No Flask here.

Recovery codes are shown once; only digests are kept, each salted with the user's uuid, as a set
on the users item. Checking the password before replacing them is the caller's job (login_app's
recovery flow, which also certifies devices with them)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from accounts import credential_service as credentials
from accounts import user_service as users
from accounts.email_store import AddressChanged, ClaimTaken, EmailStore, TokenRefused
from accounts.models import AccountRecord, AccountView, Secret, UserRecord
from accounts.store import AccountStore, CodesChanged
from accounts.user_service import EmailTaken
from common.errors import BadRequest, Conflict, ErrorCode, NotFound, StorageUnavailable, TooManyRequests, Unauthorized
from common.crypto.tokens import compact_recovery_code, new_recovery_code, new_token, token_digest
from common.database.batch_read import KeyRead
from common.database.dynamo import TableNames
from common.database.guarded_write import GuardedWrite
from common.mail.message import Link, Mail
from common.mail.notifier import localized_message
from sessions import service as sessions
from common.web.caller import Caller
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore

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


def account_read(tables: TableNames, *, user_uuid: str) -> KeyRead[AccountRecord | None]:
    """The account (None while it is being deleted), for a caller's batch read (common/database/batch_read.py)."""
    return KeyRead(tables.users, AccountStore.key(user_uuid), AccountStore.from_item)


def still_shown(ctx: AppContext, *, user_uuid: str, refusal: Callable[[AccountRecord | None], Exception],
                username: str | None = None, locale: str | None = None, usable_email: str | None = None,
                email_withheld: bool = False) -> GuardedWrite:
    """A check, for another domain's write, that the account still shows what it was written with
    (AccountStore.shown_check_item); refused, `refusal` of the account as it is then (None: gone or being
    deleted), read from the refusal itself."""
    return GuardedWrite(item=account_store(ctx).shown_check_item(user_uuid, username=username, locale=locale,
                                                                 usable_email=usable_email,
                                                                 email_withheld=email_withheld),
                        refusal=lambda: refusal(None),
                        refusal_of_item=lambda item: refusal(AccountStore.from_item(item)))


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
        max_concurrent_devices=ctx.settings.max_concurrent_devices if limit is None else limit,
        roles=list(account.roles or ()), has_password=account.has_password)


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


def redemption_write(ctx: AppContext, *, user_uuid: str, code: str) -> GuardedWrite:
    """The transaction entry that uses up `code`; its refusal is InvalidRecoveryCode, or
    AccountDeleted if the account's deletion began meanwhile."""
    def refused() -> Exception:
        return InvalidRecoveryCode() if account_store(ctx).get(user_uuid) else sessions.AccountDeleted()
    return GuardedWrite(item=account_store(ctx).redeem_item(user_uuid, _digest(user_uuid, code)), refusal=refused)


# --- e-mail address: verification, resend, change; profile settings (SPEC §4) ---------------
# A verification link holds the account's link generation it was made in: a new link and a
# verification move it on (accounts/email_store.py), so only the newest link works, for the
# address the account would have now. The password of an address change is asked again through
# credential_service.recheck_password, under the login lockout.
# An account given at registration an address that another account held (SPEC §4) does not hold it
# (UserRecord.unclaimed_email): nothing is mailed to it, and only an address change, verified by
# its link, gives the account an address.

VERIFY_PURPOSE = "verify_email"
VERIFY_TTL_SECONDS = 24 * 3600
RESENDS_PER_HOUR = 5
RESEND_WINDOW_SECONDS = 3600
VERIFY_ATTEMPTS = 3  # a parallel write to the same account makes the transaction retry


class InvalidVerificationToken(BadRequest):
    code, detail = ErrorCode.INVALID_VERIFICATION_TOKEN, "This verification link is not valid, used or expired."


def email_store(ctx: AppContext) -> EmailStore:
    return EmailStore(ctx.dynamodb, users_table=ctx.tables.users, claims_table=ctx.tables.claims,
                      tokens_table=ctx.tables.one_time_tokens)


@dataclass(frozen=True)
class PendingVerification:
    """A verification token's write (for the caller's transaction) and the message to send after it."""

    write: GuardedWrite
    message: Mail


def new_verification(ctx: AppContext, *, user_uuid: str, email: str, locale: str = "en",
                     generation: int = 0) -> PendingVerification:
    """A single-use link (24 h) that verifies `email` as the account's address while its link
    generation is `generation` (0: a new account's first link); the message in `locale`."""
    token = new_token()
    item = email_store(ctx).token_put(digest=token_digest(token, purpose=VERIFY_PURPOSE), user_uuid=user_uuid,
                                      email=email, expires_epoch=ctx.epoch() + VERIFY_TTL_SECONDS,
                                      generation=generation)
    # A refused put is a digest already stored: a collision of random tokens, worth a retry.
    write = GuardedWrite(item=item, refusal=StorageUnavailable)
    link = Link("verify", token)  # rendered by the process that delivers the mail
    return PendingVerification(write=write, message=localized_message(
        "verify_email", user_uuid=user_uuid, email=email, locale=locale, link=link))


def send_verification(ctx: AppContext, *, user_uuid: str, email: str, locale: str = "en") -> None:
    """A new link for `email`; every link made before is void from now. Nothing for "" (the
    address of an account that holds none)."""
    if email:
        ctx.notifier.notify(_new_link(ctx, user_uuid=user_uuid, email=email, locale=locale))


def _new_link(ctx: AppContext, *, user_uuid: str, email: str, locale: str) -> Mail:
    """Store a new link for `email` (every link made before is void from now); its message."""
    store = email_store(ctx)
    generation = store.next_generation(user_uuid)
    if generation is None:
        raise AccountNotFound()
    pending = new_verification(ctx, user_uuid=user_uuid, email=email, locale=locale, generation=generation)
    store.write_token(pending.write.item)
    return pending.message


def _usable_user(ctx: AppContext, *, user_uuid: str) -> UserRecord:
    user = users.get_user(ctx, user_uuid=user_uuid)
    if user is None or user.deleting:
        raise AccountNotFound()
    return user


def resend_verification(ctx: AppContext, *, user_uuid: str) -> None:
    """A new link for the current address, at most RESENDS_PER_HOUR an hour (429 rate_limited).
    An address the account does not hold gets no mail, but the link is stored all the same: the
    answer and its time do not tell the account's owner that another account holds the address."""
    now = ctx.epoch()
    if RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take(
            f"verify_resend#{user_uuid}", limit=RESENDS_PER_HOUR, window_seconds=RESEND_WINDOW_SECONDS,
            now=now, user_uuid=user_uuid) is None:
        raise TooManyRequests("Too many verification e-mails requested; try again later.",
                              retry_after=RESEND_WINDOW_SECONDS - now % RESEND_WINDOW_SECONDS,
                              code=ErrorCode.RATE_LIMITED)
    user = _usable_user(ctx, user_uuid=user_uuid)
    if not user.email_verified:
        message = _new_link(ctx, user_uuid=user_uuid, email=user.given_email, locale=user.locale)
        if user.email:
            ctx.notifier.notify(message)


def request_email_change(ctx: AppContext, *, user_uuid: str, secret: Secret, new_email: str,
                         caller: Caller) -> None:
    """After the password or a passkey (asked again under the lockout), a link to `new_email` and a notice to
    the current address (if the account holds one); the address changes only when the link is used,
    and every earlier verification link is void."""
    user = _usable_user(ctx, user_uuid=user_uuid)
    _, had_failures = credentials.reauthenticate(ctx, user_uuid=user_uuid, username=user.username,
                                                 secret=secret, caller=caller, flow="email_change")
    send_verification(ctx, user_uuid=user_uuid, email=new_email, locale=user.locale)
    if had_failures:
        credentials.clear_failures(ctx, username=user.username)
    ctx.notifier.notify(localized_message("email_change_requested", user_uuid=user_uuid, email=user.email,
                                          locale=user.locale, new_email=new_email))


def verify_email(ctx: AppContext, *, token: str) -> None:
    """Use up `token`: its address becomes the account's, verified; the e-mail claim moves with
    it in the same transaction (EmailTaken if another account holds the address). An account that
    held no address takes the claim here, its registration's address included. Only
    the account's newest link works: one made before another link, or before a verification, is
    InvalidVerificationToken."""
    digest, store = token_digest(token, purpose=VERIFY_PURPOSE), email_store(ctx)
    for _ in range(VERIFY_ATTEMPTS):
        pending = store.pending_token(digest)
        if pending is None:
            raise InvalidVerificationToken()
        user = users.get_user(ctx, user_uuid=pending["user_uuid"])
        generation = pending.get("generation", 0)
        if (not user or user.deleting or pending["expires_epoch"] <= ctx.epoch()
                or user.email_link_generation != generation):
            raise InvalidVerificationToken()
        try:
            store.verify(digest=digest, user_uuid=user.user_uuid, current_email=user.given_email,
                         new_email=pending["email"], generation=generation, now=ctx.epoch(),
                         holds_current=bool(user.email))
            return
        except TokenRefused:
            raise InvalidVerificationToken() from None
        except ClaimTaken:
            raise EmailTaken() from None
        except AddressChanged:
            continue
    raise StorageUnavailable("The account is being changed elsewhere; try again shortly.")


def update_profile(ctx: AppContext, *, user_uuid: str, locale: str) -> AccountView:
    """Set the locale of messages and show the account."""
    if not account_store(ctx).set_locale(user_uuid, locale):
        raise AccountNotFound()
    return account_view(ctx, user_uuid=user_uuid)
