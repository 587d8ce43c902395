"""Login rules: password (under the lockout, by accounts), device certificate, proof of
possession, then the concurrency policy (SPEC §4-§6). No Flask here."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from accounts import credential_service as credentials
from accounts import passkey_service as passkeys
from accounts import user_service as users
from accounts.models import Secret, UserRecord
from common.config import Settings
from common.errors import (ApiError, ErrorCode, MissingFields, ServiceUnavailable, TooManyRequests,
                           Unauthorized)
from common.crypto.dpop import Proof
from common.crypto.tokens import digests_equal, new_token, token_digest
from common.database.batch_read import read_together
from common.database.guarded_write import GuardedWrite
from common.database.one_time_tokens import OneTimeTokenStore
from devices import challenges, concurrency_policy
from devices import service as devices
from devices.models import DEVICE_STATUS_ACTIVE, DeviceRecord
from federation import tickets
from flows import in_use
from flows import not_me as not_me_flow
from flows.models import EvictedDevice, LoginRequest, LoginResponse
from common.mail.notifier import Notifier, Queued, device_class_name, device_facts, localized_message
from sessions import binding
from sessions import service as sessions
from sessions.binding import ProofOffer
from sessions.models import HistoryResult, OpenedSession, Presence, PresenceEntry, PresenceMoved
from common.web.audit import AuditEvent, audit
from common.web.background import background
from common.web.caller import Caller
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore, limit_subject

if TYPE_CHECKING:  # the stubs package is a test (type-check) dependency only
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

CHALLENGE_TTL = challenges.CHALLENGE_TTL
CHALLENGE_RATE_WINDOW = 60
CONFIRM_TTL = 120
DEVICE_READS = 5  # a login reads a device relabelled under it at most this often
OPEN_ATTEMPTS = 60  # reads of the presence before a login gives up (503): logins racing for one account
# Names of the login's own items in its batch read (beside accounts' credential_reads).
PRESENCE, DEVICE, CHALLENGE, USER = "login.presence", "login.device", "login.challenge", "login.user"
# The username of a passkey login whose account is unknown: no account has it (usernames are 3-32
# characters), so it fails like an unknown username, under a lockout of its own.
NO_USERNAME = "-"


class InvalidConfirmToken(Unauthorized):
    code, detail = ErrorCode.INVALID_CONFIRM_TOKEN, "This confirmation has expired or was already used; log in again."


def token_store(ctx: AppContext) -> OneTimeTokenStore:
    return OneTimeTokenStore(ctx.dynamodb, ctx.tables.one_time_tokens)


# --- challenges ------------------------------------------------------------------------

def _challenge_counter(ctx: AppContext, ip: str | None) -> TransactWriteItemTypeDef:
    return RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take_item(
        f"challenge#ip:{limit_subject(ip)}", limit=ctx.settings.challenges_per_minute_per_ip,
        window_seconds=CHALLENGE_RATE_WINDOW, now=ctx.epoch())


def _too_many_challenges(now: int) -> TooManyRequests:
    return TooManyRequests("Too many login challenges from this address; try again shortly.",
                           retry_after=CHALLENGE_RATE_WINDOW - now % CHALLENGE_RATE_WINDOW,
                           code=ErrorCode.RATE_LIMITED)


def new_challenge(ctx: AppContext, *, ip: str | None) -> str:
    """A single-use nonce to sign. Each one is an item written, so an IP gets at most
    CITYLOGIN_CHALLENGES_PER_MINUTE_PER_IP of them (429 rate_limited): the count and the
    challenge are one transaction."""
    challenge = challenges.issue_challenge(ctx, counter=_challenge_counter(ctx, ip))
    if challenge is None:
        raise _too_many_challenges(ctx.epoch())
    return challenge


def passkey_options(ctx: AppContext, *, username: str | None, ip: str | None) -> str:
    """A passkey's request options (JSON) with a single-use challenge, counted with the device
    challenges of the IP (429 rate_limited beyond CITYLOGIN_CHALLENGES_PER_MINUTE_PER_IP)."""
    options = passkeys.request_options(ctx, username=username, counter=_challenge_counter(ctx, ip))
    if options is None:
        raise _too_many_challenges(ctx.epoch())
    return options


# --- login -------------------------------------------------------------------------------

def _required_fields(settings: Settings, request: LoginRequest, caller: Caller) -> Secret:
    """The password or passkey, once every field the login needs is there (else 400 missing_fields)."""
    secret = request.secret()
    missing = []
    if not caller.verified_cert and not request.client_cert and not request.client_cert_fp:
        missing.append("client_cert")
    if settings.require_proof_of_possession and not caller.verified_cert:
        missing += [f for f in ("challenge", "signature") if not getattr(request, f)]
    if missing:
        raise MissingFields(missing)
    return secret


def login(ctx: AppContext, *, request: LoginRequest, caller: Caller, offer: ProofOffer | None = None) -> LoginResponse:
    """Authenticate a device and open its session under the concurrency policy: one batch read
    before the password hash (the username's owner, the lockout, and the user, presence, device
    and challenge the presented certificate points to) and one transaction after it. With a DPoP
    proof in `offer` (by the device's certified key) the session is bound to that key (SPEC §12).
    A passkey's assertion may stand in for the password (SPEC §13), never for the device's proof."""
    secret = _required_fields(ctx.settings, request, caller)
    # Before the try: a proof refused (a nonce asked for) leaves the challenge for the retry.
    dpop = binding_proof(ctx, offer)
    with challenge_spent_on_refusal(ctx, request.challenge):
        checked = _checked(ctx, request, caller, secret=secret)
        return finish(ctx, request, caller, checked=checked, dpop=dpop,
                      factor=FirstFactor(amr=sessions.PASSKEY_AMR if request.passkey else sessions.PASSWORD_AMR))


def check_password_login(ctx: AppContext, *, request: LoginRequest, caller: Caller) -> CheckedLogin:
    """A login's checks without its seat (the password or passkey under the lockout, the device's certificate
    and proof), for a flow that does more before it signs the device in (flows.federated_link); a refusal uses
    the challenge up."""
    secret = _required_fields(ctx.settings, request, caller)
    with challenge_spent_on_refusal(ctx, request.challenge):
        return _checked(ctx, request, caller, secret=secret)


@contextmanager
def challenge_spent_on_refusal(ctx: AppContext, challenge: str | None) -> Iterator[None]:
    """A refused sign-in uses its challenge up all the same: single-use whatever the outcome."""
    try:
        yield
    except ApiError:
        if challenge:  # a used one is already gone
            background(ctx).submit(challenges.consume_challenge, ctx, challenge)
        raise


@dataclass(frozen=True)
class CheckedLogin:
    """A login whose first factor and device were proven: what its seat needs."""

    username: str
    user: UserRecord
    had_failures: bool
    device: DeviceRecord
    presence: Presence
    proof: GuardedWrite | None
    upgrade: credentials.PasswordUpgrade | None = None  # an imported hash to replace in the seat's transaction


def _checked(ctx: AppContext, request: LoginRequest, caller: Caller, *, secret: Secret) -> CheckedLogin:
    certificate = caller.verified_cert or request.client_cert
    if certificate:
        return _login_with_certificate(ctx, request, caller, secret=secret, certificate=certificate)
    if request.client_cert_fp:
        return _login_with_fingerprint(ctx, request, caller, secret=secret, fingerprint=request.client_cert_fp)
    raise MissingFields(["client_cert"])  # _required_fields asked for it already


def binding_proof(ctx: AppContext, offer: ProofOffer | None) -> Proof | None:
    """The checked proof a login or confirm binds its session with; None for a bearer session,
    which CITYLOGIN_DPOP=required refuses (400 dpop_required)."""
    if offer is None or offer.proof is None:
        if ctx.settings.dpop == "required":
            raise binding.DpopRequired()
        return None
    return binding.checked_proof(ctx.refresh_secrets, ctx.epoch(), offer)


def _username(ctx: AppContext, request: LoginRequest, account: str | None) -> str:
    """The login's username: as sent, or for a passkey sent without one the name of `account` (the
    account the certificate or the passkey's userHandle names; its passkey is the check)."""
    if request.username is not None:
        return request.username
    user = users.get_user(ctx, user_uuid=account) if account else None
    return user.username if user and user.username else NO_USERNAME


