"""Logging for failures that repeat in bursts (an outage fails every request): the first one is
logged, then at most one line per window saying how many were left out."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

BURST_WINDOW = 60.0  # seconds


class BurstLog:
    """A logger that writes at most one line per `window` seconds and counts the rest."""

    def __init__(self, logger: logging.Logger, *, window: float = BURST_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.window, self.clock = logger, window, clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._suppressed = 0

    def log(self, level: int, message: str, *args: Any, exc_info: Any = None) -> bool:
        """Log `message` unless a line went out less than `window` seconds ago; True if it was logged."""
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last < self.window:
                self._suppressed += 1
                return False
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        if suppressed:
            message += " (%d more like it since the last report)"
            args = (*args, suppressed)
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True


class BurstLogs:
    """A BurstLog per key (an app): one app's failing in bursts never hides another's first line."""

    MAX_KEYS = 10_000

    def __init__(self, logger: logging.Logger, *, window: float = BURST_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.window, self.clock = logger, window, clock
        self._lock = threading.Lock()
        self._logs: dict[str, BurstLog] = {}

    def log(self, key: str, level: int, message: str, *args: Any) -> bool:
        with self._lock:
            if len(self._logs) >= self.MAX_KEYS and key not in self._logs:
                self._logs.clear()
            burst = self._logs.setdefault(key, BurstLog(self.logger, window=self.window, clock=self.clock))
        return burst.log(level, message, *args)


class BurstFilter(logging.Filter):
    """A logging filter for another library's logger (botocore's failed credential refreshes): one
    record per `window` seconds, without its traceback (the burst's own line names the cause)."""

    def __init__(self, *, window: float = BURST_WINDOW, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window, self.clock = window, clock
        self._lock = threading.Lock()
        self._last: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            now = self.clock()
            if self._last is not None and now - self._last < self.window:
                return False
            self._last = now
        record.exc_info = record.exc_text = None
        return True
