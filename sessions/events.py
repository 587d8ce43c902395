"""Live session events (SPEC §4 GET /session/events): one watcher per process wakes the streams
of the sessions that end, from the process's one reader of the security events feed (sessions.feed).

Cost: the feed's one Query per interval, whatever the number of open streams; and, for a session
that may end without a write (its idle timeout or max lifetime passing), one batched read when that
moment comes, then again at its next possible end if it was used meanwhile.

The watcher also caps the streams (docs/guides/production.md, "Event streams"): a session and a user
keep at most `per_session` and `per_user` streams in this process (a new one beyond either cap replaces
the oldest, which ends with `stream_replaced`), and the process keeps at most `per_process`,
refusing one more (TooManyStreams): under a server that holds a thread per stream, so that threads
stay free for ordinary requests; under citylogin's gunicorn worker, whose streams hold no thread,
to bound the open files."""
from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Collection

from common.log_bursts import BurstLog
from common.database import dynamo
from sessions.feed import WINDOW_SECONDS
from sessions.models import EndedBy, SessionEnded
from common.web.metrics import EVENT_STREAMS

log = logging.getLogger(__name__)

BATCH = 100  # BatchGetItem's limit

# session_id -> fields (status, revoked_reason, by_device, EndedBy's, expires_epoch, last_seen_epoch), or None if gone
FetchStates = Callable[[list[str]], dict[str, dict[str, Any]]]
EndReason = Callable[[dict[str, Any]], "str | None"]
Deadline = Callable[[dict[str, Any]], int]  # the first moment (epoch s) a live session's fields could make it end

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
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(maxsize=1)
        # called (on the feed's thread) once the ending is in the mailbox: how a server that holds
        # no thread per stream learns it has something to send
        self.notify: Callable[[], None] | None = None
        self._open = True
        EVENT_STREAMS.inc()

    def wait(self, timeout: float) -> tuple[str, dict[str, Any]] | None:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def poll(self) -> tuple[str, dict[str, Any]] | None:
        """The ending, if it came; never waits."""
        try:
            return self.events.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        self.watcher.unsubscribe(self)
        if self._open:
            self._open = False
            EVENT_STREAMS.dec()


class SessionWatcher:
    """Fed by EventFeed.listen(watcher.on_events); `now()` in epoch seconds."""

    def __init__(self, *, fetch_states: FetchStates, end_reason: EndReason, deadline: Deadline, caps: StreamCaps,
                 now: Callable[[], float]) -> None:
        self.fetch_states, self.end_reason, self.deadline, self.caps = fetch_states, end_reason, deadline, caps
        self.now = now
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._by_user: dict[str, set[Subscription]] = defaultdict(set)
        self._check_at: dict[str, float] = {}  # session_id -> when to read it, lest it ended without a write
        # session_id -> (heard at, event): a stream opening late
        self._recent: dict[str, tuple[float, dict[str, Any]]] = {}
        self._count = 0
        self._lock = threading.Lock()
        self._failure_log = BurstLog(log)

    def subscribe(self, session_id: str, user_uuid: str, *, check_at: float) -> Subscription:
        """A new stream's mailbox; the oldest streams beyond the session's and the user's caps are
        told `stream_replaced` and let go at once. TooManyStreams if the process is full.
        `check_at`: the session's first possible end without a write (idle timeout, max lifetime)."""
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
            self._check_at[session_id] = min(check_at, self._check_at.get(session_id, check_at))
            heard = self._recent.get(session_id)
        if heard:  # it ended between the request's check and now
            self._deliver(session_id, heard[1])
        return subscription

    @staticmethod
    def _oldest(streams: Collection[Subscription], cap: int) -> list[Subscription]:
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
                    if index is self._subscribers:
                        self._check_at.pop(key, None)

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._forget(subscription)

    def watched(self) -> list[str]:
        with self._lock:
            return list(self._subscribers)

    def on_events(self, ended: list[SessionEnded]) -> None:
        """The feed's tick: wake the streams of the sessions that ended, then read the sessions
        whose idle timeout or max lifetime may have come."""
        ended = [event for event in ended if event.session_ended]  # an app's grant ending is not the session's
        now = self.now()
        with self._lock:
            for event in ended:
                self._recent[event.session_id] = (now, _payload(event.reason, event.by_device, event.ended_by))
            self._recent = {sid: heard for sid, heard in self._recent.items() if heard[0] > now - WINDOW_SECONDS}
        for event in ended:
            self._deliver(event.session_id, _payload(event.reason, event.by_device, event.ended_by))
        try:
            self.check_due(now)
        except Exception as exc:
            if not dynamo.is_unavailable(exc):  # an outage is the feed's to report, once
                self._failure_log.log(logging.ERROR, "session watcher check failed", exc_info=True)

    def check_due(self, now: float) -> None:
        with self._lock:
            due = [sid for sid, at in self._check_at.items() if at <= now]
        for start in range(0, len(due), BATCH):
            chunk = due[start:start + BATCH]
            states = self.fetch_states(chunk)
            for session_id in chunk:
                state = states.get(session_id)
                reason = self.end_reason(state) if state else "logged_out"
                if reason:
                    self._deliver(session_id, _state_payload(reason, state))
                elif state:
                    with self._lock:
                        if session_id in self._check_at:
                            self._check_at[session_id] = self.deadline(state)

    def _deliver(self, session_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(session_id, ()))
            for subscription in subscribers:
                self._forget(subscription)
        for subscription in subscribers:
            _offer(subscription, (REVOKED, event))