def _login_with_certificate(ctx: AppContext, request: LoginRequest, caller: Caller, *, secret: Secret,
                            certificate: str) -> CheckedLogin:
    # What the certificate claims only chooses what to read; device_for_presented checks it
    # against the username's owner and the device record before anything is trusted.
    presented = devices.presented_certificate(certificate)
    username = _username(ctx, request, presented.user_uuid)
    reads = {**credentials.credential_reads(ctx.tables, username=username, ip=caller.ip, now=ctx.epoch(),
                                            expected_user_uuid=presented.user_uuid, secret=secret),
             PRESENCE: sessions.presence_read(ctx.tables, user_uuid=presented.user_uuid),
             DEVICE: devices.device_read(ctx.tables, user_uuid=presented.user_uuid, device_id=presented.device_id)}
    if request.challenge:
        reads[CHALLENGE] = challenges.challenge_read(ctx.tables, request.challenge, now=ctx.epoch())
    facts = read_together(ctx.dynamodb, reads)
    user, had_failures = credentials.check_read_credentials(ctx, username=username, secret=secret, caller=caller,
                                                            facts=facts, defer_upgrade=True)
    _refuse_deleting(user)
    with _counted_as_failure(ctx, username, caller, user):
        device = devices.device_for_presented(ctx, presented, user_uuid=user.user_uuid, record=facts[DEVICE])
        proof = devices.login_proof(ctx, device, certificate_verified=bool(caller.verified_cert),
                                    challenge=request.challenge, signature=request.signature,
                                    challenge_usable=facts.get(CHALLENGE, False))
    return CheckedLogin(username=username, user=user, had_failures=had_failures, device=device,
                        presence=facts[PRESENCE], proof=proof,
                        upgrade=credentials.password_upgrade(ctx.passwords, user=user, secret=secret))


