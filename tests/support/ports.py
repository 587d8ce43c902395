"""Ports for the servers the tests start, reserved between drawing one and the server binding it.

common.database.dynamodb_local.free_port() finds a port that is free now; a server started with it binds it a
moment (gunicorn, node, DynamoDB Local: seconds) later. Meanwhile another test process of this machine
could draw the same port: a second run of the suite beside this one (its xdist workers draw from the same
slices), or the same worker drawing the ports of several servers before it starts them. One server then
fails to bind, or, worse, answers the other's health check. So a port drawn here stays reserved, by a lock
file the drawing process holds until it exits, and no test process hands it out again meanwhile."""
from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from common.database.dynamodb_local import free_port as unreserved_port

RESERVATIONS = Path(tempfile.gettempdir()) / "citylogin-test-ports"
_held: dict[int, int] = {}  # port -> the descriptor holding its lock, for this process's life


def free_port() -> int:
    """A port free now on 127.0.0.1 that no test process of this machine hands out again while this
    one runs: for a server that binds it in a moment."""
    for _ in range(200):
        port = unreserved_port()
        if reserve(port):
            return port
    raise RuntimeError(f"no free port left to reserve under {RESERVATIONS}")


def reserve(port: int) -> bool:
    """Whether `port` is now reserved by this process (False: another process, or this one, holds it)."""
    if port in _held:
        return False
    RESERVATIONS.mkdir(exist_ok=True)
    descriptor = os.open(RESERVATIONS / str(port), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the kernel when this process ends
    except BlockingIOError:
        os.close(descriptor)
        return False
    _held[port] = descriptor
    return True
