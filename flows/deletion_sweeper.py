"""The deletion sweeper: each process finishes, every CITYLOGIN_DELETION_SWEEP_INTERVAL seconds,
the account deletions whose request did not (SPEC §4 DELETE /account). No lease: a pass is one
Query of the sparse index of accounts being deleted (empty almost always), and finishing is
idempotent, so processes that sweep at once only repeat each other's deletes."""
from __future__ import annotations

import logging
import random
import threading

from botocore.exceptions import BotoCoreError, ClientError

from common.errors import ServiceUnavailable
from common.thread_kind import scheduled_thread
from flows.deletion import sweep_deletions
from common.runtime.context import AppContext
from common.slots import Slot

log = logging.getLogger(__name__)

_lock = threading.Lock()
STOP: Slot[threading.Event] = Slot("flows.deletion_sweeper")  # set to stop the app context's sweeper


def start_sweeper(ctx: AppContext) -> None:
    """Start this app context's sweeper thread once (none if the interval is 0)."""
    interval = ctx.settings.deletion_sweep_interval
    with _lock:
        if interval <= 0 or ctx.slots.get(STOP) is not None:
            return
        stop = threading.Event()
        threading.Thread(target=_sweep_until, args=(ctx, interval, stop), name="citylogin-deletion-sweeper",
                         daemon=True).start()
        ctx.slots.put(STOP.given(stop))


def stop_sweeper(ctx: AppContext) -> None:
    """Stop this app context's sweeper after its current pass (tests; a process's ends with it)."""
    with _lock:
        stop = ctx.slots.take(STOP)
    if stop is not None:
        stop.set()


def _sweep_until(ctx: AppContext, interval: float, stop: threading.Event) -> None:
    scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
    while not stop.wait(interval * random.uniform(0.8, 1.2)):  # processes started together spread out
        try:
            if acted := sweep_deletions(ctx):
                log.info("deletion sweeper finished or closed %d account deletion(s)", acted)
        except (BotoCoreError, ClientError, ServiceUnavailable) as exc:
            log.warning("deletion sweep failed, trying again next interval: %s", type(exc).__name__)
