"""Login rules: password, device certificate, proof of possession, lockout, then the
concurrency policy (SPEC §4-§6). No Flask here."""
from __future__ import annotations

import base64
import binascii
import logging
import unicodedata
import uuid
from concurrent.futures import Future
from dataclasses import replace
from typing import Callable, TypeVar

from common import challenges
from common.audit import audit
from common.caller import Caller
from common.background import background
from common.context import AppContext
from common.crypto import new_token, token_digest
from common.errors import Conflict, ErrorCode, MissingFields, TooManyRequests, Unauthorized
from common.notifier import Message
from common.rate_limits import RateLimitStore
from common.timefmt import iso_from_epoch
from device_manager import concurrency_policy
from device_manager import service as devices
from device_manager.models import DEVICE_STATUS_ACTIVE, DeviceRecord
from login_app.models import LoginRequest, LoginResponse
from common.one_time_tokens import OneTimeTokenStore
from login_app.store import LockoutStore
from registration import service as users
from registration.models import UserRecord
from session_manager import service as sessions
from session_manager.models import OpenedSession, Presence, PresenceEntry
from session_manager.store import ExtraWriteRefused

CHALLENGE_TTL = challenges.CHALLENGE_TTL
CHALLENGE_RATE_WINDOW = 60
CONFIRM_TTL = 120
CHALLENGE_PREFIX = "citylogin-login:"
T = TypeVar("T")
# Who an unknown username reads and writes as, so that it makes the same DynamoDB calls as a known
# one (SPEC §4: unknown users cost the same). Registration issues version-4 UUIDs; this nil UUID is
# none of them, so no user, device or presence item has it and no one can read its history.
NO_SUCH_USER = UserRecord(user_uuid=str(uuid.UUID(int=0)), username="", email="", password_hash="",
                          created_at="")

log = logging.getLogger(__name__)


class InvalidCredentials(Unauthorized):
    code, detail = ErrorCode.INVALID_CREDENTIALS, "The username or password is incorrect."


class InvalidProof(Unauthorized):
    code, detail = ErrorCode.INVALID_PROOF, "The device could not prove it holds its key."


class InvalidConfirmToken(Unauthorized):
    code, detail = ErrorCode.INVALID_CONFIRM_TOKEN, "This confirmation has expired or was already used; log in again."


class ConcurrentLogin(Conflict):
    code, detail = ErrorCode.CONCURRENT_LOGIN, concurrency_policy.IN_USE_MESSAGE


def _now(ctx: AppContext) -> int:
    return int(ctx.now().timestamp())


def lockout_store(ctx: AppContext) -> LockoutStore:
    return LockoutStore(ctx.dynamodb, ctx.tables.rate_limits)


