"""The process's one reader of the security events feed (SPEC §11): while anyone listens, one
strongly consistent Query every `interval` of the last WINDOW seconds of session ends, whatever the
number of open streams, waiting polls, apps or sessions. Each event is handed once to every listener.

An event's seq carries the clock of the host that wrote it, and a transaction commits a little after
that moment: reading a trailing window (not "since the last seq seen") lets an event that commits
late, or from a host whose clock is a few seconds behind, still be seen. Hosts' clocks must agree
within WINDOW seconds (NTP)."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from common.log_bursts import BurstLog
from common.thread_kind import scheduled_thread
from common.database import dynamo
from sessions.feed_store import FeedStore
from sessions.models import SessionEnded, seq_at, seq_epoch_ms

log = logging.getLogger(__name__)

WINDOW_SECONDS = 10.0

# Called after every read with the events not handed out before (often none): listeners also use it
# as their clock tick.
Listener = Callable[[list[SessionEnded]], None]


class EventFeed:
    def __init__(self, store: FeedStore, *, interval: float, now: Callable[[], float]) -> None:
        self.store, self.interval, self.now = store, interval, now
        self._listeners: list[Listener] = []
        self._seen: dict[str, int] = {}  # seq -> epoch ms, within the window
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._generation = 0  # how many reads brought something new
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._outage_log, self._failure_log = BurstLog(log), BurstLog(log)

    def listen(self, listener: Listener) -> None:
        """Hand `listener` every new event from now on (and start reading)."""
        with self._lock:
            self._listeners.append(listener)
        self.start()

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-feed", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def generation(self) -> int:
        with self._lock:
            return self._generation

    def wait_for_new(self, generation: int, timeout: float) -> bool:
        """Block until a read brings events after `generation` (True), or `timeout` passes."""
        self.start()
        with self._arrived:
            return self._arrived.wait_for(lambda: self._generation != generation, timeout=timeout)

    def _run(self) -> None:
        scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
        while not self._stop.is_set():
            self._read_surviving()
            self._stop.wait(self.interval)

    def _read_surviving(self) -> None:
        # The reader outlives a DynamoDB outage (reading resumes by itself) without a line per read.
        try:
            new = self.read_once()
        except Exception as exc:
            if dynamo.is_unavailable(exc):
                self._outage_log.log(logging.WARNING, "event feed: DynamoDB unavailable (%s)", type(exc).__name__)
            else:
                self._failure_log.log(logging.ERROR, "event feed read failed", exc_info=True)
            new = []
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(new)
            except Exception:
                self._failure_log.log(logging.ERROR, "event feed listener failed", exc_info=True)

    def read_once(self) -> list[SessionEnded]:
        """The events of the window not seen before, oldest first."""
        start_ms = int((self.now() - WINDOW_SECONDS) * 1000)
        events = list(self.store.after(seq_at(start_ms)))
        with self._lock:
            new = [e for e in events if e.seq not in self._seen]
            self._seen = {seq: ms for seq, ms in self._seen.items() if ms >= start_ms}
            self._seen.update((e.seq, seq_epoch_ms(e.seq)) for e in new)
            if new:
                self._generation += 1
                self._arrived.notify_all()
        return new
