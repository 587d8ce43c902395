"""Which kind of work a thread does, for the DynamoDB call counter (common.web.metrics): a request's (the
default, also the writes it leaves for after its answer) or the process's own scheduled work (the key
ring, the app registry, the event feed, the pushers, the sweepers), whose rate does not grow with
traffic. No imports: every poller marks itself without pulling in Flask or the app context."""
from __future__ import annotations

import threading

REQUEST, SCHEDULED = "request", "scheduled"
_kind = threading.local()


def scheduled_thread() -> None:
    """Mark the calling thread as the process's scheduled work."""
    _kind.scheduled = True


def current() -> str:
    return SCHEDULED if getattr(_kind, "scheduled", False) else REQUEST