def token_store(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


# --- challenges ------------------------------------------------------------------------

def new_challenge(ctx: AppContext, *, ip: str | None) -> str:
    """A single-use nonce to sign. Each one is an item written, so an IP gets at most
    CITYLOGIN_CHALLENGES_PER_MINUTE_PER_IP of them (429 rate_limited)."""
    now = _now(ctx)
    if RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take(
            f"challenge#ip:{ip or 'unknown'}", limit=ctx.settings.challenges_per_minute_per_ip,
            window_seconds=CHALLENGE_RATE_WINDOW, now=now) is None:
        raise TooManyRequests("Too many login challenges from this address; try again shortly.",
                              retry_after=CHALLENGE_RATE_WINDOW - now % CHALLENGE_RATE_WINDOW,
                              code=ErrorCode.RATE_LIMITED)
    return challenges.issue_challenge(ctx)


def _consume_challenge(ctx: AppContext, challenge: str) -> bool:
    """Use up `challenge`; True if it was issued here, unused and unexpired."""
    return challenges.consume_challenge(ctx, challenge)


def _check_proof(device: DeviceRecord, *, challenge_was_valid: bool, challenge: str, signature: str) -> None:
    standard = signature.replace("-", "+").replace("_", "/")  # accept base64url as well
    try:
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidProof("The signature is not base64.") from None
    if not challenge_was_valid:
        raise InvalidProof("The challenge is unknown, expired or already used.")
    if not devices.device_signed(device, message=(CHALLENGE_PREFIX + challenge).encode(), signature=raw):
        raise InvalidProof()


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
    """A failure after the password was right (e.g. a wrong recovery code): counted toward the
    lockout like a wrong password, and written into the history as `result`."""
    _count_failure(ctx, username=username, ip=caller.ip, user_uuid=user.user_uuid)
    _record_failure(ctx, user=user, result=result, device_id=None, caller=caller)


# --- login -------------------------------------------------------------------------------

def _required_fields(ctx: AppContext, request: LoginRequest, caller: Caller) -> None:
    missing = []
    if not caller.verified_cert and not request.client_cert and not request.client_cert_fp:
        missing.append("client_cert")
    if ctx.settings.require_proof_of_possession and not caller.verified_cert:
        missing += [f for f in ("challenge", "signature") if not getattr(request, f)]
    if missing:
        raise MissingFields(missing)


def _proven_if_expired(ctx: AppContext, request: LoginRequest, device: DeviceRecord) -> DeviceRecord:
    """A certificate past its end (within the renewal grace) logs in only with a signed challenge,
    never on a fingerprint or a proxy's header alone (SPEC §4)."""
    if devices.certificate_expired(ctx, device):
        if not (request.challenge and request.signature):
            raise MissingFields(["challenge", "signature"],
                                "This device's certificate has expired: sign a challenge to log in and renew it.")
        _check_proof(device, challenge_was_valid=_consume_challenge(ctx, request.challenge),
                     challenge=request.challenge, signature=request.signature)
    return device


def _authenticate_device(ctx: AppContext, request: LoginRequest, caller: Caller, user: UserRecord) -> DeviceRecord:
    if caller.verified_cert:  # a trusted TLS proxy verified the client certificate: that is the proof
        device = devices.device_for_certificate(ctx, user_uuid=user.user_uuid, client_cert=caller.verified_cert)
        return _proven_if_expired(ctx, request, device)
    # Consume first: a challenge is single-use whatever the outcome, and every attempt makes this
    # call, whether or not the certificate is the named user's (no username enumeration).
    proof_required = ctx.settings.require_proof_of_possession
    challenge_was_valid = proof_required and _consume_challenge(ctx, request.challenge)
    if request.client_cert:
        device = devices.device_for_certificate(ctx, user_uuid=user.user_uuid, client_cert=request.client_cert)
    else:
        device = devices.device_for_fingerprint(ctx, user_uuid=user.user_uuid, fingerprint=request.client_cert_fp)
    if proof_required:
        _check_proof(device, challenge_was_valid=challenge_was_valid, challenge=request.challenge,
                     signature=request.signature)
        return device
    return _proven_if_expired(ctx, request, device)


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


def _record_failure(ctx: AppContext, *, user: UserRecord | None, result: str, device_id: str | None,
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
        _record_failure(ctx, user=user, result="locked_out", device_id=None, caller=caller)
        raise
    # An unknown user prefetches as NO_SUCH_USER: the same reads beside the hash, never used.
    prefetched = background(ctx).submit(while_hashing, user or NO_SUCH_USER) if while_hashing else None
    if not _password_ok(ctx, user, password):
        _count_failure(ctx, username=username, ip=caller.ip, user_uuid=user and user.user_uuid)
        _record_failure(ctx, user=user, result="invalid_credentials", device_id=None, caller=caller)
        raise InvalidCredentials()
    return user, had_failures, prefetched


def login(ctx: AppContext, *, request: LoginRequest, caller: Caller) -> LoginResponse:
    """Authenticate a device and open its session under the concurrency policy."""
    _required_fields(ctx, request, caller)

    def device_and_presence(user: UserRecord):
        presence = sessions.read_presence(ctx, user_uuid=user.user_uuid)
        return _authenticate_device(ctx, request, caller, user), presence

    user, had_failures, prefetched = check_credentials(
        ctx, username=request.username, password=request.password, caller=caller,
        while_hashing=device_and_presence)
    try:
        device, presence = prefetched.result()
    except (devices.CertificateMismatch, InvalidProof, devices.DeviceRevoked, devices.CertificateExpired) as failure:
        _count_failure(ctx, username=request.username, ip=caller.ip, user_uuid=user.user_uuid)
        _record_failure(ctx, user=user, result=failure.code.value, device_id=None, caller=caller)
        raise
    if had_failures:
        clear_failures(ctx, username=request.username)
    return _open(ctx, user=user, device=device, caller=caller, force=request.force, presence=presence)


def _open(ctx: AppContext, *, user: UserRecord, device: DeviceRecord, caller: Caller, force: bool,
          presence: Presence | None = None) -> LoginResponse:
    settings = ctx.settings
    if user.locked:  # only now: the password was right, so this tells nothing to a guesser
        raise sessions.AccountLocked()
    # An operator's per-user limit replaces the configured total (SPEC §5).
    limit = settings.max_concurrent_devices if user.max_concurrent_devices is None else user.max_concurrent_devices

    def choose(others: list[PresenceEntry]) -> list[PresenceEntry]:
        return concurrency_policy.choose_evictions(
            policy=settings.concurrency_policy, limit=limit,
            order=settings.evict, others=others, force=force)

    not_locked = users.not_locked_write(ctx, user_uuid=user.user_uuid)  # a lock that commits meanwhile wins
    extra_writes = [devices.login_recorded_write(ctx, device), not_locked]

    try:
        opened = sessions.open_session(
            ctx, user_uuid=user.user_uuid, device_id=device.device_id, device_name=device.device_name,
            ip=caller.ip, user_agent=caller.user_agent, choose_evictions=choose,
            extra_writes=extra_writes, presence=presence)
    except concurrency_policy.ConfirmationRequired as required:
        _record_failure(ctx, user=user, result="rejected_concurrent", device_id=device.device_id, caller=caller)
        raise ConcurrentLogin(active_devices=[_active_device(e) for e in required.active],
                              confirm_token=_confirm_token(ctx, user=user, device=device, caller=caller)) from None
    except concurrency_policy.ConcurrentLoginRejected:
        _record_failure(ctx, user=user, result="rejected_concurrent", device_id=device.device_id, caller=caller)
        raise
    except ExtraWriteRefused as refused:  # a lock or an unbind that committed while deciding
        raise (sessions.AccountLocked() if extra_writes[refused.index] is not_locked
               else devices.DeviceRevoked()) from None
    _audit_login(user=user, device=device, caller=caller, opened=opened)
    _notify(ctx, user=user, device=device, opened=opened)
    return _response(ctx, opened, device)


def _audit_login(*, user: UserRecord, device: DeviceRecord, caller: Caller, opened: OpenedSession) -> None:
    audit("login_success", user_uuid=user.user_uuid, device_id=device.device_id,
          session_id=opened.session.session_id, ip=caller.ip)
    for evicted in opened.evicted:
        audit("session_evicted", user_uuid=user.user_uuid, device_id=evicted.device_id,
              session_id=evicted.session_id, by_device=device.device_id, reason="displaced")


def _active_device(entry: PresenceEntry) -> dict:
    return {"device_id": entry.device_id, "device_name": entry.device_name,
            "login_at": iso_from_epoch(entry.login_epoch), "last_seen_at": iso_from_epoch(entry.last_seen_epoch),
            "ip": entry.ip}


def _response(ctx: AppContext, opened: OpenedSession, device: DeviceRecord) -> LoginResponse:
    session = opened.session
    return LoginResponse(
        cert_expires_at=device.cert_expires_at, renew_certificate=devices.renewal_due(ctx, device),
        access_token=opened.tokens.access_token, refresh_token=opened.tokens.refresh_token,
        expires_in=opened.tokens.expires_in, session_id=session.session_id, device_id=session.device_id,
        user_uuid=session.user_uuid,
        evicted=[{"device_id": e.device_id, "device_name": e.device_name} for e in opened.evicted])


def _notify(ctx: AppContext, *, user: UserRecord, device: DeviceRecord, opened: OpenedSession) -> None:
    if device.last_login_at is None:
        ctx.notifier.notify(Message(event="new_sign_in", user_uuid=user.user_uuid, email=user.email,
                                    subject="New sign-in to your account",
                                    body=f"Your device {device.device_name} signed in for the first time."))
    for evicted in opened.evicted:
        ctx.notifier.notify(Message(event="forced_logout", user_uuid=user.user_uuid, email=user.email,
                                    subject="A device was logged out",
                                    body=f"{evicted.device_name} was logged out because {device.device_name} signed in."))


# --- confirm (SPEC §5: "this account is in use elsewhere - continue?") ------------------

def _confirm_token(ctx: AppContext, *, user: UserRecord, device: DeviceRecord, caller: Caller) -> str:
    token = new_token(32)
    token_store(ctx).create(digest=token_digest(token, purpose="confirm"), kind="confirm",
                            expires_epoch=_now(ctx) + CONFIRM_TTL,
                            data={"user_uuid": user.user_uuid, "device_id": device.device_id,
                                  "fingerprint": device.fingerprint,
                                  "ip": caller.ip, "user_agent": caller.user_agent})
    return token


def confirm(ctx: AppContext, *, confirm_token: str, caller: Caller) -> LoginResponse:
    """Finish a login that was answered 409 concurrent_login, displacing the other device."""
    pending = token_store(ctx).consume(digest=token_digest(confirm_token, purpose="confirm"), kind="confirm",
                                       now=_now(ctx))
    if pending is None:
        raise InvalidConfirmToken()
    user = users.get_user(ctx, user_uuid=pending["user_uuid"])
    device = devices.device_store(ctx).get(user_uuid=pending["user_uuid"], device_id=pending["device_id"])
    if user is None or device is None or device.status != DEVICE_STATUS_ACTIVE:
        raise devices.DeviceRevoked()
    # The certificate proven at login must still be the device's (not renewed meanwhile).
    devices.recheck_device(ctx, device, fingerprint=pending.get("fingerprint", device.fingerprint))
    return _open(ctx, user=user, device=device, caller=Caller(ip=pending.get("ip") or caller.ip,
                                                              user_agent=pending.get("user_agent") or caller.user_agent),
                 force=True)
