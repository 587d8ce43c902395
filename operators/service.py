"""Operators (SPEC §15), read top-down: who is acting and with which role; finding an account without
a Scan; the account's page; and the support actions on it, each checked against the operator's role
and the account's, re-authenticated when destructive, audited with its reason (the audit stream, the
account's history and its audit trail) and told to the person in their language. The admin API and
`citylogin admin` both call these functions: one implementation."""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from accounts import credential_service as credentials
from accounts import passkey_service as passkeys
from accounts import password_service as passwords
from accounts import service as account_service
from accounts import user_service as users
from accounts.models import Role, UserRecord, one_secret, role_rank
from common.config import Settings
from common.errors import ApiError, ErrorCode, Forbidden, InvalidField, NotFound, TooManyRequests, Unauthorized
from common.timefmt import iso_from_epoch
from common.database.batch_read import KeyRead, read_together
from common.database.dynamo import TableNames
from devices import service as devices
from devices.models import DeviceRecord
from operators.models import (SEARCH_KEYS, AccountSearch, AccountSummary, ActionRequest, LimitRequest, OperatorAccount,
                              OperatorDevice, OperatorPasskey, OperatorSelf, OperatorSession, RoleRequest)
from operators.telling import LIMIT as LIMIT_ACTION, tell
from operators.usernames import recent_usernames
from sessions import service as sessions
from sessions.models import AdminAction, EndedBy, Principal, RevokeReason, SessionRecord
from common.web.audit import AuditEvent, audit, operator_acting
from common.web.background import background
from common.web.caller import Caller
from common.runtime.context import AppContext
from common.web.rate_limits import RateLimitStore

RECENT_SESSIONS = 20
SEARCH_WINDOW_SECONDS = 60  # CITYLOGIN_ADMIN_SEARCH_LIMIT counts searches a minute
# What an id searched for may look like: a uuid, a session id (never '#', which the tables' own items use)
SEARCHED_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
OPERATOR_ACCOUNT = "operators.account"  # the operator's own account, in their session's batch read


class OperatorForbidden(Forbidden):
    code, detail = ErrorCode.FORBIDDEN, "Your operator role does not allow this."


class ReasonRequired(ApiError):
    status, code, detail = 400, ErrorCode.REASON_REQUIRED, "Say why: a reason is required for every operator action."


class ReauthenticationRequired(Unauthorized):
    code = ErrorCode.REAUTHENTICATION_REQUIRED
    detail = "Sign in again, or send your password or a passkey with this action."


class OperatorAccountNotFound(NotFound):
    detail = "No such account."


class WrongPassword(credentials.InvalidCredentials):
    """The operator's own password, asked to confirm an action: no username was typed, so none is named."""

    detail = "The password is incorrect."


@dataclass(frozen=True)
class Operator:
    """Who acts: a person's session with a role, an app's client-credentials token, or the CLI."""

    role: Role
    user_uuid: str | None = None
    username: str | None = None
    session_id: str | None = None
    signed_in_epoch: int | None = None  # the session's sign-in or re-authentication: recent enough?
    client_id: str | None = None
    name: str | None = None             # the CLI's operator (--operator, the AWS identity or the OS user)
    # `citylogin admin`, which holds the database's own credentials: the one way to act on an admin (SPEC §15)
    cli: bool = False
    # Records the route asked for, read in the same BatchGetItem as the session (PageReading)
    along: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"app:{self.client_id}" if self.client_id else f"user:{self.user_uuid}"

    def details(self) -> dict[str, Any]:
        # The username as it is now, kept with the row: the trail names who acted without a read per row.
        found = {"operator": self.label, "operator_uuid": self.user_uuid, "operator_username": self.username,
                 "operator_session": self.session_id, "operator_client": self.client_id,
                 "operator_role": self.role.value}
        return {k: v for k, v in found.items() if v is not None}


def operator_reads(tables: TableNames, *, user_uuid: str) -> dict[str, KeyRead[Any]]:
    """The operator's own account (its role), for their session's batch read (sessions.service.authenticate)."""
    return {OPERATOR_ACCOUNT: users.user_read(tables, user_uuid=user_uuid)}


