"""RFC 8935 push (SPEC §11): each SET POSTed to the app's push URL as `application/secevent+jwt`;
202 means delivered (acknowledged, never sent again), anything else is retried with backoff, from
whichever process holds the app's lease, for as long as the event is kept (24 hours).

Every process that serves /ssf runs one pusher (CITYLOGIN_SSF_PUSH_INTERVAL > 0). It knows the apps
with a push URL from the process's copy of the registry (relying_parties.registry: an app added or changed by the
CLI or the admin API is known, and pushed to, within a second); for each it takes or renews a lease in
the app's stream item (one conditional write per app per RENEW_SECONDS), so one process pushes to an app at a
time and another takes over within LEASE_SECONDS of its death. The holder pushes when the process's
feed reader brings new events, when a backoff is over, and once on taking the lease (catching up);
otherwise it reads nothing. A push is at least once: a process that dies between the receiver's 202
and the acknowledgement's write sends the event again (receivers dedupe by jti).

What is pushed, to which apps and on which stream item is a Channel: RFC 8935 SETs here (SetPush);
OpenID Connect Back-Channel Logout tokens (oidc.logout.backchannel) ride the same machinery, each channel with
its own cursor, acknowledgements and lease per app.

Each app's failure is its own: an app whose delivery raises is backed off and logged, and the others
are pushed to as before (a record that cannot be read is never listed: relying_parties.store).

Retries and recovery. A failed delivery backs the app off (1 s doubling to
CITYLOGIN_SSF_PUSH_BACKOFF_MAX, 5 minutes by default, jittered), but a backoff only spaces out the
retries of what is already pending: each read of the feed that brings new events gives every backed-off
app a prompt try at once. That try is the app's whole pending batch from its cursor, oldest first, the
same push as any other: the backlog goes first and the new event right after it, so an app that answers
again hears the new logout within the feed's interval plus the time its backlog takes, and in the
stream's order (the order is the feed's, as for an app that never failed; the price of the order is that
a long backlog comes before the new event, at a few milliseconds an event). If the app is still down the
try ends at its first failure (one refused connection, or one PUSH_DEADLINE) and the backoff grows.

What a dead app costs the others. The pusher thread only decides (leases, what is due) and hands each
push to a worker: at most one push per app in flight, so a dead app has at most one try running however
many events come, one per feed read that brings any. Apps whose last push failed are pushed by workers of
their own (RETRY_WORKERS), apart from the healthy apps' (PUSH_WORKERS): a dead or hung app's timeouts
never hold up a push to an app that answers, except for its one first failure, which it spends as a
healthy app. What is left: an app back from an outage is tried on the retry workers, so with more
than RETRY_WORKERS other apps hanging at that moment its try waits for one of theirs to time out."""
from __future__ import annotations

import logging
import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Protocol

from common.outbound.fetch import FetchFailed
from relying_parties import delivery, outbound, security_events
from relying_parties.models import AppRecord
from relying_parties.registry import Snapshot, app_registry
from relying_parties.stream_store import StreamStore
from common.errors import ApiError
from common.log_bursts import BurstLog, BurstLogs
from common.slots import Slot
from common.thread_kind import scheduled_thread
from common.database import dynamo
from sessions import service as sessions
from sessions.models import SessionEnded
from common.runtime.context import AppContext

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
RENEW_SECONDS = 10.0
BATCH = 50
PUSH_DEADLINE = 5.0  # seconds for one delivery, connect to last byte of the answer (common.outbound)
BACKOFF_FIRST = 1.0  # then doubling, up to the setting CITYLOGIN_SSF_PUSH_BACKOFF_MAX (300 s)
PUSH_WORKERS, RETRY_WORKERS = 4, 4  # pushes at once to apps that answer, and to apps whose last push failed
SECEVENT = "application/secevent+jwt"


class Channel(Protocol):
    """One kind of push: which apps get it, the app's stream item (cursor, acknowledgements, lease),
    and the delivery of one event (True: delivered, or nothing for this app to hear)."""

    name: str

    def wants(self, app: AppRecord) -> bool: ...

    def key(self, app: AppRecord) -> str: ...

    def deliver(self, event: SessionEnded, app: AppRecord) -> bool: ...


class SetPush:
    """RFC 8935: every session end, as a CAEP session-revoked SET, to each app with a push URL."""

    name = "ssf-push"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._failures = BurstLogs(log)  # why a delivery failed, once a burst per app (the app is not told)

    def wants(self, app: AppRecord) -> bool:
        return bool(app.push_url)

    def key(self, app: AppRecord) -> str:
        return app.client_id

    def deliver(self, event: SessionEnded, app: AppRecord) -> bool:
        token = security_events.session_revoked(self.ctx.jwt, event, app)
        try:
            answer = outbound.post(self.ctx.settings, app, app.push_url or "", body=token.encode(),
                                   deadline_seconds=PUSH_DEADLINE,
                                   headers={"Content-Type": SECEVENT, "Accept": "application/json"})
        except FetchFailed as failed:
            self._failures.log(app.client_id, logging.WARNING, "%s to app %s: %s", self.name, app.client_id,
                               failed.reason)
            return False
        return answer.status == 202


