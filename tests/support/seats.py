"""Opening a session the way the login flow's write does, without a login: for tests that need
many sessions of one device, or of a device the login flow would not let in."""
from __future__ import annotations

from sessions import service as sessions
from sessions.models import OpenedSession
from common.runtime.context import AppContext


def open_session(ctx: AppContext, *, user_uuid: str, device_id: str, device_name: str,
                 device_class: str = "other") -> OpenedSession:
    """Log `device_id` in beside every live device (nobody displaced), retrying a moved presence."""
    moved = None
    for _ in range(20):
        seats = sessions.read_seats(ctx, user_uuid=user_uuid, device_id=device_id, after=moved)
        taken = sessions.take_seat(ctx, seats, evicted=[], device_name=device_name, device_class=device_class,
                                   ip=None, user_agent=None)
        if isinstance(taken, OpenedSession):
            return taken
        moved = taken
    raise AssertionError("the presence kept moving")
