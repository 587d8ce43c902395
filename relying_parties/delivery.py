"""Delivering the session-revoked events to apps (SPEC §11; the end of an app's own grant on a live
session to that app alone, §14), at least once: what an app has not acknowledged comes again; what it
acknowledged never does. RFC 8936 poll here; RFC 8935 push in relying_parties/push.py on the same state.

A poll costs one read of the app's state, one Query of the feed from its cursor and, when
something changed, one conditional write. A long poll then waits on the process's one feed reader
(sessions.feed), not on DynamoDB."""
from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass, replace

from relying_parties import security_events
from relying_parties.models import AppRecord
from relying_parties.registry import app_registry, current_app
from relying_parties.service import InvalidClient
from relying_parties.stream_store import StateMoved, StreamState, StreamStore
from common.errors import ErrorCode, FieldKind, InvalidField, NotFound, ServiceUnavailable
from common.web import serving
from common.web.metrics import POLLS_HELD
from sessions import service as sessions
from sessions.feed import WINDOW_SECONDS
from sessions.models import SessionEnded, seq_at, seq_epoch_ms
from common.runtime.context import AppContext

KEPT_SECONDS = 24 * 3600  # events older than this may be dropped (SPEC §11)
MAX_ACKED = 10_000  # acknowledgements kept past the cursor; beyond, the oldest are forgotten (and resent)
SAVE_ATTEMPTS = 5
FUTURE_ACK_SECONDS = 60  # an ack of an event dated later than this is not one of ours
# A receiver's own stream (SSF stream management; e.g. each process of an app's API server) ends when
# it is not polled for an hour; its poll pushes that hour forward at most every 10 minutes (a write).
STREAM_IDLE_SECONDS = 3600
STREAM_REFRESH_SECONDS = 600
STREAM_ID = re.compile(r"^[0-9a-f]{32}$")


class StreamNotFound(NotFound):
    code, detail = ErrorCode.STREAM_NOT_FOUND, "This app has no such event stream (or it ended, unpolled for an hour)."


def _key(app: AppRecord, stream_id: str | None) -> str:
    return app.client_id if stream_id is None else f"{app.client_id}#{stream_id}"


def create_stream(ctx: AppContext, app: AppRecord) -> str:
    """A new poll stream of `app` for one receiver, starting now (less the feed's window, so that
    an end committed just before is in it): its own cursor and acknowledgements, so that several
    processes of one app each hear every event."""
    stream_id, now = secrets.token_hex(16), ctx.now().timestamp()
    state = StreamState(cursor=seq_at(int((now - WINDOW_SECONDS) * 1000)),
                        expires_epoch=int(now) + STREAM_IDLE_SECONDS)
    stream_store(ctx).save(_key(app, stream_id), state, expected_version=0)
    return stream_id


def delete_stream(ctx: AppContext, app: AppRecord, stream_id: str) -> None:
    store = stream_store(ctx)
    if not STREAM_ID.match(stream_id) or store.get(_key(app, stream_id)) is None:
        raise StreamNotFound()
    store.delete(_key(app, stream_id))


def stream_store(ctx: AppContext) -> StreamStore:
    return StreamStore(ctx.dynamodb, ctx.tables.app_streams)


@dataclass(frozen=True)
class Pending:
    """The app's unacknowledged events, oldest first, up to the number asked; `more`: others wait."""

    events: list[SessionEnded]
    more: bool


def parse_acks(app: AppRecord, jtis: list[str], *, now_ms: int) -> set[str]:
    """The feed seqs of the app's own jtis; 400 invalid_field for anything else."""
    seqs = set()
    for jti in jtis:
        seq = security_events.seq_of(jti, app)
        if seq is None or seq_epoch_ms(seq) > now_ms + FUTURE_ACK_SECONDS * 1000:
            raise InvalidField("ack", "ack: each entry must be the jti of a SET this app received.",
                               kind=FieldKind.INVALID_VALUE)
        seqs.add(seq)
    return seqs


