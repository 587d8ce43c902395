"""Live session events (SPEC §4 GET /session/events): one watcher per process polls the
watched sessions in batches and wakes their streams.

Cost: ceil(watched sessions / 100) strongly consistent BatchGetItem calls per poll interval,
whatever the number of open streams, instead of one read per stream per second."""
from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict
from typing import Callable

from common import dynamo
from common.log_bursts import BurstLog
from common.metrics import EVENT_STREAMS

log = logging.getLogger(__name__)

BATCH = 100  # BatchGetItem's limit

# session_id -> fields (status, revoked_reason, by_device, expires_epoch, last_seen_epoch), or None if gone
FetchStates = Callable[[list[str]], dict[str, dict]]
EndReason = Callable[[dict], "str | None"]


class Subscription:
    """One open stream's mailbox: receives at most one ending event."""

    def __init__(self, watcher: "SessionWatcher", session_id: str) -> None:
        self.watcher, self.session_id = watcher, session_id
        self.events: queue.Queue[dict] = queue.Queue(maxsize=1)
        self._open = True
        EVENT_STREAMS.inc()

    def wait(self, timeout: float) -> dict | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.watcher.unsubscribe(self)
        if self._open:
            self._open = False
            EVENT_STREAMS.dec()


class SessionWatcher:
    def __init__(self, *, fetch_states: FetchStates, end_reason: EndReason, interval: float) -> None:
        self.fetch_states, self.end_reason, self.interval = fetch_states, end_reason, interval
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._outage_log, self._failure_log = BurstLog(log), BurstLog(log)

    def subscribe(self, session_id: str) -> Subscription:
        subscription = Subscription(self, session_id)
        with self._lock:
            self._subscribers[session_id].add(subscription)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="session-watcher", daemon=True)
                self._thread.start()
            self._wake.notify()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            subscribers = self._subscribers.get(subscription.session_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[subscription.session_id]

    def watched(self) -> list[str]:
        with self._lock:
            return list(self._subscribers)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._subscribers:
                    self._wake.wait()
            self._poll_surviving()
            threading.Event().wait(self.interval)

    def _poll_surviving(self) -> None:
        # The watcher must outlive a DynamoDB outage (streams keep waiting, polling resumes by itself)
        # and must not write a line per poll while it lasts.
        try:
            self.poll_once()
        except Exception as exc:
            if dynamo.is_unavailable(exc):
                self._outage_log.log(logging.WARNING, "session watcher: DynamoDB unavailable (%s)",
                                     type(exc).__name__)
            else:
                self._failure_log.log(logging.ERROR, "session watcher poll failed", exc_info=True)

    def poll_once(self) -> None:
        ids = self.watched()
        for start in range(0, len(ids), BATCH):
            chunk = ids[start:start + BATCH]
            states = self.fetch_states(chunk)
            for session_id in chunk:
                state = states.get(session_id)
                reason = self.end_reason(state) if state else "logged_out"
                if reason:
                    self._deliver(session_id, {"reason": reason, **({"by_device": state["by_device"]}
                                                                     if state and state.get("by_device") else {})})

    def _deliver(self, session_id: str, event: dict) -> None:
        with self._lock:
            subscribers = self._subscribers.pop(session_id, set())
        for subscription in subscribers:
            try:
                subscription.events.put_nowait(event)
            except queue.Full:
                pass
