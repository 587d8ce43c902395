"""The usernames of the accounts whose pages this process showed lately, by user_uuid: an account's page
shows its username's lockout, which is keyed by the username (SPEC §6), while the page's URL names only
the user_uuid. Knowing the username, the page reads the lockout in the same BatchGetItem as the account
instead of one call after it. What is kept here only says which lockout item to read: the page checks it
against the username of the account record read beside it, strongly consistent, and reads the right one
on a mismatch, so nothing shown is ever stale."""
from __future__ import annotations

import threading
from collections import OrderedDict

from common.slots import Slot
from common.runtime.context import AppContext

MAX_KEPT = 4096  # accounts: a few hundred kilobytes at most


class RecentUsernames:
    """A bounded, thread-safe map user_uuid -> username, the least recently used dropped first."""

    def __init__(self, *, max_kept: int = MAX_KEPT) -> None:
        self._kept: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_kept

    def get(self, user_uuid: str) -> str | None:
        with self._lock:
            username = self._kept.get(user_uuid)
            if username is not None:
                self._kept.move_to_end(user_uuid)
            return username

    def remember(self, user_uuid: str, username: str) -> None:
        with self._lock:
            self._kept[user_uuid] = username
            self._kept.move_to_end(user_uuid)
            while len(self._kept) > self._max:
                self._kept.popitem(last=False)

    def forget(self, user_uuid: str) -> None:
        """An account gone or being deleted: its username is not kept."""
        with self._lock:
            self._kept.pop(user_uuid, None)


RECENT_USERNAMES: Slot[RecentUsernames] = Slot("operators.usernames")


def recent_usernames(ctx: AppContext) -> RecentUsernames:
    """This app's one RecentUsernames, made at its first use."""
    return ctx.slots.get_or_make(RECENT_USERNAMES, RecentUsernames)
