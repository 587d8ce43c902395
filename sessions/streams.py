"""The live events: the process's one reader of the security events feed and one session watcher
per app context, a session's Server-Sent Events stream, and the outbox row of an app's grant
ending (SPEC §11, §14)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from common.slots import Slot
from common.config import Settings
from common.database.guarded_write import GuardedWrite
from common.database.dynamo import TableNames
from sessions.context import liveness, session_store
from sessions.errors import StreamsFull
from sessions.events import LiveStream, SessionWatcher, StreamCaps, TooManyStreams
from sessions.feed import EventFeed
from sessions.feed_store import FeedStore, event_put
from sessions.models import Ending, Liveness, Principal, SessionEnded
from common.runtime.context import AppContext
from common.web.serving import server_kind

EVENT_FEED: Slot[EventFeed] = Slot("sessions.event_feed")
SESSION_WATCHER: Slot[SessionWatcher] = Slot("sessions.session_watcher")


def events_after(ctx: AppContext, seq: str) -> Iterator[SessionEnded]:
    """The session ends recorded after `seq` in the security events feed, oldest first, read page
    by page as they are consumed (SPEC §11)."""
    return FeedStore(ctx.dynamodb, ctx.tables.security_events).after(seq)


def grant_ending(tables: TableNames, *, session_id: str, user_uuid: str, device_id: str, client_id: str,
                 grant_id: str, reason: str, at_ms: int) -> GuardedWrite:
    """The outbox row of one app's grant on a live session ending (SPEC §14), for the revocation's
    own transaction, so that no revocation goes untold: that app's CAEP streams and Back-Channel
    Logout hear it, no session stream or other app does."""
    ending = Ending(session_id=session_id, user_uuid=user_uuid, device_id=device_id, reason=reason,
                    client_id=client_id, grant_id=grant_id)
    item = event_put(tables.security_events, ending, at_ms=at_ms)
    return GuardedWrite(item=item, refusal=lambda: RuntimeError("an event's seq is new"))


def event_feed(ctx: AppContext) -> EventFeed:
    """The process's one reader of the security events feed for this app context (not yet reading:
    it starts with its first listener or waiter)."""
    return ctx.slots.get_or_make(EVENT_FEED, lambda: EventFeed(
        FeedStore(ctx.dynamodb, ctx.tables.security_events), interval=ctx.settings.events_poll_interval,
        now=lambda: ctx.now().timestamp()))


def session_watcher(ctx: AppContext) -> SessionWatcher:
    """The process's one watcher for this app context, listening to the feed from first use."""
    def make() -> SessionWatcher:
        watcher = SessionWatcher(
            fetch_states=session_store(ctx).batch_states, caps=stream_caps(ctx.settings),
            now=lambda: ctx.now().timestamp(),
            end_reason=lambda state: _state_end_reason(liveness(ctx.settings), state, ctx.epoch()),
            deadline=lambda state: _state_deadline(liveness(ctx.settings), state))
        event_feed(ctx).listen(watcher.on_events)
        return watcher
    return ctx.slots.get_or_make(SESSION_WATCHER, make)


def _state_deadline(rule: Liveness, state: dict[str, Any]) -> int:
    """The first moment a session with these fields ends without a write: its max lifetime or idle timeout."""
    return min(int(state["expires_epoch"]), int(state["last_seen_epoch"]) + rule.idle_timeout + rule.touch_every)


def _state_end_reason(rule: Liveness, state: dict[str, Any], now: int) -> str | None:
    """Why a session (its status, revoked_reason, expires_epoch, last_seen_epoch) is over, if it is."""
    return rule.end_reason(status=state["status"], revoked_reason=state.get("revoked_reason"),
                           expires_epoch=state["expires_epoch"], last_seen_epoch=state["last_seen_epoch"], now=now)


HELD_STREAMS = 256  # per process when every open stream holds a server thread


def stream_caps(settings: Settings) -> StreamCaps:
    """Under citylogin's gunicorn worker (no thread per stream) by default what the process's open
    files allow; under a server where each holds a thread, HELD_STREAMS."""
    serving = server_kind()
    per_process = settings.events_max_streams or (serving.stream_files if serving.parks_streams else HELD_STREAMS)
    return StreamCaps(per_session=settings.events_max_streams_per_session,
                      per_user=settings.events_max_streams_per_user, per_process=per_process)


def event_stream(ctx: AppContext, *, principal: Principal) -> LiveStream:
    """Server-Sent Events for one session (sessions.events.LiveStream). 503 too_many_streams, before
    the stream starts, when the process holds its cap of streams."""
    session = principal.session
    try:
        subscription = session_watcher(ctx).subscribe(
            principal.session_id, principal.user_uuid,
            check_at=_state_deadline(liveness(ctx.settings), {"expires_epoch": session.expires_epoch,
                                           "last_seen_epoch": session.last_seen_epoch}))
    except TooManyStreams:
        raise StreamsFull() from None
    return LiveStream(subscription, now=lambda: ctx.now().timestamp(), heartbeat=ctx.settings.events_heartbeat,
                      token_expires=principal.token_expires_epoch)
