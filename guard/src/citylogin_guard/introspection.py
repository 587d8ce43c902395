"""The fallback when the feed is stale: ask citylogin about the token (RFC 7662), keeping an active
answer at most a second, so that a revocation is still refused within a second. An inactive answer
is final (a token never becomes active again): it is kept until the token expires, so the guard
goes on refusing it with 401 while citylogin is unreachable."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, NamedTuple

MAX_AGE = 1.0
MAX_ENTRIES = 10_000


class Answer(NamedTuple):
    """What the guard keeps of citylogin's answer: whether the token is active, and for a token
    bound to a key (DPoP) that key's thumbprint (`cnf.jkt`), which the request's proof must match."""

    active: bool
    jkt: str | None


class IntrospectionCache:
    """token -> (asked at, answer) for active answers; token -> expiry (epoch seconds) for inactive
    ones. The oldest entries go first when either is full."""

    def __init__(self, introspect: Callable[[str], dict[str, Any]], *, max_age: float = MAX_AGE) -> None:
        self._introspect = introspect
        self._max_age = max_age
        self._answers: dict[str, tuple[float, Answer]] = {}
        self._inactive: dict[str, float] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> Answer | None:
        """The answer if an inactive one, or an active one younger than max_age, is kept, else None."""
        expires_at = self._inactive.get(token)
        if expires_at is not None and time.time() <= expires_at:
            return INACTIVE
        answer = self._answers.get(token)
        if answer is None or time.monotonic() - answer[0] > self._max_age:
            return None
        return answer[1]

    def answer(self, token: str, *, expires_at: float) -> Answer:
        """What citylogin says of the token (which expires at `expires_at`, epoch seconds);
        TransmitterUnreachable if it cannot say."""
        known = self.cached(token)
        if known is not None:
            return known
        asked_at = time.monotonic()
        answer = _answer(self._introspect(token))
        with self._lock:
            if not answer.active:
                if len(self._inactive) >= MAX_ENTRIES:
                    self._forget_expired()
                self._inactive[token] = expires_at
                self._answers.pop(token, None)
                return answer
            if len(self._answers) >= MAX_ENTRIES:
                self._forget_old(asked_at)
            self._answers[token] = (asked_at, answer)
        return answer

    def _forget_old(self, now: float) -> None:
        stale = [t for t, (asked_at, _) in self._answers.items() if now - asked_at > self._max_age]
        for token in stale or list(self._answers)[: MAX_ENTRIES // 2]:
            del self._answers[token]

    def _forget_expired(self) -> None:
        now = time.time()
        expired = [t for t, expires_at in self._inactive.items() if now > expires_at]
        for token in expired or list(self._inactive)[: MAX_ENTRIES // 2]:
            del self._inactive[token]


INACTIVE = Answer(False, None)


def _answer(body: dict[str, Any]) -> Answer:
    active = body.get("active") is True
    cnf = body.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if active and "cnf" in body and not isinstance(jkt, str):
        active = False  # bound to something the guard cannot check: never taken as a bearer token
    return Answer(active, jkt if isinstance(jkt, str) else None)