def _login_with_fingerprint(ctx: AppContext, request: LoginRequest, caller: Caller, *, secret: Secret,
                            fingerprint: str) -> CheckedLogin:
    """Legacy clients that send only the certificate's fingerprint: the device is found by listing
    the user's devices, so this path makes more calls than one that presents the certificate."""
    handle = request.passkey.response.userHandle if request.passkey else None
    username = _username(ctx, request, passkeys.user_of_handle(handle))
    user, had_failures = credentials.check_credentials(ctx, username=username, secret=secret, caller=caller,
                                                       defer_upgrade=True)
    _refuse_deleting(user)
    with _counted_as_failure(ctx, username, caller, user):
        device = devices.device_for_fingerprint(ctx, user_uuid=user.user_uuid, fingerprint=fingerprint)
        now = ctx.epoch()
        usable = bool(request.challenge and read_together(
            ctx.dynamodb, {CHALLENGE: challenges.challenge_read(ctx.tables, request.challenge, now=now)})[CHALLENGE])
        proof = devices.login_proof(ctx, device, certificate_verified=bool(caller.verified_cert),
                                    challenge=request.challenge, signature=request.signature,
                                    challenge_usable=usable)
    return CheckedLogin(username=username, user=user, had_failures=had_failures, device=device,
                        presence=sessions.read_presence(ctx, user_uuid=user.user_uuid), proof=proof,
                        upgrade=credentials.password_upgrade(ctx.passwords, user=user, secret=secret))


