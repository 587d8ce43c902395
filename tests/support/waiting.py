"""Waiting for a condition instead of sleeping for a guess: a poll with a deadline."""
from __future__ import annotations

import selectors
import socket
import subprocess
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, what: str = "") -> T:
    """Calls `check` until it returns something truthy, and returns that; fails the test with
    `what` and the last value if `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or check!r} (last: {value!r})")
        time.sleep(interval)


def settled(read: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.2, what: str = "") -> T:
    """What `read` returns once two reads `interval` seconds apart agree: after a process is killed,
    the requests it had sent whole may still be committing, and a table read in two scans may see one
    of them half. Fails the test with `what` if the reads still differ after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    before = read()
    while True:
        time.sleep(interval)
        now = read()
        if now == before:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled within {timeout} s: {what or read!r}")
        before = now


def until_listening(process: subprocess.Popen, port: int, *, timeout: float, name: str,
                    output: Callable[[], str]) -> None:
    """Until 127.0.0.1:`port` accepts a connection (for servers without a health URL, or before
    one answers); a RuntimeError with the end of `output()` if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {output()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port} in {timeout}s: {output()[-3000:]}")


def stop(process: subprocess.Popen, *, timeout: float = 10.0) -> None:
    """SIGTERM, and SIGKILL if `process` has not exited within `timeout` seconds; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def readable_within(fd: int, timeout: float) -> bool:
    """Whether `fd` has something to read within `timeout` seconds. A selector, not select.select: a test
    process that has opened many sockets may hold descriptors past select's 1024."""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        return bool(selector.select(timeout))