def session_operator(ctx: AppContext, *, principal: Principal) -> Operator:
    """The operator behind a session, with the role its account holds now (read strongly consistent on
    every call, with the session when its batch read had operator_reads: a role taken away is refused on
    the very next one, on every host); 403 without one."""
    along = dict(principal.along)
    user = along.pop(OPERATOR_ACCOUNT) if OPERATOR_ACCOUNT in along else users.get_user(
        ctx, user_uuid=principal.user_uuid)
    if user is None or user.deleting or user.role is None:
        raise OperatorForbidden()
    return Operator(role=user.role, user_uuid=user.user_uuid, username=user.username,
                    session_id=principal.session_id, signed_in_epoch=principal.session.proven_epoch, along=along)


def need(operator: Operator, role: Role) -> None:
    """403 forbidden unless the operator's role is `role` or above."""
    if role_rank(operator.role) < role_rank(role):
        raise OperatorForbidden()


def need_lower(operator: Operator, target: UserRecord) -> None:
    """403 forbidden unless the account acted on holds a lower role than the operator's (SPEC §15): a
    support operator can not lock out its peers, nor an admin another admin but through the CLI."""
    if not operator.cli and role_rank(target.role) >= role_rank(operator.role):
        raise OperatorForbidden()


# --- finding an account and reading its page ---------------------------------------------------

def find_accounts(ctx: AppContext, *, operator: Operator, search: AccountSearch) -> list[AccountSummary]:
    """The account one exact key names (a username, an e-mail address, a user_uuid, a device_id or a
    session_id): one or two reads, never a Scan; none when nothing matches."""
    need(operator, Role.VIEWER)
    given = [(key, value) for key in SEARCH_KEYS if (value := getattr(search, key))]
    if len(given) != 1:
        raise InvalidField("query", "Give exactly one of username, email, user_uuid, device_id or session_id.")
    _count_search(ctx, operator)
    key, value = given[0]
    user = _user_by(ctx, key, value.strip())
    return [] if user is None or user.deleting else [_summary(user)]


def _count_search(ctx: AppContext, operator: Operator) -> None:
    """One of the operator's CITYLOGIN_ADMIN_SEARCH_LIMIT searches a minute, counted in DynamoDB so that
    every process sees it (per account or app, not per session); past it 429 rate_limited with Retry-After.
    A search names an address or a username exactly: the limit keeps a stolen operator session from
    walking the directory."""
    if operator.cli:
        return
    subject = f"user:{operator.user_uuid}" if operator.user_uuid else f"app:{operator.client_id}"
    now = ctx.epoch()
    taken = RateLimitStore(ctx.dynamodb, ctx.tables.rate_limits).take(
        f"admin_search#{subject}", limit=ctx.settings.admin_search_limit, window_seconds=SEARCH_WINDOW_SECONDS,
        now=now, user_uuid=operator.user_uuid)
    if taken is None:
        raise TooManyRequests("Too many searches; try again in a minute.", code=ErrorCode.RATE_LIMITED,
                              retry_after=SEARCH_WINDOW_SECONDS - now % SEARCH_WINDOW_SECONDS)


def _user_by(ctx: AppContext, key: str, value: str) -> UserRecord | None:
    if key == "email":
        return users.find_user_by_email(ctx, email=value)
    if key == "username":
        return users.find_user(ctx, username=value)
    if not SEARCHED_ID.fullmatch(value):
        return None
    owner: Callable[[], str | None] = {
        "user_uuid": lambda: value,
        "device_id": lambda: devices.device_owner(ctx, device_id=value),
        "session_id": lambda: sessions.session_owner(ctx, session_id=value)}[key]
    user_uuid = owner()
    return users.get_user(ctx, user_uuid=user_uuid) if user_uuid else None


def _summary(user: UserRecord) -> AccountSummary:
    return AccountSummary(user_uuid=user.user_uuid, username=user.username, email=user.email,
                          locked=bool(user.locked), roles=sorted(user.roles or ()), created_at=user.created_at)


def _target(ctx: AppContext, user_uuid: str) -> UserRecord:
    user = users.get_user(ctx, user_uuid=user_uuid) if SEARCHED_ID.fullmatch(user_uuid) else None
    if user is None or user.deleting:
        raise OperatorAccountNotFound()
    return user