def _refuse_deleting(user: UserRecord) -> None:
    """An account being deleted: 410 right after the password (its devices may be gone already, and
    what they lack is not the person's failure to count toward the lockout)."""
    if user.deleting:
        raise sessions.AccountDeleted()


@contextmanager
def _counted_as_failure(ctx: AppContext, username: str, caller: Caller, user: UserRecord) -> Iterator[None]:
    """A wrong certificate or proof after the right password counts toward the lockout too."""
    try:
        yield
    except (devices.CertificateMismatch, devices.InvalidProof, devices.DeviceRevoked,
            devices.CertificateExpired) as failure:
        credentials.count_failed_attempt(ctx, username=username, user=user, caller=caller,
                                         result=HistoryResult(failure.code.value))
        raise


def finish(ctx: AppContext, request: LoginRequest, caller: Caller, *, checked: CheckedLogin, dpop: Proof | None,
           factor: FirstFactor) -> LoginResponse:
    """The seat of a login whose checks passed (`checked`), the username's failures cleared."""
    if checked.had_failures:  # off the response path: the lockout only needs them gone eventually
        background(ctx).submit(credentials.clear_failures, ctx, username=checked.username)
    return open_session(ctx, user=checked.user, device=checked.device, caller=caller,
                        answer=in_use.Answer(force=request.force, displace=tuple(request.displace)),
                        presence=checked.presence, proof=checked.proof, dpop=dpop, factor=factor,
                        upgrade=checked.upgrade)


def _bound_key(device: DeviceRecord, dpop: Proof | None) -> str | None:
    """The thumbprint the session is bound to: the proof's key, which must be the one the device's
    certificate certifies (else 401 invalid_dpop_proof); None without a proof."""
    if dpop is None:
        return None
    certified = devices.certified_thumbprint(device)
    if certified is None or not digests_equal(dpop.jkt, certified):
        raise binding.InvalidDpopProof(reason="the proof is not signed by the key this device's certificate certifies")
    return dpop.jkt


@dataclass(frozen=True)
class FirstFactor:
    """What stood in the password's place at a sign-in, as its session and history keep it: `amr` (RFC 8176:
    the device key with the password, a passkey, or an upstream provider's answer), `provider` (that provider's
    display name, for the history: "signed in with Google"), and `spend`, what the factor used up (a
    provider's ticket) for the seat's transaction and, after a 409, for the confirmation's."""

    amr: tuple[str, ...] = sessions.PASSWORD_AMR
    provider: str | None = None
    spend: tickets.HeldTicket | None = None