def exchange(ctx: AppContext, app: AppRecord, *, acks: set[str], max_events: int,
             stream_id: str | None = None, key: str | None = None) -> Pending:
    """Record `acks`, move the cursor past what is acknowledged and settled, and read what is
    pending, in one read-decide-write on the state of the app's stream (`stream_id`, or the app's
    own, or a push channel's item `key`), again if another poll wrote first."""
    store, key = stream_store(ctx), key or _key(app, stream_id)
    for _ in range(SAVE_ATTEMPTS):
        state = store.get(key)
        now_ms = ctx.epoch_ms()
        if stream_id is not None and (state is None or (state.expires_epoch or 0) * 1000 < now_ms):
            raise StreamNotFound()
        start = StreamState(cursor=seq_at(app.hears_from_ms())) if state is None else state
        pending, after = _walk(ctx, start, acks=acks, max_events=max_events, now_ms=now_ms, grants_of=app.client_id)
        if after.expires_epoch and after.expires_epoch - now_ms // 1000 < STREAM_IDLE_SECONDS - STREAM_REFRESH_SECONDS:
            after = replace(after, expires_epoch=now_ms // 1000 + STREAM_IDLE_SECONDS)  # still polled
        if after == start and state is not None:
            return pending
        try:
            store.save(key, after, expected_version=start.version)
            return pending
        except StateMoved:
            continue
    raise ServiceUnavailable("This app's event stream is busy; try again.")


def _walk(ctx: AppContext, state: StreamState, *, acks: set[str], max_events: int, now_ms: int,
          grants_of: str | None) -> tuple[Pending, StreamState]:
    # The cursor passes an event only once it is acknowledged and older than the feed's window:
    # an event that commits late (SPEC §11 outbox, sessions.feed) is then never behind it. The end of
    # one app's grant (not of the session) is heard only on that app's own streams (`grants_of`: its
    # CAEP poll and push, its back channel); every other app's stream passes it as if acknowledged.
    oldest_kept = seq_at(now_ms - KEPT_SECONDS * 1000)
    settled = seq_at(now_ms - int(WINDOW_SECONDS * 1000))
    cursor = max(state.cursor, oldest_kept)
    acked = {seq for seq in state.acked | acks if seq > cursor}
    events: list[SessionEnded] = []
    more, advancing = False, True
    for event in sessions.events_after(ctx, cursor):
        advancing = advancing and event.seq < settled
        if event.seq in acked or not (event.session_ended or event.client_id == grants_of):
            if advancing:
                cursor = event.seq
            continue
        advancing = False
        if len(events) == max_events:
            more = True
            break
        events.append(event)
    acked = {seq for seq in acked if seq > cursor}
    if len(acked) > MAX_ACKED:
        acked = set(sorted(acked)[-MAX_ACKED:])
    return Pending(events=events, more=more), replace(state, cursor=cursor, acked=frozenset(acked))


class _Waiting:
    """How many polls of this process are held waiting; beyond the cap a poll answers at once
    (each holds a server thread, as an event stream does)."""

    def __init__(self) -> None:
        self._lock, self._count = threading.Lock(), 0

    def enter(self, cap: int) -> bool:
        with self._lock:
            if self._count >= cap:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._count -= 1


_waiting = _Waiting()
# A held poll of an app removed meanwhile is answered 401 within this (and the registry copy's CHECK_SECONDS).
REMOVAL_CHECK_SECONDS = 0.25


def _removed(ctx: AppContext, app: AppRecord) -> bool:
    """Whether `app` was removed: the registry copy lost it (no read), and its record is gone."""
    return not app_registry(ctx).holds(app.client_id) and current_app(ctx, client_id=app.client_id) is None


def poll(ctx: AppContext, app: AppRecord, *, max_events: int, return_immediately: bool,
         acks: list[str], stream_id: str | None = None) -> tuple[dict[str, str], bool]:
    """RFC 8936: ({jti: SET}, moreAvailable) of the app's stream (`stream_id`, or the app's own).
    Without `return_immediately`, an empty answer waits up to CITYLOGIN_SSF_LONG_POLL_SECONDS for an event."""
    if stream_id is not None and not STREAM_ID.match(stream_id):
        raise StreamNotFound()
    if current_app(ctx, client_id=app.client_id) is None:
        raise InvalidClient()  # its credentials may still be cached here: the registry says it is gone
    acked = parse_acks(app, acks, now_ms=ctx.epoch_ms())
    feed = sessions.event_feed(ctx)
    generation = feed.generation()
    pending = exchange(ctx, app, acks=acked, max_events=max_events, stream_id=stream_id)
    wait = not pending.events and max_events > 0 and not return_immediately
    if wait and _waiting.enter(sessions.stream_caps(ctx.settings).per_process):
        POLLS_HELD.inc()
        try:
            deadline = time.monotonic() + ctx.settings.ssf_long_poll_seconds
            # A stopping server answers now (nothing new): the app polls again, elsewhere or once it is back.
            while not pending.events and not serving.stopping() and (remaining := deadline - time.monotonic()) > 0:
                if feed.wait_for_new(generation, timeout=min(remaining, REMOVAL_CHECK_SECONDS)):
                    generation = feed.generation()
                    pending = exchange(ctx, app, acks=set(), max_events=max_events, stream_id=stream_id)
                elif _removed(ctx, app):  # its guards must stop trusting a quiet feed at once (SPEC §14)
                    raise InvalidClient()
        finally:
            POLLS_HELD.dec()
            _waiting.leave()
    sets = {security_events.jti(e.seq, app): security_events.session_revoked(ctx.jwt, e, app) for e in pending.events}
    return sets, pending.more
