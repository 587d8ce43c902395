"""Credentials: the username and password under the lockout (SPEC §6), for every flow that asks
for the password (login, pairing, recovery; and through reauthenticate every flow of a signed-in
user: e-mail change, password change, new recovery codes, deletion, passkeys). A passkey's
assertion may stand in for the password at login and in reauthenticate (SPEC §13); a reauth token, left by
a fresh sign-in with one of the account's providers, only in reauthenticate (§16). Failures count
toward the lockout, are audited and go into the login history; a lockout tells the account's owner.
No Flask here."""
from __future__ import annotations

import logging
import unicodedata
import uuid
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from accounts import passkey_service as passkeys
from accounts import reauth_tokens
from accounts import user_service as users
from accounts.lockout_store import LockoutStore
from accounts.models import PasskeyAssertion, ReauthToken, Secret, UserRecord
from common.errors import ApiError, ErrorCode, NotFound, TooManyRequests, Unauthorized
from common.crypto.passwords import PasswordHasher, is_imported
from common.crypto.tokens import token_digest
from common.database.guarded_write import GuardedWrite
from common.database.batch_read import KeyRead, read_together
from common.database.dynamo import TableNames
from common.mail.notifier import Notifier, localized_message, mail_time
from sessions import service as sessions
from sessions.models import HistoryResult
from common.web.audit import AuditEvent, audit
from common.web.background import background
from common.web.caller import Caller
from common.runtime.context import AppContext
from common.web.rate_limits import limit_subject

# Names of credential_reads' items in the caller's read_together result.
OWNER, EXPECTED = "credentials.owner", "credentials.expected_user"
LOCK_USER, LOCK_IP, FAILURES = "credentials.lock_user", "credentials.lock_ip", "credentials.failures"
# Who an unknown username reads and writes as, so that it makes the same DynamoDB calls as a known
# one (SPEC §4: unknown users cost the same). Registration issues version-4 UUIDs; this nil UUID is
# none of them, so no user, device or presence item has it and no one can read its history.
NO_SUCH_USER = UserRecord(user_uuid=str(uuid.UUID(int=0)), username="", email="", password_hash="",
                          created_at="")

log = logging.getLogger(__name__)


class InvalidCredentials(Unauthorized):
    code, detail = ErrorCode.INVALID_CREDENTIALS, "The username or password is incorrect."


class AccountGone(NotFound):
    detail = "No such account."


def lockout_store(ctx: AppContext) -> LockoutStore:
    return LockoutStore(ctx.dynamodb, ctx.tables.rate_limits)


# --- lockout (SPEC §6) -----------------------------------------------------------------

def _subjects(username: str, ip: str | None) -> tuple[str, str]:
    """The lockout's keys of a username and of a client address (its /64 for IPv6)."""
    return username_subject(username), f"ip:{limit_subject(ip)}"


def username_subject(username: str) -> str:
    """The lockout's key of a username: a digest, no name in the table (SPEC §6)."""
    return "user:" + token_digest(unicodedata.normalize("NFKC", username).casefold(), purpose="lockout-user")


def credential_reads(tables: TableNames, *, username: str, ip: str | None, now: int,
                     expected_user_uuid: str | None = None, secret: Secret = "") -> dict[str, KeyRead[Any]]:
    """What check_read_credentials needs, for the caller's one BatchGetItem beside its own items:
    who owns `username`, the user the caller expects it to be (say, the subject of a presented
    certificate), the lockout items of the username and of the IP, and for a passkey's assertion
    its credential (as the expected user's, else its userHandle's) and its challenge."""
    reads: dict[str, KeyRead[Any]] = {
        OWNER: users.username_owner_read(tables, username=username),
        EXPECTED: users.user_read(tables, user_uuid=expected_user_uuid or NO_SUCH_USER.user_uuid),
        **lockout_reads(tables, username=username, ip=ip)}
    if isinstance(secret, PasskeyAssertion):
        owner = (expected_user_uuid or passkeys.user_of_handle(secret.response.userHandle)
                 or NO_SUCH_USER.user_uuid)
        reads.update(passkeys.assertion_reads(tables, user_uuid=owner, assertion=secret, now=now))
    return reads