def open_session(ctx: AppContext, *, user: UserRecord, device: DeviceRecord, caller: Caller, answer: in_use.Answer,
                 presence: Presence | None = None, proof: GuardedWrite | None = None,
                 dpop: Proof | None = None, factor: FirstFactor = FirstFactor(),
                 upgrade: credentials.PasswordUpgrade | None = None) -> LoginResponse:
    """The seat, once the first factor and the device are proven (a login, a confirm, a provider's answer):
    under the device limit (SPEC §5; the 409 in-use question, its confirm token), with the "Wasn't you?" mail
    of a device's first sign-in, the history row, and the mails of the devices it displaces. An imported
    hash the password matched (`upgrade`, SPEC §17) is replaced in the seat's own transaction."""
    _refuse_deleting(user)  # confirm comes here without a password
    if user.locked:  # only now: the password was right, so this tells nothing to a guesser
        raise _refused_while_locked(ctx, user=user, device=device, caller=caller)
    jkt = _bound_key(device, dpop)
    # A device's first sign-in is reported with a "Wasn't you?" link, stored with the session.
    first_sign_in = device.last_login_at is None
    not_me = not_me_flow.new_link(ctx, user_uuid=user.user_uuid, device_id=device.device_id) if first_sign_in else None
    # A lock, a deletion or an unbind that commits while deciding refuses the write: AccountLocked,
    # AccountDeleted, DeviceRevoked.
    # The proof is spent in the login's transaction: of parallel logins with one proof, one commits.
    # Its mail goes into the outbox in the same transaction as the session and the link.
    notice = _new_sign_in_notice(ctx.notifier, user=user, device=device, caller=caller, not_me=not_me,
                                 at=ctx.now()) if not_me else None
    writes = [credentials.seat_write(ctx, user_uuid=user.user_uuid, upgrade=upgrade),
              *([not_me.write, notice.write] if not_me and notice else []),
              *([proof] if proof else []), *([binding.proof_spending(ctx, dpop)] if dpop else []),
              *([answer.spend] if answer.spend else []),
              *([tickets.held_spend_write(ctx.tables, factor.spend, now=ctx.epoch())] if factor.spend else [])]
    try:
        opened = _seat(ctx, user=user, device=device, caller=caller, answer=answer, presence=presence,
                       writes=writes, jkt=jkt, factor=factor)
    except concurrency_policy.ConfirmationRequired as required:
        credentials.upgrade_alone(ctx, upgrade)  # the old password worked once: no seat, yet never again
        # Written now, not off the response path: a confirm marks this row continued (the person said yes).
        question = credentials.record_question(ctx, user=user, device_id=device.device_id, caller=caller)
        raise in_use.InUse(required, action=in_use.Action(), confirm_token=_confirm_token(
            ctx, user=user, device=device, caller=caller, jkt=jkt, factor=factor, question=question,
            listed=[e.session_id for e in required.active])) from None
    except concurrency_policy.ConcurrentLoginRejected:
        credentials.upgrade_alone(ctx, upgrade)
        credentials.record_failure(ctx, user=user, result=HistoryResult.REJECTED_CONCURRENT,
                                   device_id=device.device_id, caller=caller)
        raise
    except sessions.AccountLocked:  # locked by an operator while this login decided
        raise _refused_while_locked(ctx, user=user, device=device, caller=caller) from None
    _audit_login(user=user, device=device, caller=caller, opened=opened)
    if notice:
        ctx.notifier.send_queued(notice)
    _notify_evicted(ctx.notifier, user=user, device=device, caller=caller, opened=opened, at=ctx.now())
    return _response(ctx.settings, opened, device, now=ctx.now())


def _refused_while_locked(ctx: AppContext, *, user: UserRecord, device: DeviceRecord,
                          caller: Caller) -> sessions.AccountLocked:
    """403 account_locked for a login of an account an operator locked, written into its history as
    locked_out. Only a login with the right password, certificate and proof comes here, so the row
    costs a stranger more than a wrong password's row does."""
    credentials.record_failure(ctx, user=user, result=HistoryResult.LOCKED_OUT, device_id=device.device_id,
                               caller=caller)
    return sessions.AccountLocked()


def _seat(ctx: AppContext, *, user: UserRecord, device: DeviceRecord, caller: Caller, answer: in_use.Answer,
          presence: Presence | None, writes: list[GuardedWrite], jkt: str | None,
          factor: FirstFactor) -> OpenedSession:
    """The concurrency decision (SPEC §5), in one place: read the user's live devices, decide
    under the policy whom this login displaces, and write it all in one transaction that holds
    only if nobody changed the presence meanwhile; else again, from a fresh read. A device
    relabelled meanwhile is read again, so its session counts under its current class."""
    moved: PresenceMoved | None = None
    device_reads = 1
    for _ in range(OPEN_ATTEMPTS):
        seats = sessions.read_seats(ctx, user_uuid=user.user_uuid, device_id=device.device_id, presence=presence,
                                    after=moved)
        with in_use.choices_checked(ctx, seats):
            evicted = _evictions(ctx.settings, user=user, device=device, others=seats.others, answer=answer)
        try:
            taken = sessions.take_seat(ctx, seats, evicted=evicted, device_name=device.device_name,
                                       device_class=device.device_class, ip=caller.ip, user_agent=caller.user_agent,
                                       extra_writes=[devices.login_recorded_write(ctx, device), *writes], jkt=jkt,
                                       amr=factor.amr, provider=factor.provider)
        except devices.DeviceChangedMeanwhile:
            if device_reads == DEVICE_READS:
                raise ServiceUnavailable("This device keeps changing; try again.") from None
            device, device_reads, moved, presence = devices.reread_device(ctx, device), device_reads + 1, None, None
            continue
        if isinstance(taken, OpenedSession):
            return taken
        moved, presence = taken, None
    raise ServiceUnavailable("Too many simultaneous logins for this account; try again.")


