"""RFC 8935 push (SPEC §11): each SET POSTed to the app's push URL as `application/secevent+jwt`;
202 means delivered (acknowledged, never sent again), anything else is retried with backoff, from
whichever process holds the app's lease, for as long as the event is kept (24 hours).

Every process that serves /ssf runs one pusher (CITYLOGIN_SSF_PUSH_INTERVAL > 0). It knows the apps
with a push URL from the process's copy of the registry (apps.registry: an app added or changed by the
CLI or the admin API is known, and pushed to, within a second); for each it takes or renews a lease in
the app's stream item (one conditional write per app per RENEW_SECONDS), so one process pushes to an app at a
time and another takes over within LEASE_SECONDS of its death. The holder pushes when the process's
feed reader brings new events, when a backoff is over, and once on taking the lease (catching up);
otherwise it reads nothing. A push is at least once: a process that dies between the receiver's 202
and the acknowledgement's write sends the event again (receivers dedupe by jti).

What is pushed, to which apps and on which stream item is a Channel: RFC 8935 SETs here (SetPush);
OpenID Connect Back-Channel Logout tokens (oidc.backchannel) ride the same machinery, each channel with
its own cursor, acknowledgements and lease per app.

Each app's failure is its own: an app whose delivery raises is backed off and logged, and the others
are pushed to as before (a record that cannot be read is never listed: apps.store)."""
from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

import requests

from apps import delivery, security_events
from apps.models import AppRecord
from apps.registry import Snapshot, app_registry
from apps.stream_store import StreamStore
from common import dynamo
from common.context import AppContext
from common.errors import ApiError
from common.log_bursts import BurstLog
from common.thread_kind import scheduled_thread
from sessions import service as sessions
from sessions.models import SessionEnded

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
RENEW_SECONDS = 10.0
BATCH = 50
PUSH_TIMEOUT = (2.0, 5.0)  # connect, read
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 300.0
SECEVENT = "application/secevent+jwt"


class Channel(Protocol):
    """One kind of push: which apps get it, the app's stream item (cursor, acknowledgements, lease),
    and the delivery of one event (True: delivered, or nothing for this app to hear)."""

    name: str

    def wants(self, app: AppRecord) -> bool: ...

    def key(self, app: AppRecord) -> str: ...

    def deliver(self, http: requests.Session, event: SessionEnded, app: AppRecord) -> bool: ...


class SetPush:
    """RFC 8935: every session end, as a CAEP session-revoked SET, to each app with a push URL."""

    name = "ssf-push"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def wants(self, app: AppRecord) -> bool:
        return bool(app.push_url)

    def key(self, app: AppRecord) -> str:
        return app.client_id

    def deliver(self, http: requests.Session, event: SessionEnded, app: AppRecord) -> bool:
        token = security_events.session_revoked(self.ctx, event, app)
        try:
            response = http.post(app.push_url or "", data=token, timeout=PUSH_TIMEOUT,
                                 headers={"Content-Type": SECEVENT, "Accept": "application/json"})
            return response.status_code == 202
        except requests.RequestException:
            return False


@dataclass
class _Target:
    """What this process knows of one push app."""

    app: AppRecord
    lease_until: float = 0.0
    due: bool = True           # push at the next turn: new events, a backoff over, or a new lease
    failures: int = 0
    retry_at: float = 0.0
    errors: BurstLog | None = None  # this app's unexpected failures, one line per burst


class Pusher:
    def __init__(self, ctx: AppContext, *, interval: float, channel: Channel | None = None) -> None:
        self.ctx, self.interval = ctx, interval
        self.channel: Channel = channel or SetPush(ctx)
        self.owner = f"{uuid.uuid4()}"  # this process, in the leases it holds
        self._targets: dict[str, _Target] = {}
        self._known: Snapshot | None = None  # the registry's snapshot the targets were made from
        self._woken_by_registry = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._listening = False
        self._http = requests.Session()
        self._log = BurstLog(log)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
        while not self._stop.is_set():
            try:
                self.turn()
            except Exception as exc:
                if dynamo.is_unavailable(exc) or isinstance(exc, ApiError):
                    self._log.log(logging.WARNING, "push: DynamoDB unavailable (%s)", type(exc).__name__)
                else:
                    self._log.log(logging.ERROR, "push turn failed", exc_info=True)
            self._wake.wait(self.interval)
            self._wake.clear()

    def _on_events(self, ended: list) -> None:
        if ended:
            for target in list(self._targets.values()):
                target.due = True
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
                if self._hold(target) and target.due and time.monotonic() >= target.retry_at:
                    self._push(target)
            except Exception as exc:
                self._failed(target, exc)

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
            target.app = apps[cid]  # a changed push URL
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

    def _push(self, target: _Target) -> None:
        # Cleared before reading: an event the feed brings while this push runs (after its read)
        # makes the app due again, instead of being wiped out by the end of this push.
        target.due = False
        try:
            self._push_pending(target)
        except Exception:
            target.due = True
            raise

    def _push_pending(self, target: _Target) -> None:
        delivered: set[str] = set()
        key = self.channel.key(target.app)
        while True:
            pending = delivery.exchange(self.ctx, target.app, acks=delivered, max_events=BATCH, key=key)
            delivered = set()
            for event in pending.events:
                if not self.channel.deliver(self._http, event, target.app):
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
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (target.failures - 1)) * random.uniform(0.8, 1.2)
        target.retry_at = time.monotonic() + delay
        target.due = True
        if not quiet:
            self._log.log(logging.WARNING, "%s to app %s failed (%d in a row); next try in %.0f s",
                      self.channel.name, target.app.client_id, target.failures, delay)


_lock = threading.Lock()


def start_pusher(ctx: AppContext, channel: Channel | None = None) -> None:
    """Start this app context's pusher of `channel` (RFC 8935 SETs by default) once; none if
    CITYLOGIN_SSF_PUSH_INTERVAL is 0."""
    interval = ctx.settings.ssf_push_interval
    channel = channel or SetPush(ctx)
    with _lock:
        if interval <= 0 or channel.name in ctx.pushers:
            return
        pusher = ctx.pushers[channel.name] = Pusher(ctx, interval=interval, channel=channel)
    threading.Thread(target=pusher.run, name=f"citylogin-{channel.name}", daemon=True).start()


def stop_pushers(ctx: AppContext) -> None:
    with _lock:
        pushers, ctx.pushers = list(ctx.pushers.values()), {}
    for pusher in pushers:
        if isinstance(pusher, Pusher):
            pusher.stop()