class PageReading:
    """An account's page, read beside the operator's own check (operators/views.py): once the
    operator's token verified, `start` sets the page's Queries going (its devices and sessions need only
    the URL's user_uuid) and hands the records read by key (the person's account, presence and passkey
    count, and the lockout of the username this process last saw the account hold) to the batch read of
    the operator's session. Nothing of them is looked at before the operator's role checked out
    (account_page)."""

    def __init__(self, ctx: AppContext, *, user_uuid: str) -> None:
        self.ctx, self.user_uuid = ctx, user_uuid
        self.names = tuple(f"operators.{part}#{user_uuid}" for part in ("user", "presence", "passkeys", "lock"))
        self.lock_username: str | None = None  # whose lockout `start` asked for, if it knew the username
        self._devices: Future[list[DeviceRecord]] | None = None
        self._sessions: Future[tuple[list[SessionRecord], str | None]] | None = None

    @property
    def started(self) -> bool:
        return self._devices is not None

    def start(self) -> dict[str, KeyRead[Any]]:
        """Start the Queries; the reads by key, for the caller's batch read (none for an id no account has)."""
        ctx, user_uuid = self.ctx, self.user_uuid
        if not SEARCHED_ID.fullmatch(user_uuid):
            return {}
        pool = background(ctx)
        self._devices = pool.submit(devices.device_records, ctx, user_uuid=user_uuid)
        self._sessions = pool.submit(sessions.session_page, ctx, user_uuid=user_uuid, limit=RECENT_SESSIONS,
                                     cursor=None, include_ended=True)
        user, presence, passkey_count, lock = self.names
        reads: dict[str, KeyRead[Any]] = {user: users.user_read(ctx.tables, user_uuid=user_uuid),
                                     presence: sessions.presence_read(ctx.tables, user_uuid=user_uuid),
                                     passkey_count: passkeys.passkey_count_read(ctx.tables, user_uuid=user_uuid)}
        self.lock_username = recent_usernames(ctx).get(user_uuid)
        if self.lock_username is not None:
            reads[lock] = credentials.username_lock_read(ctx.tables, username=self.lock_username, now=ctx.epoch())
        return reads

    def queried(self) -> tuple[list[DeviceRecord], list[SessionRecord]]:
        """The Queries' answers (their failure, a 503, raised here)."""
        assert self._devices is not None and self._sessions is not None, "start() first"
        return self._devices.result(), self._sessions.result()[0]

    def locked_until(self, found: Mapping[str, Any], user: UserRecord) -> int | None:
        """Until when wrong passwords locked the account's username (None: they do not now): as the batch
        read it when it asked for this username's lockout, else read now (this process's first page of
        the account: its username is then known for the next one)."""
        *_, lock_name = self.names
        if self.lock_username == user.username and lock_name in found:
            return found[lock_name]
        recent_usernames(self.ctx).remember(user.user_uuid, user.username)
        return read_together(self.ctx.dynamodb, {"lock": credentials.username_lock_read(
            self.ctx.tables, username=user.username, now=self.ctx.epoch())})["lock"]


def _page_records(ctx: AppContext, operator: Operator, user_uuid: str,
                  reading: PageReading | None) -> tuple[PageReading, Mapping[str, Any]]:
    """The page's reading and its records by key: as read with the operator's session, else now in one
    BatchGetItem (an app's credential, the CLI, an action's answer)."""
    if reading is not None and reading.started:
        return reading, operator.along
    reading = PageReading(ctx, user_uuid=user_uuid)
    reads = reading.start()
    return reading, read_together(ctx.dynamodb, reads) if reads else {}


