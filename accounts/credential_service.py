"""Credentials: the username and password under the lockout (SPEC §6), for every flow that asks
for the password (login, pairing, recovery, password change, deletion). Failures count toward
the lockout and go into the login history. No Flask here."""
from __future__ import annotations

import logging
import unicodedata
import uuid
from concurrent.futures import Future
from dataclasses import replace
from typing import Callable, TypeVar

from accounts import user_service as users
from accounts.lockout_store import LockoutStore
from accounts.models import UserRecord
from common.audit import audit
from common.background import background
from common.caller import Caller
from common.context import AppContext
from common.errors import ErrorCode, TooManyRequests, Unauthorized
from session_manager import service as sessions

T = TypeVar("T")
# Who an unknown username reads and writes as, so that it makes the same DynamoDB calls as a known
# one (SPEC §4: unknown users cost the same). Registration issues version-4 UUIDs; this nil UUID is
# none of them, so no user, device or presence item has it and no one can read its history.
NO_SUCH_USER = UserRecord(user_uuid=str(uuid.UUID(int=0)), username="", email="", password_hash="",
                          created_at="")

log = logging.getLogger(__name__)


class InvalidCredentials(Unauthorized):
    code, detail = ErrorCode.INVALID_CREDENTIALS, "The username or password is incorrect."


def _now(ctx: AppContext) -> int:
    return int(ctx.now().timestamp())


def lockout_store(ctx: AppContext) -> LockoutStore:
    return LockoutStore(ctx.dynamodb, ctx.tables.rate_limits)


# --- lockout (SPEC §6) -----------------------------------------------------------------

def _subjects(username: str, ip: str | None) -> tuple[str, str]:
    return "user:" + unicodedata.normalize("NFKC", username).casefold(), f"ip:{ip or 'unknown'}"


def _check_lockout(ctx: AppContext, *, username: str, ip: str | None) -> bool:
    """Raise 429 while locked; True if the username has recent failures to clear on success."""
    user_subject, ip_subject = _subjects(username, ip)
    store, now = lockout_store(ctx), _now(ctx)
    items = store.read([store.lock_key(user_subject), store.lock_key(ip_subject),
                        store.failure_key(user_subject)])
    locked_until = max((i.get("locked_until", 0) for k, i in items.items() if k.startswith("lock#")), default=0)
    if locked_until > now:
        raise TooManyRequests("Too many failed logins; try again later.", retry_after=locked_until - now)
    return bool(items)


def _count_failure(ctx: AppContext, *, username: str, ip: str | None, user_uuid: str | None = None) -> None:
    store, now = lockout_store(ctx), _now(ctx)
    user_subject, ip_subject = _subjects(username, ip)
    if store.add_failure(user_subject, now=now) >= ctx.settings.login_max_failures:
        audit("lockout", scope="username", user_uuid=user_uuid, ip=ip,
              locked_seconds=store.lock(user_subject, now=now))
    if store.add_failure(ip_subject, now=now) >= ctx.settings.login_max_failures_per_ip:
        audit("lockout", scope="ip", ip=ip, locked_seconds=store.lock(ip_subject, now=now))


def clear_failures(ctx: AppContext, *, username: str) -> None:
    store = lockout_store(ctx)
    user_subject, _ = _subjects(username, None)
    store.clear([store.lock_key(user_subject), store.failure_key(user_subject)])


def count_failed_attempt(ctx: AppContext, *, username: str, user: UserRecord, caller: Caller, result: str) -> None:
    """A failure after the password was right (e.g. a wrong recovery code or device proof):
    counted toward the lockout like a wrong password, and written into the history as `result`."""
    _count_failure(ctx, username=username, ip=caller.ip, user_uuid=user.user_uuid)
    record_failure(ctx, user=user, result=result, device_id=None, caller=caller)


# --- the password ------------------------------------------------------------------------

def _password_ok(ctx: AppContext, user: UserRecord | None, password: str) -> bool:
    if user is None:
        ctx.passwords.verify_dummy(password)  # unknown users cost the same time
        return False
    if not ctx.passwords.verify(user.password_hash, password):
        return False
    if ctx.passwords.needs_rehash(user.password_hash):
        users.update_password_hash(ctx, user_uuid=user.user_uuid, password_hash=ctx.passwords.hash(password))
    return True


def _find_user(ctx: AppContext, *, username: str) -> UserRecord | None:
    """The user named `username`; an unknown name reads the users table as well (for NO_SUCH_USER),
    as a known one does, so the two make the same calls."""
    user = users.find_user(ctx, username=username)
    if user is None:
        users.get_user(ctx, user_uuid=NO_SUCH_USER.user_uuid)
    return user


def record_failure(ctx: AppContext, *, user: UserRecord | None, result: str, device_id: str | None,
                   caller: Caller) -> None:
    """Write the history row off the response path; an unknown user's is the same write, made so
    that it stores nothing, so known and unknown usernames cost the same. A row that cannot be
    written is logged."""
    at = ctx.now()
    audit("login_failure", user_uuid=user and user.user_uuid, device_id=device_id, ip=caller.ip, reason=result)
    user_uuid = (user or NO_SUCH_USER).user_uuid
    written = background(ctx).submit(
        sessions.record_attempt, replace(ctx, clock=lambda: at),  # the row keeps the attempt's time
        user_uuid=user_uuid, result=result, device_id=device_id, ip=caller.ip, user_agent=caller.user_agent,
        keep=user is not None)
    written.add_done_callback(lambda done: _log_unwritten(done, user_uuid=user_uuid, result=result))


def _log_unwritten(done: Future, *, user_uuid: str, result: str) -> None:
    if done.exception() is not None:
        log.error("login history row not written (user %s, result %s)", user_uuid, result,
                  exc_info=done.exception())


def check_credentials(ctx: AppContext, *, username: str, password: str, caller: Caller,
                      while_hashing: Callable[[UserRecord], T] | None = None) -> tuple[UserRecord, bool, Future | None]:
    """The user if the password is right and neither the username nor the IP is locked out; whether
    recent failures need clearing; and `while_hashing(user)` started beside the Argon2 check, whose
    result is only trusted once the password is (its reads overlap the hash, SPEC §6 order kept).
    Failures count toward the lockout and go into the history."""
    lockout = background(ctx).submit(_check_lockout, ctx, username=username, ip=caller.ip)
    user = _find_user(ctx, username=username)
    try:
        had_failures = lockout.result()
    except TooManyRequests:
        record_failure(ctx, user=user, result="locked_out", device_id=None, caller=caller)
        raise
    # An unknown user prefetches as NO_SUCH_USER: the same reads beside the hash, never used.
    prefetched = background(ctx).submit(while_hashing, user or NO_SUCH_USER) if while_hashing else None
    if not _password_ok(ctx, user, password):
        _count_failure(ctx, username=username, ip=caller.ip, user_uuid=user and user.user_uuid)
        record_failure(ctx, user=user, result="invalid_credentials", device_id=None, caller=caller)
        raise InvalidCredentials()
    return user, had_failures, prefetched