def lockout_reads(tables: TableNames, *, username: str, ip: str | None) -> dict[str, KeyRead[Any]]:
    """The lockout's items of `username` and of the client address `ip`, for a caller's batch read."""
    user_subject, ip_subject = _subjects(username, ip)

    def lockout_read(limit_key: str) -> KeyRead[Any]:
        return KeyRead(tables.rate_limits, LockoutStore.key(limit_key), LockoutStore.from_item)
    return {LOCK_USER: lockout_read(LockoutStore.lock_key(user_subject)),
            LOCK_IP: lockout_read(LockoutStore.lock_key(ip_subject)),
            FAILURES: lockout_read(LockoutStore.failure_key(user_subject))}


def _claimed_user(ctx: AppContext, facts: Mapping[str, Any]) -> tuple[UserRecord | None, bool]:
    """The user who owns the username, and whether that took a read of its own: none if it is the
    expected one, else one more read (of the nil uuid for an unknown name, so that known and
    unknown usernames make the same calls)."""
    owner, expected = facts[OWNER], facts[EXPECTED]
    if owner and expected and expected.user_uuid == owner:
        return expected, False
    user = users.get_user(ctx, user_uuid=owner or NO_SUCH_USER.user_uuid)
    return (user if owner else None), True


def _check_lockout(facts: Mapping[str, Any], *, now: int) -> bool:
    """Raise 429 while the username or the IP is locked; True if the username has recent failures
    (or a past lock) to clear on success."""
    locked_until = max((item.get("locked_until", 0) for item in (facts[LOCK_USER], facts[LOCK_IP]) if item),
                       default=0)
    if locked_until > now:
        raise TooManyRequests("Too many failed logins; try again later.", retry_after=locked_until - now)
    return bool(facts[LOCK_USER] or facts[LOCK_IP] or facts[FAILURES])


def _count_failure(ctx: AppContext, *, username: str, ip: str | None, user: UserRecord | None = None) -> None:
    store, now = lockout_store(ctx), ctx.epoch()
    user_subject, ip_subject = _subjects(username, ip)
    if store.add_failure(user_subject, now=now) >= ctx.settings.login_max_failures:
        locked_seconds = store.lock(user_subject, now=now)
        if locked_seconds is not None:  # this failure started the lock (not a parallel one)
            audit(AuditEvent.LOCKOUT, scope="username", user_uuid=user and user.user_uuid, ip=ip,
                  locked_seconds=locked_seconds)
            if user is not None:
                _notify_lockout(ctx.notifier, user=user, ip=ip, until=now + locked_seconds)
    if store.add_failure(ip_subject, now=now) >= ctx.settings.login_max_failures_per_ip:
        locked_seconds = store.lock(ip_subject, now=now)
        if locked_seconds is not None:
            audit(AuditEvent.LOCKOUT, scope="ip", ip=ip, locked_seconds=locked_seconds)


def _notify_lockout(notifier: Notifier, *, user: UserRecord, ip: str | None, until: int) -> None:
    """One message to the owner per lockout of their username, in their locale."""
    ends = datetime.fromtimestamp(until, timezone.utc)
    notifier.notify(localized_message("lockout", user_uuid=user.user_uuid, email=user.email, locale=user.locale,
                                          username=user.username, until=mail_time(ends, user.locale),
                                          ip=ip or "-"))


def username_lock_read(tables: TableNames, *, username: str, now: int) -> KeyRead[int | None]:
    """Until when (epoch seconds) wrong passwords locked `username`'s password checks, or None if they
    do not now, for a caller's batch read (an operator's account page)."""
    user_subject, _ = _subjects(username, None)

    def until(item: dict[str, Any] | None) -> int | None:
        ends = int((LockoutStore.from_item(item) or {}).get("locked_until", 0))
        return ends if ends > now else None
    return KeyRead(tables.rate_limits, LockoutStore.key(LockoutStore.lock_key(user_subject)), until)


