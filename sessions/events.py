"""Live session events (SPEC §4 GET /session/events): one watcher per process polls the
watched sessions in batches and wakes their streams.

Cost: ceil(watched sessions / 100) strongly consistent BatchGetItem calls per poll interval,
whatever the number of open streams, instead of one read per stream per second.

Every open stream holds a server thread, so the watcher also caps them (README "Production
serving"): a session and a user keep at most `per_session` and `per_user` streams in this process
(a new one beyond either cap replaces the oldest, which ends with `stream_replaced`), and the
process keeps at most `per_process`, refusing one more (TooManyStreams) so that threads stay free
for ordinary requests."""
from __future__ import annotations

import logging
import queue
import itertools
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

from common import dynamo
from common.log_bursts import BurstLog
from common.metrics import EVENT_STREAMS

log = logging.getLogger(__name__)

BATCH = 100  # BatchGetItem's limit

# session_id -> fields (status, revoked_reason, by_device, expires_epoch, last_seen_epoch), or None if gone
FetchStates = Callable[[list[str]], dict[str, dict]]
EndReason = Callable[[dict], "str | None"]

REVOKED = "session_revoked"
REPLACED = "stream_replaced"
_order = itertools.count()


@dataclass(frozen=True)
class StreamCaps:
    per_session: int
    per_user: int
    per_process: int


class TooManyStreams(Exception):
    """This process already holds `per_process` streams."""


class Subscription:
    """One open stream's mailbox: receives at most one ending event, as (name, data)."""

    def __init__(self, watcher: "SessionWatcher", session_id: str, user_uuid: str) -> None:
        self.watcher, self.session_id, self.user_uuid = watcher, session_id, user_uuid
        self.order = next(_order)  # older streams are replaced first
        self.events: queue.Queue[tuple[str, dict]] = queue.Queue(maxsize=1)
        self._open = True
        EVENT_STREAMS.inc()

    def wait(self, timeout: float) -> tuple[str, dict] | None:
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
    def __init__(self, *, fetch_states: FetchStates, end_reason: EndReason, interval: float,
                 caps: StreamCaps) -> None:
        self.fetch_states, self.end_reason, self.interval, self.caps = fetch_states, end_reason, interval, caps
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._by_user: dict[str, set[Subscription]] = defaultdict(set)
        self._count = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._outage_log, self._failure_log = BurstLog(log), BurstLog(log)

    def subscribe(self, session_id: str, user_uuid: str) -> Subscription:
        """A new stream's mailbox; the oldest streams beyond the session's and the user's caps are
        told `stream_replaced` and let go at once. TooManyStreams if the process is full."""
        with self._lock:
            replaced = [*self._oldest(self._subscribers.get(session_id, ()), self.caps.per_session)]
            replaced += self._oldest(self._by_user.get(user_uuid, set()) - set(replaced), self.caps.per_user)
            if self._count - len(replaced) >= self.caps.per_process:
                raise TooManyStreams()
            for old in replaced:
                self._forget(old)
                _offer(old, (REPLACED, {}))
            subscription = Subscription(self, session_id, user_uuid)
            self._subscribers[session_id].add(subscription)
            self._by_user[user_uuid].add(subscription)
            self._count += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="session-watcher", daemon=True)
                self._thread.start()
            self._wake.notify()
        return subscription

    @staticmethod
    def _oldest(streams, cap: int) -> list[Subscription]:
        """The streams to replace so that one more fits under `cap`."""
        excess = len(streams) - cap + 1
        return sorted(streams, key=lambda s: s.order)[:excess] if excess > 0 else []

    def _forget(self, subscription: Subscription) -> None:
        """Under the lock: the stream no longer counts, nor hears of its session."""
        for index, key in ((self._subscribers, subscription.session_id), (self._by_user, subscription.user_uuid)):
            streams = index.get(key)
            if streams is not None and subscription in streams:
                streams.discard(subscription)
                if index is self._by_user:
                    self._count -= 1
                if not streams:
                    del index[key]

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._forget(subscription)

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
            subscribers = list(self._subscribers.get(session_id, ()))
            for subscription in subscribers:
                self._forget(subscription)
        for subscription in subscribers:
            _offer(subscription, (REVOKED, event))


def _offer(subscription: Subscription, event: tuple[str, dict]) -> None:
    try:
        subscription.events.put_nowait(event)
    except queue.Full:
        pass  # it has its ending already
