"""The sessions the feed says have ended, and the app grants on live sessions, each kept only while a
token of it could still be valid."""
from __future__ import annotations

import threading
import time
from typing import Callable


class EndedSessions:
    """session id -> (when to forget it, the reason citylogin gave). Read without a lock (one dict
    lookup per request); written by the feed's thread."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._ended: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def add(self, session_id: str, *, forget_at: float, reason: str | None) -> None:
        with self._lock:
            known = self._ended.get(session_id)
            if known is None or known[0] < forget_at:
                self._ended[session_id] = (forget_at, reason)

    def reason(self, session_id: str) -> tuple[bool, str | None]:
        """(ended?, the reason if the event gave one)."""
        known = self._ended.get(session_id)
        return (False, None) if known is None else (True, known[1])

    def prune(self) -> int:
        """Forgets the sessions past their time; returns how many are still kept."""
        now = self._clock()
        with self._lock:
            for session_id in [s for s, (forget_at, _) in self._ended.items() if forget_at <= now]:
                del self._ended[session_id]
            return len(self._ended)

    def __len__(self) -> int:
        return len(self._ended)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._ended


class EndedGrants(EndedSessions):
    """grant id -> (when to forget it, the reason citylogin gave): the app's sign-ins on sessions that
    go on, whose access tokens (their jti names the grant) are refused."""