def clear_failures(ctx: AppContext, *, username: str) -> None:
    store = lockout_store(ctx)
    user_subject, _ = _subjects(username, None)
    store.clear([store.lock_key(user_subject), store.failure_key(user_subject)])


def count_failed_attempt(ctx: AppContext, *, username: str, user: UserRecord, caller: Caller,
                         result: HistoryResult) -> None:
    """A failure after the password was right (e.g. a wrong recovery code or device proof):
    counted toward the lockout like a wrong password, and written into the history as `result`."""
    _count_failure(ctx, username=username, ip=caller.ip, user=user)
    record_failure(ctx, user=user, result=result, device_id=None, caller=caller)


def _lockout_passed(ctx: AppContext, *, user: UserRecord | None, caller: Caller, facts: Mapping[str, Any],
                    flow: str | None) -> bool:
    """_check_lockout on lockout_reads' items, a refusal written into the history (locked_out)."""
    try:
        return _check_lockout(facts, now=ctx.epoch())
    except TooManyRequests:
        record_failure(ctx, user=user, result=HistoryResult.LOCKED_OUT, device_id=None, caller=caller, flow=flow)
        raise


def check_not_locked_out(ctx: AppContext, *, user: UserRecord, caller: Caller, flow: str) -> bool:
    """For a flow that asks no password (a provider's answer stands in for it, SPEC §16) yet takes a secret
    someone could guess (a recovery code): 429 too_many_attempts while the account's username or the
    caller's address is locked out, as a password check would be; else whether recent failures need
    clearing once the flow has succeeded (clear_failures). Its wrong guesses count by count_failed_attempt."""
    facts = read_together(ctx.dynamodb, lockout_reads(ctx.tables, username=user.username, ip=caller.ip))
    return _lockout_passed(ctx, user=user, caller=caller, facts=facts, flow=flow)


# --- the password or a passkey ------------------------------------------------------------

def _secret_refused(ctx: AppContext, user: UserRecord | None, secret: Secret,
                    facts: Mapping[str, Any], *, reauthenticating: bool,
                    defer_upgrade: bool = False) -> ApiError | None:
    """None if `secret` is the user's password, an assertion of one of the user's passkeys or a reauth token
    issued to the user (either then used up: a raced one is refused here); else the refusal to count and raise."""
    if isinstance(secret, str):
        return None if _password_ok(ctx, user, secret, defer_upgrade=defer_upgrade) else InvalidCredentials()
    if user is None:
        return InvalidCredentials()
    if isinstance(secret, ReauthToken):  # never a sign-in's password: it confirms a signed-in person only
        if not reauthenticating:
            return InvalidCredentials()
        return None if reauth_tokens.spend(ctx, user_uuid=user.user_uuid, value=secret.value) else InvalidCredentials()
    try:
        accepted = passkeys.check_assertion(ctx, user=user, assertion=secret, facts=facts, refusal=InvalidCredentials)
    except passkeys.PasskeyCounterRegressed as regressed:
        return regressed
    if accepted is None:
        return InvalidCredentials()
    passkeys.spend(ctx.dynamodb, accepted)
    return None


def _password_ok(ctx: AppContext, user: UserRecord | None, password: str, *, defer_upgrade: bool = False) -> bool:
    """check(): an unknown user, a hash of current or of legacy parameters and an imported one cost the same
    time. A matched hash of other parameters is replaced by one of the current; an imported one too, unless
    the caller replaces it in its own transaction (`defer_upgrade`: password_upgrade)."""
    matched = ctx.passwords.check(user.password_hash if user else None, password)
    if user is None or not matched:
        return False
    if defer_upgrade and is_imported(user.password_hash):
        return True
    if ctx.passwords.needs_rehash(user.password_hash):
        users.rehash_password(ctx, user_uuid=user.user_uuid, verified_hash=user.password_hash,
                              password_hash=ctx.passwords.hash(password))
    return True


@dataclass(frozen=True)
class PasswordUpgrade:
    """An imported hash (SPEC §17) that a sign-in's password matched, and citylogin's Argon2id of that
    password to put in its place in the sign-in's own transaction (seat_write)."""

    user_uuid: str
    verified_hash: str
    password_hash: str