def account_page(ctx: AppContext, *, operator: Operator, user_uuid: str,
                 reading: PageReading | None = None) -> OperatorAccount:
    """The account with its devices and certificates, live and recent sessions, passkeys (names and
    dates) and limit: its records by key and its devices' and sessions' Queries at once (begun beside the
    operator's own check with `reading`), then its passkeys (unless their count is 0) and, on this
    process's first page of the account, its lockout (by the username it read), at once."""
    need(operator, Role.VIEWER)
    reading, found = _page_records(ctx, operator, user_uuid, reading)
    user_name, presence_name, count_name, _ = reading.names
    user = found.get(user_name)
    if user is None or user.deleting:
        recent_usernames(ctx).forget(user_uuid)
        raise OperatorAccountNotFound()
    keys = background(ctx).submit(passkeys.list_passkeys, ctx, user_uuid=user.user_uuid) if found[count_name] else None
    locked_until = reading.locked_until(found, user)
    records, recent = reading.queried()
    listed = devices.device_list(ctx, user_uuid=user.user_uuid, records=records, current_device_id="",
                                 presence=found[presence_name]).devices
    return OperatorAccount(
        **_summary(user).model_dump(), email_verified=user.email_verified, locale=user.locale,
        password_locked_until=iso_from_epoch(locked_until) if locked_until else None,
        limit=user.max_concurrent_devices, default_limit=ctx.settings.max_concurrent_devices,
        devices=[OperatorDevice(device_id=d.device_id, device_name=d.device_name, device_class=d.device_class,
                                status=d.status, cert_expires_at=d.cert_expires_at, registered_at=d.registered_at,
                                last_login_at=d.last_login_at, logged_in=d.active) for d in listed],
        sessions=[_session_view(ctx.settings, s, now=ctx.epoch()) for s in recent],
        passkeys=[OperatorPasskey(name=p.name, created_at=p.created_at, last_used_at=p.last_used_at)
                  for p in (keys.result() if keys else [])],
        imported_from=user.imported_from, imported_at=user.imported_at, password_upgraded=user.password_upgraded)


def _session_view(settings: Settings, session: SessionRecord, *, now: int) -> OperatorSession:
    status, reason = sessions.session_status(settings, session, now)
    return OperatorSession(session_id=session.session_id, device_id=session.device_id,
                           device_name=session.device_name, created_at=session.created_at,
                           last_seen_at=iso_from_epoch(session.last_seen_epoch), status=status,
                           revoked_reason=reason, ip=session.ip, user_agent=session.user_agent)


STORAGE_FIELDS = frozenset({"user_uuid", "event_key", "expires_ttl"})  # the table's keys and TTL, not the row's


def _rows(page: tuple[list[dict[str, Any]], str | None]) -> tuple[list[dict[str, Any]], str | None]:
    items, next_cursor = page
    return [{k: v for k, v in item.items() if k not in STORAGE_FIELDS} for item in items], next_cursor


