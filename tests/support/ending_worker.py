"""A process that ends sessions as fast as it can until it is killed: for the outbox test (SPEC §11:
no session ends without its event, whatever crashes). Settings come as CITYLOGIN_* variables; it
prints "ready" once its first session is open. Every round logs a device in displacing the one
before (the login transaction ends it), and every third round logs it out (the revoke transaction)."""
from __future__ import annotations

import sys
import uuid

from common.config import load_settings
from sessions import service as sessions
from sessions.models import OpenedSession, RevokeReason
from common.runtime.context import build_context


def main() -> None:
    ctx = build_context(load_settings())
    user_uuid = sys.argv[1]
    previous = None
    for round_ in range(1_000_000):
        seats = sessions.read_seats(ctx, user_uuid=user_uuid, device_id=str(uuid.uuid4()))
        taken = sessions.take_seat(ctx, seats, evicted=list(seats.live), device_name=f"d{round_}",
                                   device_class="other", ip=None, user_agent=None)
        if not isinstance(taken, OpenedSession):
            continue
        if previous is None:
            print("ready", flush=True)
        previous = taken.session
        if round_ % 3 == 2:
            sessions.revoke_session(ctx, session=previous, reason=RevokeReason.LOGGED_OUT)


if __name__ == "__main__":
    main()