def password_upgrade(passwords: PasswordHasher, *, user: UserRecord, secret: Secret) -> PasswordUpgrade | None:
    """For a sign-in whose check deferred it (defer_upgrade): the upgrade of `user`'s imported hash, now
    that `secret`, a password, matched it; None for any other hash or secret."""
    if not isinstance(secret, str) or not is_imported(user.password_hash):
        return None
    return PasswordUpgrade(user_uuid=user.user_uuid, verified_hash=user.password_hash,
                           password_hash=passwords.hash(secret))


def seat_write(ctx: AppContext, *, user_uuid: str, upgrade: PasswordUpgrade | None) -> GuardedWrite:
    """The users item's entry of a sign-in's transaction: users.not_locked_write, which with `upgrade` also
    replaces the imported hash, only if it is still the one the password matched (401 invalid_credentials
    if a change or reset came first)."""
    plain = users.not_locked_write(ctx, user_uuid=user_uuid)
    if upgrade is None:
        return plain

    def refused() -> Exception:
        user = users.get_user(ctx, user_uuid=user_uuid)
        if user is None or user.deleting or user.locked:
            return plain.refusal()
        return InvalidCredentials()
    return GuardedWrite(item=users.password_upgrade_item(ctx, user_uuid=user_uuid,
                                                         verified_hash=upgrade.verified_hash,
                                                         password_hash=upgrade.password_hash), refusal=refused)


def upgrade_alone(ctx: AppContext, upgrade: PasswordUpgrade | None) -> None:
    """The upgrade of a sign-in that wrote no transaction (a 409 asked "in use elsewhere?"): on its own,
    conditional on the hash matched, so the old password still works once, never twice."""
    if upgrade is not None:
        users.rehash_password(ctx, user_uuid=upgrade.user_uuid, verified_hash=upgrade.verified_hash,
                              password_hash=upgrade.password_hash)


def record_failure(ctx: AppContext, *, user: UserRecord | None, result: HistoryResult, device_id: str | None,
                   caller: Caller, flow: str | None = None) -> None:
    """Write the history row off the response path; an unknown user's is the same write, made so
    that it stores nothing, so known and unknown usernames cost the same. A row that cannot be
    written is logged."""
    at = ctx.now()
    audit(AuditEvent.LOGIN_FAILURE, user_uuid=user and user.user_uuid, device_id=device_id, ip=caller.ip,
          reason=result.value, flow=flow)
    user_uuid = (user or NO_SUCH_USER).user_uuid
    written = background(ctx).submit(
        sessions.record_attempt, ctx, at=at,  # the row keeps the attempt's time
        user_uuid=user_uuid, result=result, device_id=device_id, ip=caller.ip, user_agent=caller.user_agent,
        keep=user is not None)
    written.add_done_callback(lambda done: _log_unwritten(done, user_uuid=user_uuid, result=result.value))


def record_question(ctx: AppContext, *, user: UserRecord, device_id: str, caller: Caller) -> str | None:
    """The history row of a login asked "in use elsewhere - continue?" (409 concurrent_login): written
    before the answer, so that a confirm can mark it continued (mark_continued); its key, or None when it
    could not be written (logged: the question is asked all the same)."""
    result = HistoryResult.REJECTED_CONCURRENT
    audit(AuditEvent.LOGIN_FAILURE, user_uuid=user.user_uuid, device_id=device_id, ip=caller.ip, reason=result.value)
    try:
        return sessions.record_attempt(ctx, at=ctx.now(), user_uuid=user.user_uuid, result=result, device_id=device_id,
                                       ip=caller.ip, user_agent=caller.user_agent)
    except (BotoCoreError, ClientError):
        log.error("login history row not written (user %s, result %s)", user.user_uuid, result.value, exc_info=True)
        return None


