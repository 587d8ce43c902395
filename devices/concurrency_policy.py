"""How many devices may be logged in at once, and what a login over the limit does (SPEC §5).

A pure decision over the user's other live devices; the atomic write that enforces it is
session_manager's versioned presence record."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from common.config import ConcurrencyPolicy, EvictionOrder
from common.errors import Conflict, ErrorCode, FieldKind, InvalidField
from sessions.models import PresenceEntry

IN_USE_MESSAGE = "This account is in use on another device. If you continue, that device will be logged out."


class ConfirmationRequired(Exception):
    """Policy `ask` at the limit: the person must confirm before `needed` of the `active` devices are
    logged out. `active`: every device that could go, in eviction order (the first `needed` are the
    ones a confirmation without a choice displaces: the defaults)."""

    def __init__(self, active: list[PresenceEntry], *, needed: int = 1) -> None:
        super().__init__("confirmation required")
        self.active = active
        self.needed = needed

    @property
    def defaults(self) -> list[PresenceEntry]:
        return self.active[:self.needed]


class NotListed(Exception):
    """A confirmation named sessions (`unknown`) that are not among the ones that could go now
    (`asked`): ones that ended meanwhile (the person is asked again) or never could (400)."""

    def __init__(self, unknown: list[str], asked: ConfirmationRequired) -> None:
        super().__init__("named sessions are not listed")
        self.unknown = unknown
        self.asked = asked


class TooFewChosen(InvalidField):
    def __init__(self, needed: int) -> None:
        super().__init__("displace", f"displace: choose at least {needed} of the listed devices to sign out.",
                         kind=FieldKind.OUT_OF_RANGE, detail_key="error.invalid_field.displace_too_few",
                         detail_params={"needed": needed})


class ConcurrentLoginRejected(Conflict):
    code = ErrorCode.CONCURRENT_LOGIN_REJECTED
    detail = "This account is in use on another device, and only that device may stay logged in."


def choose_evictions(*, policy: ConcurrencyPolicy, limit: int, order: EvictionOrder,
                     others: list[PresenceEntry], force: bool, device_class: str = "other",
                     class_limits: Mapping[str, int] | None = None,
                     displace: Sequence[str] = ()) -> list[PresenceEntry]:
    """The live sessions of other devices that a new login of a `device_class` device displaces;
    raises if it may not. A full class is decided first, within that class (SPEC §5): its
    devices are the ones asked about or evicted; then the total, over what is left. Under `ask`,
    `displace` (session ids the person chose; a confirmation in itself) end instead of the eviction
    order's picks: they must be among the ones that could go (else NotListed) and enough to make room
    in the full class (else 400 invalid_field)."""
    class_limit = (class_limits or {}).get(device_class, 0)
    same_class = [e for e in others if e.device_class == device_class]
    class_excess = len(same_class) - class_limit + 1 if class_limit else 0
    total_excess = len(others) - limit + 1 if limit else 0
    if class_excess <= 0 and total_excess <= 0:
        return []
    if policy is ConcurrencyPolicy.REJECT:
        raise ConcurrentLoginRejected()
    # listed in the order a confirmation without a choice displaces them
    candidates = in_eviction_order(same_class if class_excess > 0 else others, order)
    needed = class_excess if class_excess > 0 else total_excess
    asked = ConfirmationRequired(candidates, needed=needed)
    if policy is ConcurrencyPolicy.ASK and displace:
        evicted = _chosen(displace, asked)
    elif policy is ConcurrencyPolicy.ASK and not force:
        raise asked
    else:
        evicted = candidates[:needed]
    rest = [e for e in others if e not in evicted]
    return evicted + in_eviction_order(rest, order)[:max(total_excess - len(evicted), 0)]


def _chosen(displace: Sequence[str], asked: ConfirmationRequired) -> list[PresenceEntry]:
    by_session = {e.session_id: e for e in asked.active}
    named = list(dict.fromkeys(displace))
    unknown = [session_id for session_id in named if session_id not in by_session]
    if unknown:
        raise NotListed(unknown, asked)
    if len(named) < asked.needed:
        raise TooFewChosen(asked.needed)
    return [by_session[session_id] for session_id in named]


class DeviceClassFull(Conflict):
    code = ErrorCode.DEVICE_CLASS_FULL
    detail = ("As many devices of this kind as allowed are logged in. Log one of them out first, or change "
              "this device's kind while it is logged out.")


def check_relabel(*, device_class: str, class_limits: Mapping[str, int] | None,
                  others: list[PresenceEntry]) -> None:
    """May a logged-in device start counting as `device_class` beside the other live sessions?
    Never past that class's limit (SPEC §5): a relabel evicts nobody, it is refused."""
    class_limit = (class_limits or {}).get(device_class, 0)
    if class_limit and sum(e.device_class == device_class for e in others) >= class_limit:
        raise DeviceClassFull()


def in_eviction_order(entries: list[PresenceEntry], order: EvictionOrder) -> list[PresenceEntry]:
    """`entries`, the first to be displaced first (SPEC §5): by the order their logins were accepted,
    or by least recent use with ties broken the same way."""
    if order is EvictionOrder.LEAST_RECENTLY_USED:
        return sorted(entries, key=lambda e: (e.last_seen_epoch, *login_order(e)))
    return sorted(entries, key=login_order)


def login_order(entry: PresenceEntry) -> tuple[int, int, int, str]:
    """Where a login stands in its account's sequence. An entry without a place was written by a
    release before the sequence, and each of that release's writes rewrites the whole record without
    the places, so such an entry came before every login with one; among such entries the login's
    time decides (whole seconds, all that release kept), then the device id, so the order is total."""
    if entry.login_seq is None:
        return (0, entry.login_epoch, entry.last_seen_epoch, entry.device_id)
    return (1, entry.login_seq, 0, entry.device_id)
