"""The fallback when the feed is stale: ask citylogin about the token (RFC 7662), keeping each
answer at most a second, so that a revocation is still refused within a second."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

MAX_AGE = 1.0
MAX_ENTRIES = 10_000


class IntrospectionCache:
    """token -> (asked at, active?); the oldest entries go first when it is full."""

    def __init__(self, introspect: Callable[[str], dict[str, Any]], *, max_age: float = MAX_AGE) -> None:
        self._introspect = introspect
        self._max_age = max_age
        self._answers: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> bool | None:
        """The answer if one younger than max_age is kept, else None."""
        answer = self._answers.get(token)
        if answer is None or time.monotonic() - answer[0] > self._max_age:
            return None
        return answer[1]

    def active(self, token: str) -> bool:
        """Whether citylogin says the token is active; TransmitterUnreachable if it cannot say."""
        known = self.cached(token)
        if known is not None:
            return known
        asked_at = time.monotonic()
        active = self._introspect(token).get("active") is True
        with self._lock:
            if len(self._answers) >= MAX_ENTRIES:
                self._forget_old(asked_at)
            self._answers[token] = (asked_at, active)
        return active

    def _forget_old(self, now: float) -> None:
        stale = [t for t, (asked_at, _) in self._answers.items() if now - asked_at > self._max_age]
        for token in stale or list(self._answers)[: MAX_ENTRIES // 2]:
            del self._answers[token]