def mark_continued(ctx: AppContext, *, user_uuid: str, question: str) -> None:
    """The person answered the question of the row `question` (record_question's key) with "continue":
    off the response path, logged if it cannot be written."""
    marked = background(ctx).submit(sessions.mark_continued, ctx, user_uuid=user_uuid, event_key=question)
    marked.add_done_callback(lambda done: _log_unwritten(done, user_uuid=user_uuid, result="continued"))


def _log_unwritten(done: Future[Any], *, user_uuid: str, result: str) -> None:
    if done.exception() is not None:
        log.error("login history row not written (user %s, result %s)", user_uuid, result,
                  exc_info=done.exception())


def check_read_credentials(ctx: AppContext, *, username: str, secret: Secret, caller: Caller,
                           facts: Mapping[str, Any], flow: str | None = None,
                           reauthenticating: bool = False, defer_upgrade: bool = False) -> tuple[UserRecord, bool]:
    """The user if `secret` (the password, or a passkey's assertion) is right and neither the
    username nor the IP is locked out, from `facts` (read_together of credential_reads, plus the
    caller's own items); and whether recent failures need clearing. Failures count toward the
    lockout, are audited (login_failure, with `flow` if given) and go into the history. With `defer_upgrade`
    an imported hash the password matched is left for the caller's transaction (password_upgrade)."""
    user, read_again = _claimed_user(ctx, facts)
    had_failures = _lockout_passed(ctx, user=user, caller=caller, facts=facts, flow=flow)
    refused = _secret_refused(ctx, user, secret, facts, reauthenticating=reauthenticating, defer_upgrade=defer_upgrade)
    if refused is not None:
        if not read_again:  # the read a mismatched or unknown username made: a failure costs the same
            users.get_user(ctx, user_uuid=NO_SUCH_USER.user_uuid)
        _count_failure(ctx, username=username, ip=caller.ip, user=user)
        record_failure(ctx, user=user, result=HistoryResult.INVALID_CREDENTIALS, device_id=None, caller=caller,
                       flow=flow)
        raise refused
    assert user is not None  # _secret_refused refuses without a user
    return user, had_failures


def check_credentials(ctx: AppContext, *, username: str, secret: Secret, caller: Caller,
                      expected_user_uuid: str | None = None, flow: str | None = None,
                      reauthenticating: bool = False, defer_upgrade: bool = False) -> tuple[UserRecord, bool]:
    """check_read_credentials for a flow that reads nothing else: one BatchGetItem (and one
    GetItem unless the username is `expected_user_uuid`'s)."""
    reads = credential_reads(ctx.tables, username=username, ip=caller.ip, now=ctx.epoch(),
                             expected_user_uuid=expected_user_uuid, secret=secret)
    facts = read_together(ctx.dynamodb, reads)
    return check_read_credentials(ctx, username=username, secret=secret, caller=caller, facts=facts, flow=flow,
                                  reauthenticating=reauthenticating, defer_upgrade=defer_upgrade)


# --- the password or a passkey asked again of a signed-in user -----------------------------------

def reauthenticate(ctx: AppContext, *, user_uuid: str, username: str, secret: Secret, caller: Caller,
                   flow: str) -> tuple[UserRecord, bool]:
    """The only way a flow asks a signed-in user (`user_uuid`, named `username`) to prove again it is
    them, by their password, one of their passkeys, or a reauth token that a fresh sign-in with one of their
    providers left (accounts.reauth_tokens; used once) (`flow`: email_change, password_change,
    recovery_codes, account_deletion, passkey_add, passkey_remove): under the lockout of their
    username and of the caller's IP, as at login. A failure counts toward the lockout, is audited
    (login_failure with `flow`) and goes into the history; five lock the account's password checks
    everywhere (429 too_many_attempts with Retry-After). Returns the user as read and whether
    recent failures need clearing once the flow has succeeded (clear_failures)."""
    checked, had_failures = check_credentials(ctx, username=username, secret=secret, caller=caller,
                                              expected_user_uuid=user_uuid, flow=flow, reauthenticating=True)
    if checked.user_uuid != user_uuid:  # the name now belongs to someone else (deleted meanwhile)
        raise InvalidCredentials()
    return checked, had_failures