def history_page(ctx: AppContext, *, operator: Operator, user_uuid: str, limit: int,
                 cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    need(operator, Role.VIEWER)
    return _rows(sessions.history_page(ctx, user_uuid=_target(ctx, user_uuid).user_uuid, limit=limit,
                                       cursor=cursor))


def audit_page(ctx: AppContext, *, operator: Operator, user_uuid: str, limit: int,
               cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    need(operator, Role.VIEWER)
    return _rows(sessions.audit_page(ctx, user_uuid=_target(ctx, user_uuid).user_uuid, limit=limit, cursor=cursor))


# --- the actions -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Action:
    name: str
    role: Role
    destructive: bool  # needs a recent sign-in (SPEC §15)
    tells: bool        # the person gets a mail of it (the resend and the reset send their own)


LOCK = Action("lock", Role.SUPPORT, destructive=True, tells=True)
UNLOCK = Action("unlock", Role.SUPPORT, destructive=False, tells=True)
REVOKE_SESSIONS = Action("revoke_sessions", Role.SUPPORT, destructive=True, tells=True)
UNBIND = Action("unbind", Role.SUPPORT, destructive=True, tells=True)
LIMIT = Action(LIMIT_ACTION, Role.SUPPORT, destructive=False, tells=True)
RESEND_VERIFICATION = Action("resend_verification", Role.SUPPORT, destructive=False, tells=False)
PASSWORD_RESET = Action("password_reset", Role.SUPPORT, destructive=True, tells=False)
ROLES = Action("roles", Role.ADMIN, destructive=True, tells=True)


def act(ctx: AppContext, action: Action, *, operator: Operator, user_uuid: str, request: ActionRequest,
         caller: Caller | None, do: Callable[[UserRecord], dict[str, Any]]) -> dict[str, Any]:
    """Role, then the account's role (a lower one), then the reason, then the recent sign-in; then the
    action, its audit line, its rows in the account's history and audit trail, and the person's mail."""
    need(operator, action.role)
    target = _target(ctx, user_uuid)
    need_lower(operator, target)
    reason = (request.reason or "").strip()
    if not reason:
        raise ReasonRequired()
    if action.destructive:
        _confirm_recent_sign_in(ctx, operator=operator, request=request, caller=caller)
    with operator_acting(operator.label):
        done = do(target)
        details = {**operator.details(), "reason": reason, **done}
        audit(AuditEvent.OPERATOR_ACTION, action=action.name, user_uuid=target.user_uuid, **details)
        sessions.record_operator_action(ctx, user_uuid=target.user_uuid, action=action.name, details=details)
    if action.tells:
        tell(ctx.notifier, target, action.name, done=done, default_limit=ctx.settings.max_concurrent_devices,
             at=ctx.now())
    return done


def _confirm_recent_sign_in(ctx: AppContext, *, operator: Operator, request: ActionRequest,
                            caller: Caller | None) -> None:
    """A session's sign-in within CITYLOGIN_ADMIN_REAUTH_SECONDS, or its password, passkey (§13) or reauth token
    (§16: an operator whose account has no password) now.
    An app's credential or the CLI has no sign-in to age: it is its own proof."""
    if operator.session_id is None or operator.user_uuid is None or operator.username is None:
        return
    offered = any(secret is not None for secret in (request.password, request.passkey, request.reauth_token))
    age = ctx.epoch() - (operator.signed_in_epoch or 0)
    if not offered and age < ctx.settings.admin_reauth_seconds:
        return
    if not offered or caller is None:
        raise ReauthenticationRequired()
    secret = one_secret(request.password, request.passkey, password_field="password",
                        reauth_token=request.reauth_token)
    try:
        _, had_failures = credentials.reauthenticate(ctx, user_uuid=operator.user_uuid, username=operator.username,
                                                     secret=secret, caller=caller, flow="admin_action")
    except credentials.InvalidCredentials:
        if request.password is None:
            raise
        raise WrongPassword() from None
    # Renewed before the action: proven is proven, even if the action then fails (SPEC §15)
    sessions.record_reauthentication(ctx, session_id=operator.session_id)
    if had_failures:
        credentials.clear_failures(ctx, username=operator.username)


def reauthentication_window(settings: Settings, *, operator: Operator, now: int) -> OperatorSelf:
    """Who the operator is, and until when a destructive action needs no password from them: their
    session's sign-in or last re-authentication plus CITYLOGIN_ADMIN_REAUTH_SECONDS. An app's credential
    or the CLI has no window (None): it is its own proof."""
    window = settings.admin_reauth_seconds
    until = None if operator.session_id is None else (operator.signed_in_epoch or 0) + window
    return OperatorSelf(username=operator.username, client_id=operator.client_id, role=operator.role.value,
                        reauth_seconds=window, reauth_expires_at=iso_from_epoch(until) if until else None,
                        reauth_seconds_left=None if until is None else max(0, until - now))


def lock(ctx: AppContext, *, operator: Operator, user_uuid: str, request: ActionRequest,
         caller: Caller | None = None) -> dict[str, Any]:
    """Refuse every login (403 account_locked) and end every session (reason admin)."""
    return act(ctx, LOCK, operator=operator, user_uuid=user_uuid, request=request, caller=caller,
         do=lambda user: {"sessions_ended": users.lock_account(ctx, user_uuid=user.user_uuid)})


def unlock(ctx: AppContext, *, operator: Operator, user_uuid: str, request: ActionRequest,
           caller: Caller | None = None) -> dict[str, Any]:
    """Allow logins again: the operator's lock goes, and so does a pause after wrong passwords."""
    def do(user: UserRecord) -> dict[str, Any]:
        if user.locked:
            users.unlock_account(ctx, user_uuid=user.user_uuid)
        credentials.clear_failures(ctx, username=user.username)
        return {}
    return act(ctx, UNLOCK, operator=operator, user_uuid=user_uuid, request=request, caller=caller, do=do)


def revoke_sessions(ctx: AppContext, *, operator: Operator, user_uuid: str, request: ActionRequest,
                    caller: Caller | None = None) -> dict[str, Any]:
    """End every session of the account (reason admin); its devices stay registered."""
    return act(ctx, REVOKE_SESSIONS, operator=operator, user_uuid=user_uuid, request=request, caller=caller,
         do=lambda user: {"sessions_ended": sessions.end_all_sessions(
             ctx, user_uuid=user.user_uuid, reason=RevokeReason.ADMIN,
             ended_by=EndedBy(admin_action=AdminAction.SESSIONS_ENDED))})


def unbind_device(ctx: AppContext, *, operator: Operator, user_uuid: str, device_id: str, request: ActionRequest,
                  caller: Caller | None = None) -> dict[str, Any]:
    """Revoke a device's certificate for good and end its session (reason device_unbound), even the
    account's last device."""
    def do(user: UserRecord) -> dict[str, Any]:
        devices.unbind(ctx, user_uuid=user.user_uuid, device_id=device_id, by_device=None, confirm_last=True,
                       ended_by=EndedBy(admin_action=AdminAction.DEVICE_REMOVED))
        return {"device_id": device_id}
    return act(ctx, UNBIND, operator=operator, user_uuid=user_uuid, request=request, caller=caller, do=do)


def set_limit(ctx: AppContext, *, operator: Operator, user_uuid: str, request: LimitRequest,
              caller: Caller | None = None) -> dict[str, Any]:
    """The account's own concurrent-device limit (0 = unlimited), or None for the default."""
    def do(user: UserRecord) -> dict[str, Any]:
        users.set_concurrent_limit(ctx, user_uuid=user.user_uuid, limit=request.limit)
        return {"limit": "default" if request.limit is None else request.limit}
    return act(ctx, LIMIT, operator=operator, user_uuid=user_uuid, request=request, caller=caller, do=do)


def resend_verification(ctx: AppContext, *, operator: Operator, user_uuid: str, request: ActionRequest,
                        caller: Caller | None = None) -> dict[str, Any]:
    """A new verification link to the account's address, unless it is verified or not the account's
    (given at registration while another account held it: nothing goes there for it)."""
    def do(user: UserRecord) -> dict[str, Any]:
        sent = not user.email_verified and bool(user.email)
        if sent:
            account_service.send_verification(ctx, user_uuid=user.user_uuid, email=user.email, locale=user.locale)
        return {"sent": sent}
    return act(ctx, RESEND_VERIFICATION, operator=operator, user_uuid=user_uuid, request=request, caller=caller, do=do)


def start_password_reset(ctx: AppContext, *, operator: Operator, user_uuid: str, request: ActionRequest,
                         caller: Caller | None = None) -> dict[str, Any]:
    """Mail the person a password reset link, as "Forgot password?" does; nothing changes until they use it."""
    def do(user: UserRecord) -> dict[str, Any]:
        passwords.mail_reset_link(ctx, user=user)
        return {}
    return act(ctx, PASSWORD_RESET, operator=operator, user_uuid=user_uuid, request=request, caller=caller, do=do)


def change_role(ctx: AppContext, *, operator: Operator, user_uuid: str, request: RoleRequest,
                caller: Caller | None = None) -> dict[str, Any]:
    """Grant or take away an operator role, never one above the operator's own, on an account of a lower
    role (the CLI: any); the last admin keeps the admin role (403 forbidden, one transaction with the
    count of admins)."""
    if role_rank(request.role) > role_rank(operator.role):
        raise OperatorForbidden()

    def do(user: UserRecord) -> dict[str, Any]:
        users.set_role(ctx, user_uuid=user.user_uuid, role=request.role, granted=request.grant)
        return {"role": request.role.value, "granted": request.grant}
    return act(ctx, ROLES, operator=operator, user_uuid=user_uuid, request=request, caller=caller, do=do)


def app_operator(*, client_id: str, admin_role: str | None) -> Operator:
    """The operator behind an app's client-credentials token: the role its record holds now; 403 without."""
    if admin_role not in {r.value for r in Role}:
        raise OperatorForbidden()
    return Operator(role=Role(admin_role), client_id=client_id)