def _evictions(settings: Settings, *, user: UserRecord, device: DeviceRecord, others: list[PresenceEntry],
               answer: in_use.Answer) -> list[PresenceEntry]:
    """The other devices' live sessions this login displaces, or ConfirmationRequired /
    ConcurrentLoginRejected. An operator's per-user limit replaces the configured total."""
    limit = settings.max_concurrent_devices if user.max_concurrent_devices is None else user.max_concurrent_devices
    return concurrency_policy.choose_evictions(
        policy=settings.concurrency_policy, limit=limit, order=settings.evict, others=others, force=answer.force,
        device_class=device.device_class, class_limits=settings.class_limits, displace=answer.displace)


def _audit_login(*, user: UserRecord, device: DeviceRecord, caller: Caller, opened: OpenedSession) -> None:
    audit(AuditEvent.LOGIN_SUCCESS, user_uuid=user.user_uuid, device_id=device.device_id,
          session_id=opened.session.session_id, ip=caller.ip, bound=bool(opened.session.jkt))
    for evicted in opened.evicted:
        audit(AuditEvent.SESSION_EVICTED, user_uuid=user.user_uuid, device_id=evicted.device_id,
              session_id=evicted.session_id, by_device=device.device_id, reason="displaced")


def _response(settings: Settings, opened: OpenedSession, device: DeviceRecord, *, now: datetime) -> LoginResponse:
    session = opened.session
    return LoginResponse(
        cert_expires_at=device.cert_expires_at, renew_certificate=devices.renewal_due(settings, device, now=now),
        access_token=opened.tokens.access_token, refresh_token=opened.tokens.refresh_token,
        token_type=opened.tokens.token_type, expires_in=opened.tokens.expires_in, session_id=session.session_id,
        device_id=session.device_id, user_uuid=session.user_uuid,
        evicted=[EvictedDevice(device_id=e.device_id, device_name=e.device_name) for e in opened.evicted])


def _new_sign_in_notice(notifier: Notifier, *, user: UserRecord, device: DeviceRecord, caller: Caller,
                        not_me: not_me_flow.NotMeLink, at: datetime) -> Queued:
    """A device's first sign-in (`at`), in the account's locale, with its "Wasn't you?" link: which
    device, its class, when and from where."""
    return notifier.queued(localized_message(
        "new_sign_in", user_uuid=user.user_uuid, email=user.email, locale=user.locale, device=device.device_name,
        facts=_facts(user, device, caller, at=at), link=not_me.url))


def _facts(user: UserRecord, device: DeviceRecord, caller: Caller, *, at: datetime) -> str:
    return device_facts(user.locale, device_name=device.device_name, device_class=device.device_class,
                        at=at, ip=caller.ip)


def _notify_evicted(notifier: Notifier, *, user: UserRecord, device: DeviceRecord, caller: Caller,
                    opened: OpenedSession, at: datetime) -> None:
    """In the account's locale: each device the sign-in (`at`) logged out, saying which device signed in."""
    if not opened.evicted:
        return
    facts = _facts(user, device, caller, at=at)
    for evicted in opened.evicted:
        notifier.notify(localized_message(
            "forced_logout", texts="forced_logout_displaced", user_uuid=user.user_uuid, email=user.email,
            locale=user.locale, evicted=evicted.device_name,
            evicted_class=device_class_name(evicted.device_class, user.locale), device=device.device_name, facts=facts))


