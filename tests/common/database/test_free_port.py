"""free_port(): the port a test server or DynamoDB Local binds a moment later."""
from __future__ import annotations

import itertools
import socket
import subprocess
import sys
from pathlib import Path

import requests

from common.database import dynamodb_local
from common.database.dynamodb_local import free_port


def test_a_free_port_is_bindable_and_below_the_range_the_kernel_hands_out():
    # Between free_port() and the server's bind, an outgoing connection of any process could take a
    # port of the ephemeral range (the server then fails to start, or a test talks to another one).
    low = dynamodb_local._ephemeral_low()
    ports = {free_port() for _ in range(20)}
    assert all(dynamodb_local.LOWEST_PORT <= port < low for port in ports) and len(ports) > 1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))


def test_a_port_in_use_is_never_handed_out(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # the whole range
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        monkeypatch.setattr(dynamodb_local, "LOWEST_PORT", taken)
        monkeypatch.setattr(dynamodb_local, "_ephemeral_low", lambda: taken + 2000)
        monkeypatch.setattr(dynamodb_local.secrets, "randbelow", lambda n: 0)  # always the held one
        assert free_port() != taken


def test_parallel_test_workers_draw_from_slices_of_their_own(monkeypatch):
    """Two workers never hand out the same port at once: a server of one could otherwise answer
    the health check of a server of the other that failed to bind."""
    low, high = dynamodb_local.LOWEST_PORT, dynamodb_local._ephemeral_low()
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    drawn = {}
    for worker in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        drawn[worker] = {free_port() for _ in range(30)}
    width = (high - low) // 3
    for index, worker in enumerate(("gw0", "gw1", "gw2")):
        assert all(low + index * width <= port < low + (index + 1) * width for port in drawn[worker]), worker


def test_a_port_the_tests_drew_is_not_drawn_again_by_any_test_process(monkeypatch):
    """tests.support.ports: between the draw and the server's bind, neither this process (several servers'
    ports drawn before the first starts) nor another run of the suite on this machine hands it out."""
    from tests.support import ports

    drawn = ports.free_port()
    # offered first the port just drawn, then ports free now (some of which this worker may have drawn
    # for an earlier test's server: those stay reserved as long as the worker lives, and are passed over too)
    offered = itertools.chain([drawn], (free_port() for _ in itertools.count()))
    monkeypatch.setattr(ports, "unreserved_port", lambda: next(offered))
    other = ports.free_port()
    assert other != drawn
    asks = f"from tests.support import ports; print(ports.reserve({drawn}), ports.reserve({other}))"
    another_process = subprocess.run(
        [sys.executable, "-c", asks], capture_output=True, text=True, check=True, timeout=60,
        cwd=Path(__file__).resolve().parents[3])
    assert another_process.stdout.split() == ["False", "False"]


def test_a_server_whose_port_was_taken_before_it_bound_starts_on_another(monkeypatch):
    """tests.support.services: a port taken by a process outside the tests between the draw and the bind
    costs a second start, not the test."""
    from tests.support import ports, services

    root = Path(__file__).resolve().parents[3]
    with socket.socket() as outsider:
        outsider.bind(("127.0.0.1", 0))  # bound, not listening: the health check is refused at once
        taken = outsider.getsockname()[1]
        drawn = iter([taken])
        monkeypatch.setattr(services, "free_port", lambda: next(drawn, None) or ports.free_port())

        def start(port: int):
            return services.running_process([sys.executable, "-m", "tests.support.echo_app", str(port)],
                                            port=port, env={}, cwd=root)
        with services.on_a_free_port(start) as url:
            assert not url.endswith(f":{taken}")
            assert requests.get(url + "/healthz", timeout=10).status_code == 200
