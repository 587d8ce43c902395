"""The test receiver of pushed SETs and back-channel logout tokens (tests.support.push_receiver) in its
own process, and what it has received."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

from tests.support.ports import free_port
from tests.support.services import running_process

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def receiver(fail_first: int = 0, *, port: int | None = None) -> Iterator[str]:
    """The receiver's URL (POST /push, POST /backchannel); its first `fail_first` answers are 500.
    `port`: the port of a receiver stopped before (the same app back after an outage)."""
    port = port or free_port()
    argv = [sys.executable, "-m", "tests.support.push_receiver", str(port), str(fail_first)]
    with running_process(argv, port=port, env={"PYTHONPATH": str(ROOT)}, cwd=ROOT) as url:
        yield url


def received(url: str) -> dict:
    """{"sets": what it kept, in arrival order, "attempts": how many requests it had}."""
    return requests.get(url + "/received", timeout=30).json()
