"""The session sweeper: each process ends, every CITYLOGIN_SESSION_SWEEP_INTERVAL seconds, the sessions
whose idle timeout or max lifetime passed without a request, each with its session-revoked event
(sessions.service.sweep_ended). No lease: ending one is conditional, so processes that sweep at once
end each session once."""
from __future__ import annotations

import logging
import random
import threading

from common.log_bursts import BurstLog
from common.thread_kind import scheduled_thread
from common.database import dynamo
from sessions.service import sweep_ended
from common.runtime.context import AppContext
from common.slots import Slot

log = logging.getLogger(__name__)

_lock = threading.Lock()
STOP: Slot[threading.Event] = Slot("sessions.sweeper")  # set to stop the app context's sweeper


def start_sweeper(ctx: AppContext) -> None:
    """Start this app context's sweeper once (none if the interval is 0)."""
    interval = ctx.settings.session_sweep_interval
    with _lock:
        if interval <= 0 or ctx.slots.get(STOP) is not None:
            return
        stop = threading.Event()
        ctx.slots.put(STOP.given(stop))
    threading.Thread(target=_sweep_until, args=(ctx, interval, stop), name="citylogin-session-sweeper",
                     daemon=True).start()


def stop_sweeper(ctx: AppContext) -> None:
    with _lock:
        stop = ctx.slots.take(STOP)
    if stop is not None:
        stop.set()


def _sweep_until(ctx: AppContext, interval: float, stop: threading.Event) -> None:
    scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
    burst = BurstLog(log)
    while not stop.wait(interval * random.uniform(0.8, 1.2)):  # processes started together spread out
        try:
            if ended := sweep_ended(ctx):
                log.info("session sweeper ended %d session(s) over by time", ended)
        except Exception as exc:
            if dynamo.is_unavailable(exc):
                burst.log(logging.WARNING, "session sweeper: DynamoDB unavailable (%s)", type(exc).__name__)
            else:
                burst.log(logging.ERROR, "session sweep failed", exc_info=True)
