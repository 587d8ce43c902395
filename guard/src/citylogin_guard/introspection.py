"""The fallback when the feed is stale: ask citylogin about the token (RFC 7662), keeping each
answer at most a second, so that a revocation is still refused within a second."""
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
    """token -> (asked at, answer); the oldest entries go first when it is full."""

    def __init__(self, introspect: Callable[[str], dict[str, Any]], *, max_age: float = MAX_AGE) -> None:
        self._introspect = introspect
        self._max_age = max_age
        self._answers: dict[str, tuple[float, Answer]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> Answer | None:
        """The answer if one younger than max_age is kept, else None."""
        answer = self._answers.get(token)
        if answer is None or time.monotonic() - answer[0] > self._max_age:
            return None
        return answer[1]

    def answer(self, token: str) -> Answer:
        """What citylogin says of the token; TransmitterUnreachable if it cannot say."""
        known = self.cached(token)
        if known is not None:
            return known
        asked_at = time.monotonic()
        answer = _answer(self._introspect(token))
        with self._lock:
            if len(self._answers) >= MAX_ENTRIES:
                self._forget_old(asked_at)
            self._answers[token] = (asked_at, answer)
        return answer

    def _forget_old(self, now: float) -> None:
        stale = [t for t, (asked_at, _) in self._answers.items() if now - asked_at > self._max_age]
        for token in stale or list(self._answers)[: MAX_ENTRIES // 2]:
            del self._answers[token]


def _answer(body: dict[str, Any]) -> Answer:
    active = body.get("active") is True
    cnf = body.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if active and "cnf" in body and not isinstance(jkt, str):
        active = False  # bound to something the guard cannot check: never taken as a bearer token
    return Answer(active, jkt if isinstance(jkt, str) else None)
