"""Session records, the per-user presence record and the models of /session."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

SESSION_ACTIVE = "active"
SESSION_REVOKED = "revoked"


class RevokeReason:
    """The `reason` of 401 session_revoked (SPEC §4)."""

    LOGGED_OUT = "logged_out"
    DISPLACED = "displaced"
    REMOTE_LOGOUT = "remote_logout"
    DEVICE_UNBOUND = "device_unbound"
    IDLE_TIMEOUT = "idle_timeout"
    MAX_LIFETIME = "max_lifetime"
    REFRESH_REUSE = "refresh_reuse"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    ACCOUNT_DELETED = "account_deleted"
    ADMIN = "admin"
    APP_REMOVED, APPROVAL_EXPIRED = "app_removed", "approval_expired"  # a screen's: its app removed, its code unused


class AdminAction:
    """The `admin_action` beside a reason, when an operator's action ended the session (SPEC §4): what
    the person is told differs (a locked account cannot log in again; ended sessions can)."""

    LOCKED = "locked"                  # reason admin: the account is locked
    SESSIONS_ENDED = "sessions_ended"  # reason admin: its sessions were ended, the account stays open
    DEVICE_REMOVED = "device_removed"  # reason device_unbound: the device was unbound


@dataclass(frozen=True)
class EndedBy:
    """Who ended a session besides its reason and `by_device`: an operator's action, or the app whose
    own logout (RP-initiated, SPEC §14) it was — its client_id and its name at the time."""

    admin_action: str | None = None
    by_app: str | None = None
    by_app_name: str | None = None

    def fields(self) -> dict[str, str]:
        """The members that are set, as the 401 session_revoked and the event stream carry them."""
        return {name: value for name, value in (("admin_action", self.admin_action), ("by_app", self.by_app),
                                                ("by_app_name", self.by_app_name)) if value}


NOT_SAID = EndedBy()  # an ending with nothing to say beyond its reason and by_device


class HistoryResult(str, Enum):
    """The `result` of a row of the login history (SPEC §4 GET /session/history): every value the
    server writes there, so that each has a label in the web UI."""

    SUCCESS = "success"
    INVALID_CREDENTIALS = "invalid_credentials"
    CERTIFICATE_MISMATCH = "certificate_mismatch"
    CERTIFICATE_EXPIRED = "certificate_expired"
    INVALID_PROOF = "invalid_proof"
    DEVICE_REVOKED = "device_revoked"
    REJECTED_CONCURRENT = "rejected_concurrent"
    LOCKED_OUT = "locked_out"  # refused while the account is locked: by wrong passwords, or by an operator
    INVALID_RECOVERY_CODE = "invalid_recovery_code"
    INVALID_EMAIL_CODE = "invalid_email_code"  # a wrong code mailed for an account's first device (SPEC §17)
    ADMIN_ACTION = "admin_action"  # an operator's action on the account, named by the row's `action` (SPEC §15)
    IDENTITY_LINKED = "identity_linked"  # an upstream identity linked to the account, its `provider` named (SPEC §16)
    IDENTITY_UNLINKED = "identity_unlinked"


@dataclass(frozen=True)
class Liveness:
    """The one rule of "is this session live" that the login transaction, refresh, the guard,
    the event watcher and the idle timeout all apply (SPEC §4, §5).

    `last_seen_epoch` is written at most once per `touch_every` seconds, so a session stays live
    until `last_seen + idle_timeout + touch_every`: the effective idle timeout is never shorter
    than the configured one, and at most `touch_every` longer."""

    idle_timeout: int

    @property
    def touch_every(self) -> int:
        return max(1, min(60, self.idle_timeout // 4))

    @property
    def idle_span(self) -> int:
        """How long after its last recorded activity a session ends."""
        return self.idle_timeout + self.touch_every

    def idle_cutoff(self, now: int) -> int:
        """A session last seen at or before this moment is idle-expired."""
        return now - self.idle_span

    def needs_touch(self, *, last_seen_epoch: int, now: int) -> bool:
        return now - last_seen_epoch >= self.touch_every

    def end_reason(self, *, status: str, expires_epoch: int, last_seen_epoch: int, now: int,
                   revoked_reason: str | None = None, unredeemed: bool = False) -> str | None:
        """Why a session with these fields is over at `now`, or None while it is live (`unredeemed`: a screen's)."""
        if status != SESSION_ACTIVE:
            return revoked_reason or RevokeReason.ADMIN
        if now >= expires_epoch:
            return RevokeReason.APPROVAL_EXPIRED if unredeemed else RevokeReason.MAX_LIFETIME
        if last_seen_epoch <= self.idle_cutoff(now):
            return RevokeReason.IDLE_TIMEOUT
        return None


@dataclass(frozen=True)
class Holder:
    """Who a session's tokens are for, as the access token and the refresh's write need it: from
    the session record, or carried by the refresh token itself (so that a refresh needs no read)."""
    session_id: str
    user_uuid: str
    device_id: str
    expires_epoch: int
    jkt: str | None = None


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    user_uuid: str
    device_id: str
    device_name: str
    created_at: str
    login_epoch: int
    last_seen_epoch: int
    expires_epoch: int          # absolute end: login + session_max_lifetime
    refresh_gen: int
    refresh_digest: str
    rotated_epoch: int
    status: str = SESSION_ACTIVE
    ip: str | None = None
    user_agent: str | None = None
    prev_refresh_digest: str | None = None
    refresh_kid: str | None = None  # the ring secret of the current refresh token; None: made before the ring
    revoked_reason: str | None = None
    revoked_at: str | None = None
    by_device: str | None = None
    locked: bool | None = None  # ended by an operator's lock: the guard answers 403 account_locked
    admin_action: str | None = None  # EndedBy: what an operator did, or the app whose logout ended it
    by_app: str | None = None
    by_app_name: str | None = None
    expires_ttl: int | None = None  # DynamoDB TTL: kept for the session list a week past its end
    device_class: str = "other"  # the class the session counted under at login (SPEC §5)
    class_changes: list[dict[str, Any]] | None = None  # [{"at", "device_class"}]: the device relabelled while live
    # While active, in the sparse index of sessions by the moment they end without a write (their
    # idle timeout or max lifetime), so that the sweeper ends them with their event (SPEC §11).
    live_shard: str | None = None
    ends_at: int | None = None
    jkt: str | None = None  # bound to this device key's RFC 7638 thumbprint (DPoP, SPEC §12), or a bearer session
    # How the login was made (RFC 8176 amr, SPEC §14): the device key (hwk) with the password (pwd) or a
    # passkey (pop, user); None: a session from before it was recorded (a password login).
    amr: list[str] | None = None
    # The holder's last re-authentication by password or passkey on this session (an operator's, SPEC
    # §15): with the login, it starts the window in which a destructive admin action needs no password.
    reauth_epoch: int | None = None
    # Its login's place in the account's sequence (SPEC §5), as in the presence entry; None: from before.
    login_seq: int | None = None
    # The apps that signed in on it (SPEC §14), each "<client_id> <its name then>": written by each grant's
    # redemption with the session's liveness check, so that an ended session still says which apps it held.
    app_names: set[str] | None = None
    # A screen's session (the device authorization grant, SPEC §14): the app it signed in for. The app giving
    # its grant back (RFC 7009: the screen signs out) ends the session, so that its seat is free at once.
    screen_of: str | None = None
    screen_name: str | None = None  # a screen's: its app's name when approved (the Sessions list's client)
    # `screen_of` while active (removed at its end): the sparse index by which removing an app finds its screens
    live_screen_of: str | None = None
    # approved, not yet redeemed: ends at the code's expiry unless redeemed (SessionStore.screen_redeemed_items)
    unredeemed: bool | None = None

    def apps_signed_in(self) -> list[tuple[str, str]]:
        """(client_id, name) of each app that signed in on the session, by name (one per app)."""
        apps = dict(sorted(entry.split(" ", 1) for entry in self.app_names or () if " " in entry))
        return sorted(apps.items(), key=lambda app: (app[1].casefold(), app[0]))

    @property
    def proven_epoch(self) -> int:
        """When the holder last proved who they are on this session: its login or a re-authentication."""
        return max(self.login_epoch, self.reauth_epoch or 0)

    def ended_by(self) -> EndedBy:
        return EndedBy(admin_action=self.admin_action, by_app=self.by_app, by_app_name=self.by_app_name)

    def holder(self) -> Holder:
        return Holder(session_id=self.session_id, user_uuid=self.user_uuid, device_id=self.device_id,
                      expires_epoch=self.expires_epoch, jkt=self.jkt)


@dataclass(frozen=True)
class PresenceEntry:
    """One logged-in device in the user's presence record: what the 409 body and eviction need."""

    device_id: str
    session_id: str
    device_name: str
    login_epoch: int
    last_seen_epoch: int
    expires_epoch: int
    ip: str | None = None
    device_class: str = "other"  # SPEC §5: per-class limits count the presence's entries of a class
    # The order in which the account's logins were accepted (SPEC §5): the presence record's sequence,
    # written by the login's own transaction. None: an entry written by a release before it was kept.
    login_seq: int | None = None
    # What the 409 concurrent_login lists of the device without a read beyond the presence (SPEC §5):
    # its client's user agent (a screen's: its app's name), and the apps signed in on its session, each
    # "<client_id> <name>" (a screen's app from its approval; an app's sign-in adds it after the fact).
    user_agent: str | None = None
    app_names: set[str] | None = None

    def apps(self) -> list[dict[str, str]]:
        """{client_id, name} of each app signed in on the device's session, by name."""
        apps = dict(sorted(entry.split(" ", 1) for entry in self.app_names or () if " " in entry))
        return [{"client_id": client_id, "name": name}
                for client_id, name in sorted(apps.items(), key=lambda app: (app[1].casefold(), app[0]))]

    def is_live(self, *, now: int, liveness: "Liveness") -> bool:
        return liveness.end_reason(status=SESSION_ACTIVE, expires_epoch=self.expires_epoch,
                                   last_seen_epoch=self.last_seen_epoch, now=now) is None


@dataclass(frozen=True)
class Presence:
    """The user's logged-in devices; `version` guards every change of membership (SPEC §5)."""

    user_uuid: str
    version: int = 0
    entries: dict[str, PresenceEntry] = field(default_factory=dict)
    login_seq: int = 0  # the last login's place in the account's sequence (0: none kept yet)

    def next_login_seq(self) -> int:
        """The place of the next login accepted: after the record's counter and after every entry's own
        (a release before the counter rewrote the record without it, but may have kept its entries')."""
        return max([self.login_seq, *(e.login_seq or 0 for e in self.entries.values())]) + 1

    def live(self, *, now: int, liveness: "Liveness") -> list[PresenceEntry]:
        return [e for e in self.entries.values() if e.is_live(now=now, liveness=liveness)]


@dataclass(frozen=True)
class PresenceMoved:
    """A login's write found the presence changed since its read: read it again, with what was
    learned. `seen_since`: sessions found in use after the read (session_id -> last seen);
    `gone`: sessions whose records have expired away; `contended`: another login's write won the
    race, so the next read waits a moment first; `attempts`: writes tried so far."""

    attempts: int = 0
    seen_since: dict[str, int] = field(default_factory=dict)
    gone: frozenset[str] = frozenset()
    contended: bool = False


@dataclass(frozen=True)
class Seats:
    """The user's presence as a login of `device_id` sees it at `now` (SPEC §5): the live entries
    it counts, and what earlier attempts learned (`learned`)."""

    device_id: str
    presence: Presence
    now: int
    live: list[PresenceEntry]
    learned: PresenceMoved

    @property
    def others(self) -> list[PresenceEntry]:
        """The live entries of the user's other devices: those the concurrency policy counts."""
        return [e for e in self.live if e.device_id != self.device_id]


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


@dataclass(frozen=True)
class OpenedSession:
    session: SessionRecord
    tokens: TokenPair
    evicted: list[PresenceEntry]


@dataclass(frozen=True)
class Principal:
    """Who is calling a protected route: from the verified JWT and the session read."""

    user_uuid: str
    session_id: str
    device_id: str
    session: SessionRecord
    token_expires_epoch: int
    claims: dict[str, Any] = field(default_factory=dict, compare=False)  # the access token's verified claims
    along: dict[str, Any] = field(default_factory=dict, compare=False)  # the records read with the session (`along`)


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutAllRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_current: StrictBool = True


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # "DPoP" for a bound session's tokens (SPEC §12)
    expires_in: int


class SignedInApp(BaseModel):
    """An app that holds tokens of a live session (or held them, on an ended one): its client_id and its name."""

    client_id: str
    name: str


class SessionView(BaseModel):
    session_id: str
    device_id: str
    device_name: str
    created_at: str
    last_seen_at: str
    expires_at: str
    ip: str | None
    user_agent: str | None
    current: bool
    status: str
    revoked_reason: str | None
    device_class: str = Field(default="other", description="the class it counts under against the limits: mobile, "
                                                           "tablet, desktop, other, or tv (a screen's)")
    screen_app: str | None = Field(default=None, description="a screen's session (the device grant): the name of the "
                                   "app it signed in for, its client (user_agent is null: no browser of its own)")


class ListedSession(SessionView):
    """An item of GET /session/list: the session, and the apps signed in on it."""

    apps: list[SignedInApp] = Field(description="the apps signed in on a live session, by name; for an ended one, "
                                    "the apps that signed in on it (by their names then)")


class CurrentSession(SessionView):
    """GET /session/me: the current session and whose it is."""

    user_uuid: str


class ResumeRequest(BaseModel):
    """`POST /session/resume`: `signature` over "citylogin-resume:" + `challenge` (from `POST
    /login/challenge`) by the device's key, whose DPoP proof comes with the request."""

    client_cert: str = Field(min_length=1, max_length=32768, description="base64 of the certificate PEM")
    challenge: str = Field(min_length=1, max_length=128)
    signature: str = Field(min_length=1, max_length=12000, description="base64 signature")


class ResumedSession(BaseModel):
    """`POST /session/resume`: an access token of the device's live session, bound to the device key,
    without a refresh token (the tab resumes again when it runs out), and what the tab shows of it."""

    access_token: str
    token_type: str = "DPoP"
    expires_in: int
    session_id: str
    device_id: str
    device_name: str
    user_uuid: str
    apps: list[SignedInApp] = Field(description="the apps signed in on the session, by name")


# What next_cursor holds: unpadded base64url (of JSON), so a page's URL stays well inside the
# request line an HTTP server reads (gunicorn: 4094 bytes).
Cursor = Annotated[str | None, Field(default=None, max_length=1024, pattern=r"^[A-Za-z0-9_-]+$",
                                     description="next_cursor of the previous page")]


class SessionList(BaseModel):
    sessions: list[ListedSession]
    next_cursor: str | None


class SessionListQuery(BaseModel):
    """The query parameters of GET /session/list."""

    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Cursor = None
    include_ended: bool = Field(default=False, description="list ended sessions too (kept a week past their end)")


class HistoryItem(BaseModel):
    at: str
    device_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    result: str = Field(description="what happened: " + ", ".join(r.value for r in HistoryResult))
    evicted: list[dict[str, Any]] = []
    continued: bool | None = Field(default=None, description="result rejected_concurrent: the person was asked "
                                   "\"in use elsewhere - continue?\" and continued (the sign-in is the next row)")
    # Who acted and why stay in the operators' history and audit trail: this model leaves them out.
    action: str | None = Field(default=None, description="result admin_action: what an operator did")
    provider: str | None = Field(default=None, description="the upstream provider (its display name): of a sign-in "
                                 "with its answer (\"signed in with Google\"), or of the identity linked or unlinked")


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    next_cursor: str | None


class HistoryQuery(BaseModel):
    """The query parameters of GET /session/history."""

    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=20, ge=1, le=100)
    cursor: Cursor = None