@dataclass
class _Target:
    """What this process knows of one push app."""

    app: AppRecord
    lease_until: float = 0.0
    due: bool = True           # push at the next turn: new events, a backoff over, or a new lease
    fresh: bool = False        # new events since the last push began: push now, backed off or not
    busy: bool = False         # a worker is pushing to it (one push per app at a time)
    failures: int = 0
    retry_at: float = 0.0
    errors: BurstLog | None = None  # this app's unexpected failures, one line per burst


class _Workers:
    """A few daemon threads that run `work` on the targets handed to them, in the order handed."""

    def __init__(self, name: str, count: int, work: Callable[[_Target], None]) -> None:
        self.name, self.count, self.work = name, count, work
        self._queue: queue.SimpleQueue[_Target | None] = queue.SimpleQueue()
        self._started = False

    def put(self, target: _Target) -> None:
        if not self._started:  # a process with no push app starts none
            self._started = True
            for number in range(self.count):
                threading.Thread(target=self._run, name=f"{self.name}-{number}", daemon=True).start()
        self._queue.put(target)

    def stop(self) -> None:
        for _ in range(self.count if self._started else 0):
            self._queue.put(None)

    def _run(self) -> None:
        scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
        while (target := self._queue.get()) is not None:
            self.work(target)


class Pusher:
    def __init__(self, ctx: AppContext, *, interval: float, channel: Channel | None = None,
                 backoff_first: float = BACKOFF_FIRST, backoff_max: float | None = None) -> None:
        self.ctx, self.interval = ctx, interval
        self.channel: Channel = channel or SetPush(ctx)
        self.backoff_first = backoff_first
        self.backoff_max = ctx.settings.ssf_push_backoff_max if backoff_max is None else backoff_max
        self.owner = f"{uuid.uuid4()}"  # this process, in the leases it holds
        self._targets: dict[str, _Target] = {}
        self._known: Snapshot | None = None  # the registry's snapshot the targets were made from
        self._woken_by_registry = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._listening = False
        self._log = BurstLog(log)
        name = f"citylogin-{self.channel.name}"
        self._pushing = _Workers(name, PUSH_WORKERS, self._work)
        self._retrying = _Workers(name + "-retry", RETRY_WORKERS, self._work)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._pushing.stop()
        self._retrying.stop()

    def run(self) -> None:
        scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
        while not self._stop.is_set():
            self._wake.clear()  # before the turn: a wake during it (an event, a push done) is kept
            try:
                self.turn()
            except Exception as exc:
                if dynamo.is_unavailable(exc) or isinstance(exc, ApiError):
                    self._log.log(logging.WARNING, "push: DynamoDB unavailable (%s)", type(exc).__name__)
                else:
                    self._log.log(logging.ERROR, "push turn failed", exc_info=True)
            self._wake.wait(self.interval)

    def _on_events(self, ended: list[SessionEnded]) -> None:
        if ended:
            for target in list(self._targets.values()):
                target.due = target.fresh = True
            self._wake.set()

    def turn(self) -> None:
        registry = app_registry(self.ctx)
        if not self._woken_by_registry:
            registry.listen(lambda _snapshot: self._wake.set())  # a change wakes the pusher at once
            self._woken_by_registry = True
        snapshot = registry.current()
        if snapshot is not self._known:
            self._retarget(snapshot)
            self._known = snapshot
        for target in list(self._targets.values()):
            if self._stop.is_set():
                return
            try:
                if self._hold(target) and self._ready(target):
                    self._start(target)
            except Exception as exc:
                self._failed(target, exc)

    @staticmethod
    def _ready(target: _Target) -> bool:
        """Due and not being pushed to: at once if new events came (the prompt try), else once its
        backoff is over."""
        return (target.due and not target.busy
                and (target.fresh or time.monotonic() >= target.retry_at))

    def _start(self, target: _Target) -> None:
        # Cleared before the worker reads: an event the feed brings while this push runs (after its
        # read) makes the app due (and fresh) again, instead of being wiped out by the end of this push.
        target.busy, target.due, target.fresh = True, False, False
        (self._retrying if target.failures else self._pushing).put(target)

    def _work(self, target: _Target) -> None:
        """A worker's push to one app; whatever happens, the app is free for its next push after."""
        try:
            if not self._stop.is_set():
                self._push_pending(target)
        except Exception as exc:
            target.due = True
            self._failed(target, exc)
        finally:
            target.busy = False
            if target.fresh:  # events came during this push: the turn that saw them skipped the app
                self._wake.set()

    def _failed(self, target: _Target, exc: Exception) -> None:
        """One app's turn raised: the other apps' turns go on. An outage is retried at the next turn;
        anything else is this app's, logged and backed off like a failed delivery."""
        if dynamo.is_unavailable(exc) or isinstance(exc, ApiError):
            self._log.log(logging.WARNING, "push: DynamoDB unavailable (%s)", type(exc).__name__)
            return
        target.errors = target.errors or BurstLog(log)
        target.errors.log(logging.ERROR, "%s to app %s failed", self.channel.name, target.app.client_id,
                          exc_info=True)
        self._back_off(target, quiet=True)

    def _retarget(self, snapshot: Snapshot) -> None:
        apps = {app.client_id: app for app in snapshot.apps if self._wanted(app)}
        self._targets = {cid: self._targets.get(cid) or _Target(app) for cid, app in apps.items()}
        for cid, target in self._targets.items():
            if target.app != apps[cid]:  # a changed record (a new URL): tried at once, backed off or not
                target.app, target.due, target.fresh = apps[cid], True, True
        if self._targets and not self._listening:
            sessions.event_feed(self.ctx).listen(self._on_events)
            self._listening = True

    def _hold(self, target: _Target) -> bool:
        """Whether this process holds the app's lease (taking or renewing it when due)."""
        wall = time.time()
        if target.lease_until - wall > LEASE_SECONDS - RENEW_SECONDS:
            return True
        store = StreamStore(self.ctx.dynamodb, self.ctx.tables.app_streams)
        held = store.take_lease(self.channel.key(target.app), owner=self.owner, now=wall,
                                until=wall + LEASE_SECONDS)
        if held and target.lease_until < wall:
            target.due = True  # newly ours: catch up on what the last holder left
        target.lease_until = wall + LEASE_SECONDS if held else 0.0
        return held

    def _push_pending(self, target: _Target) -> None:
        delivered: set[str] = set()
        key = self.channel.key(target.app)
        while True:
            pending = delivery.exchange(self.ctx, target.app, acks=delivered, max_events=BATCH, key=key)
            delivered = set()
            for event in pending.events:
                if not self.channel.deliver(event, target.app):
                    self._back_off(target)
                    if delivered:
                        delivery.exchange(self.ctx, target.app, acks=delivered, max_events=0, key=key)
                    return
                delivered.add(event.seq)
            if not delivered:
                break
            if not pending.more:
                delivery.exchange(self.ctx, target.app, acks=delivered, max_events=0, key=key)
                break
        target.failures, target.retry_at = 0, 0.0

    def _wanted(self, app: AppRecord) -> bool:
        try:
            return self.channel.wants(app)
        except Exception:  # one app's odd record must not keep the others from their pushes
            self._log.log(logging.ERROR, "%s: app %s left out", self.channel.name, app.client_id, exc_info=True)
            return False

    def _back_off(self, target: _Target, *, quiet: bool = False) -> None:
        target.failures += 1
        step = self.backoff_first * 2 ** min(target.failures - 1, 30)
        delay = min(self.backoff_max, step) * random.uniform(0.8, 1.2)
        target.retry_at = time.monotonic() + delay
        target.due = True
        if not quiet:
            self._log.log(logging.WARNING, "%s to app %s failed (%d in a row); next try in %.0f s or at the next event",
                          self.channel.name, target.app.client_id, target.failures, delay)


_lock = threading.Lock()
# This app context's running Pushers, by channel name (ssf-push, backchannel-logout).
PUSHERS: Slot[dict[str, Pusher]] = Slot("apps.pushers")


def running_pusher(ctx: AppContext, channel: str) -> Pusher | None:
    with _lock:
        return (ctx.slots.get(PUSHERS) or {}).get(channel)


def start_pusher(ctx: AppContext, channel: Channel | None = None) -> None:
    """Start this app context's pusher of `channel` (RFC 8935 SETs by default) once; none if
    CITYLOGIN_SSF_PUSH_INTERVAL is 0."""
    interval = ctx.settings.ssf_push_interval
    channel = channel or SetPush(ctx)
    with _lock:
        pushers = ctx.slots.get_or_make(PUSHERS, dict)
        if interval <= 0 or channel.name in pushers:
            return
        pusher = pushers[channel.name] = Pusher(ctx, interval=interval, channel=channel)
    threading.Thread(target=pusher.run, name=f"citylogin-{channel.name}", daemon=True).start()


def stop_pushers(ctx: AppContext) -> None:
    with _lock:
        pushers = list((ctx.slots.take(PUSHERS) or {}).values())
    for pusher in pushers:
        pusher.stop()