# --- confirm (SPEC §5: "this account is in use elsewhere - continue?") ------------------

def _confirm_token(ctx: AppContext, *, user: UserRecord, device: DeviceRecord, caller: Caller,
                   jkt: str | None, factor: FirstFactor, question: str | None, listed: list[str]) -> str:
    """The token of the 409's question; `question` is the key of its history row (None: not written);
    `listed` the sessions it offered to sign out, among which a choice must be."""
    token = new_token(32)
    token_store(ctx).create(digest=token_digest(token, purpose="confirm"), kind="confirm",
                            expires_epoch=ctx.epoch() + CONFIRM_TTL,
                            data={"user_uuid": user.user_uuid, "device_id": device.device_id,
                                  "fingerprint": device.fingerprint, "jkt": jkt, "amr": list(factor.amr),
                                  "ip": caller.ip, "user_agent": caller.user_agent, "question": question,
                                  "listed": listed, "provider": factor.provider,
                                  "ticket": factor.spend.data() if factor.spend else None})
    return token


def confirm(ctx: AppContext, *, confirm_token: str, caller: Caller, offer: ProofOffer | None = None,
            displace: tuple[str, ...] = ()) -> LoginResponse:
    """Finish a login that was answered 409 concurrent_login, displacing the other device (the default
    ones, or those in `displace`). A login that was bound is confirmed only with a proof by the same key (a
    copied confirm token is worthless); any confirm may bind with a proof by the device's key (SPEC §12).
    The token is used up by the transaction that opens the session: a refused proof or choice leaves the
    person's confirmation usable, and of two confirms with one token one commits."""
    dpop = binding_proof(ctx, offer)
    digest, now = token_digest(confirm_token, purpose="confirm"), ctx.epoch()
    pending = token_store(ctx).get(digest=digest, kind="confirm", now=now)
    if pending is None:
        raise InvalidConfirmToken()
    in_use.check_listed(displace, pending.get("listed"))
    spend = GuardedWrite(item=token_store(ctx).consume_item(digest=digest, kind="confirm", now=now),
                         refusal=InvalidConfirmToken)
    if pending.get("jkt") and not (dpop and digests_equal(dpop.jkt, pending["jkt"])):
        raise binding.InvalidDpopProof(reason="this login was bound: confirm it with a proof by the same key")
    user_uuid = pending["user_uuid"]
    facts = read_together(ctx.dynamodb, {
        USER: users.user_read(ctx.tables, user_uuid=user_uuid),
        PRESENCE: sessions.presence_read(ctx.tables, user_uuid=user_uuid),
        DEVICE: devices.device_read(ctx.tables, user_uuid=user_uuid, device_id=pending["device_id"])})
    user, device = facts[USER], facts[DEVICE]
    if user is None or device is None or device.status != DEVICE_STATUS_ACTIVE:
        raise devices.DeviceRevoked()
    # The certificate proven at login must still be the device's (not renewed meanwhile).
    devices.recheck_device(ctx.settings, device, fingerprint=pending.get("fingerprint", device.fingerprint),
                           now=ctx.now())
    pending_caller = Caller(ip=pending.get("ip") or caller.ip,
                            user_agent=pending.get("user_agent") or caller.user_agent)
    factor = FirstFactor(amr=tuple(pending.get("amr") or sessions.PASSWORD_AMR), provider=pending.get("provider"),
                         spend=tickets.HeldTicket.of_data(pending.get("ticket")))
    opened = open_session(ctx, user=user, device=device, caller=pending_caller,
                          answer=in_use.Answer(force=True, displace=displace, spend=spend), presence=facts[PRESENCE],
                          dpop=dpop, factor=factor)
    if pending.get("question"):  # the history says the question was answered: not a refusal
        credentials.mark_continued(ctx, user_uuid=user_uuid, question=pending["question"])
    return opened
