"""How many devices may be logged in at once, and what a login over the limit does (SPEC §5).

A pure decision over the user's other live devices; the atomic write that enforces it is
session_manager's versioned presence record."""
from __future__ import annotations

from common.config import ConcurrencyPolicy, EvictionOrder
from common.errors import Conflict, ErrorCode
from session_manager.models import PresenceEntry

IN_USE_MESSAGE = "This account is in use on another device. If you continue, that device will be logged out."


class ConfirmationRequired(Exception):
    """Policy `ask` at the limit: the person must confirm before `active` devices are logged out."""

    def __init__(self, active: list[PresenceEntry]) -> None:
        super().__init__("confirmation required")
        self.active = active


class ConcurrentLoginRejected(Conflict):
    code = ErrorCode.CONCURRENT_LOGIN_REJECTED
    detail = "This account is in use on another device, and only that device may stay logged in."


def choose_evictions(*, policy: ConcurrencyPolicy, limit: int, order: EvictionOrder,
                     others: list[PresenceEntry], force: bool) -> list[PresenceEntry]:
    """The live sessions of other devices that a new login displaces; raises if it may not."""
    if limit == 0 or len(others) < limit:
        return []
    if policy is ConcurrencyPolicy.REJECT:
        raise ConcurrentLoginRejected()
    if policy is ConcurrencyPolicy.ASK and not force:
        raise ConfirmationRequired(others)
    excess = len(others) - limit + 1
    if order is EvictionOrder.LEAST_RECENTLY_USED:
        return sorted(others, key=lambda e: (e.last_seen_epoch, e.login_epoch))[:excess]
    return sorted(others, key=lambda e: (e.login_epoch, e.last_seen_epoch))[:excess]