class EventsQuery(BaseModel):
    """The query parameters of GET /session/events (read by the guard, not by the view)."""

    access_token: str | None = Field(default=None, description=(
        "the access token, for EventSource clients that cannot send an Authorization header"))


# --- the security events feed (SPEC §11): what ended, in the order of a seq -------------------

SEQ = re.compile(r"^\d{13}-[0-9a-f]{32}$")  # <epoch ms>-<event id>


def seq_at(epoch_ms: int, event_id: str = "") -> str:
    """The seq of an event at `epoch_ms`; with no id, the bound just before every event of that ms."""
    return f"{epoch_ms:013d}-{event_id}"


def seq_epoch_ms(seq: str) -> int:
    return int(seq[:13])


@dataclass(frozen=True)
class SessionEnded:
    """One row of the feed: a session ended."""

    seq: str
    session_id: str
    user_uuid: str
    device_id: str
    reason: str
    event_epoch: int
    initiating_entity: str
    by_device: str | None = None
    ended_by: EndedBy = NOT_SAID
    # Set, the session did not end: one app's grant on it did (a refresh token reused after the
    # grace, a code used twice, ...; oidc.app_grants.ending). Only that app's streams hear it
    # (relying_parties.delivery).
    client_id: str | None = None
    grant_id: str | None = None

    @property
    def event_id(self) -> str:
        return self.seq[14:]

    @property
    def session_ended(self) -> bool:
        return self.client_id is None


@dataclass(frozen=True)
class Ending:
    """What a session-ending write knows of the session it ends."""

    session_id: str
    user_uuid: str
    device_id: str
    reason: str
    by_device: str | None = None
    ended_by: EndedBy = NOT_SAID
    client_id: str | None = None  # an app's grant ending, not the session (SessionEnded.client_id)
    grant_id: str | None = None
