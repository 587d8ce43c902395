"""Where the guard remembers the DPoP proofs it accepted, so that none is accepted twice (RFC 9449
§11.1): a ReplayStore. The default, MemoryReplayStore, is this process's alone."""
from __future__ import annotations

import heapq
import threading
import time
from typing import Callable, Protocol, runtime_checkable

# A process accepting 3,000 bound requests a second for the 61 s a proof lives stays under this
# (about 20 MB); past it, new proofs are refused until old ones expire, never taken unremembered.
MAX_ENTRIES = 200_000


@runtime_checkable
class ReplayStore(Protocol):
    """One store shared by every process and host of an app closes the replay the per-process
    default leaves open (a proof spent here, replayed to another process within 60 s)."""

    def spend(self, key: str, ttl: int) -> bool:
        """Remember `key` for `ttl` seconds; True if it was not remembered already. Must be atomic
        across the store's users: Redis `SET <key> 1 NX EX <ttl>` (True when it answers OK) is one."""
        ...


class MemoryReplayStore:
    """key -> when it may be forgotten, with a heap of those times to forget in order; one lock,
    held for a dictionary insert and the expired entries' removal."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_entries = max_entries
        self._clock = clock
        self._spent: dict[str, float] = {}
        self._expiries: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def spend(self, key: str, ttl: int) -> bool:
        """True if `key` was not spent in the last `ttl` seconds; False if it was, or if the store is
        full (it cannot promise the key is new without remembering it)."""
        now = self._clock()
        with self._lock:
            self._forget_expired(now)
            if key in self._spent or len(self._spent) >= self._max_entries:
                return False
            self._spent[key] = now + ttl
            heapq.heappush(self._expiries, (now + ttl, key))
            return True

    def _forget_expired(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            _, key = heapq.heappop(self._expiries)
            del self._spent[key]

    def __len__(self) -> int:
        return len(self._spent)
