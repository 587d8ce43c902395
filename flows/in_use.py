"""The question at the device limit (SPEC §5: "in use elsewhere — continue?"), as a login and a screen's
approval ask it: the 409 concurrent_login that says what the person is doing, lists every device that
could go (`current`: the device asking; `default`: the eviction order's picks) from the presence the
request read already, and the answer to a choice (`displace`) that names devices no longer listed. No
Flask here."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from common import i18n
from common.database.guarded_write import GuardedWrite
from common.errors import Conflict, ErrorCode, FieldKind, InvalidField
from common.mail.notifier import device_class_name
from common.timefmt import iso_from_epoch
from common.runtime.context import AppContext
from devices import concurrency_policy
from sessions import service as sessions
from sessions.models import PresenceEntry, Seats

LOGIN_DETAIL = ("Sign in on this device? This account is in use on another device: if you continue, \"{device}\" "
                "will be signed out. You may choose another device instead.")
SCREEN_DETAIL = ("Sign in on the {kind} \"{screen}\"? This account is in use on another device: if you continue, "
                 "\"{device}\" will be signed out. You may choose another device instead.")
OWN_SEAT_DETAIL = ("Sign in on the {kind} \"{screen}\"? This account is in use on as many devices as it may be: if "
                   "you continue, this device will be signed out. You may choose another device instead.")


@dataclass(frozen=True)
class Action:
    """What the person is doing when asked: a login on this device, or approving a screen (`screen`:
    its name; `device_class`: its class; `client_name`: its app)."""

    screen: str | None = None
    device_class: str | None = None
    client_name: str | None = None

    def body(self) -> dict[str, Any]:
        if self.screen is None:
            return {"kind": "login"}
        return {"kind": "screen", "device_name": self.screen, "device_class": self.device_class,
                "client_name": self.client_name}


@dataclass(frozen=True)
class Answer:
    """The person's answer to the question at the limit: `force` (continue), and which sessions go
    (`displace`: a choice, itself a confirmation; empty: the eviction order's picks). `spend`: the
    confirmation token's use, written with the seat (a refused choice leaves it usable)."""

    force: bool = False
    displace: tuple[str, ...] = ()
    spend: GuardedWrite | None = None


class InUse(Conflict):
    """409 concurrent_login: the limit is reached; the person is asked whether to go on, and which device goes."""

    code = ErrorCode.CONCURRENT_LOGIN
    detail = concurrency_policy.IN_USE_MESSAGE

    def __init__(self, asked: concurrency_policy.ConfirmationRequired, *, action: Action,
                 current_device: str | None = None, **extra: Any) -> None:
        default = asked.defaults[0]
        own_seat = default.device_id == current_device
        key = "own_seat" if own_seat else "screen" if action.screen is not None else "login"
        self._kind = action.device_class or "other"
        params = {"device": default.device_name, "screen": action.screen or ""}
        template = {"own_seat": OWN_SEAT_DETAIL, "screen": SCREEN_DETAIL, "login": LOGIN_DETAIL}[key]
        super().__init__(template.format(kind=device_class_name(self._kind, i18n.DEFAULT), **params),
                         detail_key=f"error.concurrent_login.{key}", detail_params=params,
                         action=action.body(), needed=asked.needed,
                         active_devices=[active_device(e, current_device=current_device, default=e in asked.defaults)
                                         for e in asked.active], **extra)

    def detail_in(self, locale: str) -> str:
        if locale == i18n.DEFAULT:
            return self.detail
        return i18n.text(self.detail_key or "", locale, kind=device_class_name(self._kind, locale),
                         **self.detail_params)


def active_device(entry: PresenceEntry, *, current_device: str | None, default: bool) -> dict[str, Any]:
    """A device that could go, as the 409's `active_devices` lists it (a login's, and a screen's approval's)."""
    return {"session_id": entry.session_id, "device_id": entry.device_id, "device_name": entry.device_name,
            "device_class": entry.device_class, "login_at": iso_from_epoch(entry.login_epoch),
            "last_seen_at": iso_from_epoch(entry.last_seen_epoch), "ip": entry.ip, "user_agent": entry.user_agent,
            "apps": entry.apps(), "current": entry.device_id == current_device, "default": default}


class NotAmongListed(InvalidField):
    def __init__(self) -> None:
        super().__init__("displace", "displace: name only devices the question listed.",
                         kind=FieldKind.INVALID_VALUE, detail_key="error.invalid_field.displace_not_listed")


@contextmanager
def choices_checked(ctx: AppContext, seats: Seats) -> Iterator[None]:
    """Turns a choice naming sessions that are not among those that could go now into its answer. Each a
    session of this account that ended meanwhile, or that a change of the account meanwhile (a login or an
    approval racing this one) took off the list: the question again, with the list as it is now (the
    ConfirmationRequired the policy raises without a choice). Anything else (another account's session, a
    made-up id, the asking device's own seat, which its login replaces anyway): 400 invalid_field
    `displace`. Only this refusal reads the sessions; a choice that holds costs no read."""
    try:
        yield
    except concurrency_policy.NotListed as not_listed:
        own = seats.presence.entries.get(seats.device_id)
        if all(session_id != (own.session_id if own else None) and sessions.session_owner(
                ctx, session_id=session_id) == seats.presence.user_uuid for session_id in not_listed.unknown):
            raise not_listed.asked from None
        raise NotAmongListed() from None


def check_listed(displace: tuple[str, ...], listed: list[str] | None) -> None:
    """A confirmation's choice against what its question listed (kept with the confirmation token): a
    session never listed is 400 invalid_field `displace`, before anything changes."""
    if listed is not None and not set(displace) <= set(listed):
        raise NotAmongListed()
