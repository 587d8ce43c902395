"""free_port(): the port a test server or DynamoDB Local binds a moment later."""
from __future__ import annotations

import socket

from common import dynamodb_local
from common.dynamodb_local import free_port


def test_a_free_port_is_bindable_and_below_the_range_the_kernel_hands_out():
    # Between free_port() and the server's bind, an outgoing connection of any process could take a
    # port of the ephemeral range (the server then fails to start, or a test talks to another one).
    low = dynamodb_local._ephemeral_low()
    ports = {free_port() for _ in range(20)}
    assert all(dynamodb_local.LOWEST_PORT <= port < low for port in ports) and len(ports) > 1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))


def test_a_port_in_use_is_never_handed_out(monkeypatch):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        monkeypatch.setattr(dynamodb_local, "LOWEST_PORT", taken)
        monkeypatch.setattr(dynamodb_local, "_ephemeral_low", lambda: taken + 2000)
        monkeypatch.setattr(dynamodb_local.secrets, "randbelow", lambda n: 0)  # always the held one
        assert free_port() != taken