class LiveStream:
    """One open GET /session/events (common.web.serving.DrivenStream): `retry`, a heartbeat every
    `heartbeat` seconds, and one last event: `session_revoked` {reason, by_device?, admin_action?, by_app?,
    by_app_name?} when the session ends, `token_expired` when the access token does (reconnect with a new
    one), or `stream_replaced` when a newer stream of the session or user took its place. Driven by the
    server: the thread that answered (wait, advance), or citylogin's gunicorn worker, which holds
    no thread per stream (on_ready, advance when seconds_to_wake have passed)."""

    def __init__(self, subscription: Subscription, *, now: Callable[[], float], heartbeat: float,
                 token_expires: float) -> None:
        self.subscription, self.now, self.heartbeat, self.token_expires = subscription, now, heartbeat, token_expires
        self._next_beat = now() + heartbeat
        self._ending: tuple[str, dict[str, Any]] | None = None

    def first(self) -> bytes:
        return b"retry: 3000\n\n"

    def advance(self) -> tuple[bytes, bool]:
        """What to send now (maybe nothing), and whether it is the last."""
        ending, self._ending = self._ending or self.subscription.poll(), None
        if ending:
            return _sse(*ending), True
        now = self.now()
        if now >= self.token_expires:
            return _sse("token_expired", {}), True
        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat
            return b": keep-alive\n\n", False  # keeps proxies from closing an idle stream
        return b"", False

    def seconds_to_wake(self) -> float:
        return max(0.0, min(self._next_beat, self.token_expires) - self.now())

    def wait(self, seconds: float) -> None:
        self._ending = self._ending or self.subscription.wait(seconds)

    def on_ready(self, callback: Callable[[], None]) -> None:
        """`callback` (on another thread) once the ending came; at once if it came already."""
        self.subscription.notify = callback
        if not self.subscription.events.empty():
            callback()

    def close(self) -> None:
        self.subscription.close()


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _payload(reason: str, by_device: str | None, ended_by: EndedBy) -> dict[str, Any]:
    """session_revoked's data: {reason, by_device?, admin_action?, by_app?, by_app_name?}."""
    return {"reason": reason, **({"by_device": by_device} if by_device else {}), **ended_by.fields()}


def _state_payload(reason: str, state: dict[str, Any] | None) -> dict[str, Any]:
    """The data of an ending read from the session's record (None: the record is gone)."""
    if not state:
        return _payload(reason, None, EndedBy())
    ended_by = EndedBy(admin_action=state.get("admin_action"), by_app=state.get("by_app"),
                       by_app_name=state.get("by_app_name"))
    return _payload(reason, state.get("by_device"), ended_by)


def _offer(subscription: Subscription, event: tuple[str, dict[str, Any]]) -> None:
    try:
        subscription.events.put_nowait(event)
    except queue.Full:
        return  # it has its ending already
    if subscription.notify is not None:
        subscription.notify()
