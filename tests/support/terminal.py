"""A command run on a pseudo-terminal, as a person runs it: stdin, stdout and stderr are the terminal, so
the command asks its questions (isatty); what it prints is read as it comes and answers are typed."""
from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.support.waiting import readable_within

ROOT = Path(__file__).resolve().parents[2]


class Terminal:
    """The process on the pty's one side, the test on the other; closed by `finish`."""

    def __init__(self, argv: list[str], *, env: dict[str, str]) -> None:
        self._master, child = pty.openpty()
        try:
            self.process = subprocess.Popen(argv, env=env, stdin=child, stdout=child, stderr=child, close_fds=True,
                                            start_new_session=True)
        finally:
            os.close(child)
        self.output = ""
        self._seen = 0  # where the next wait_for starts looking
        self._closed = False

    def wait_for(self, pattern: str, *, timeout: float = 60.0) -> re.Match[str]:
        """The first match of `pattern` printed since the last match; fails if the command ends or
        `timeout` passes first (a deadline on a condition, never a fixed wait)."""
        deadline = time.monotonic() + timeout
        compiled = re.compile(pattern)
        while True:
            found = compiled.search(self.output, self._seen)
            if found:
                self._seen = found.end()
                return found
            if not self._read(max(deadline - time.monotonic(), 0)) and (self._closed or time.monotonic() > deadline):
                raise AssertionError(f"no {pattern!r} within {timeout} s (exit {self.process.poll()}):\n{self.output}")

    def type(self, line: str) -> None:
        """A line typed and Enter pressed."""
        os.write(self._master, (line + "\r").encode())

    def finish(self, *, timeout: float = 60.0) -> int:
        """Reads to the end, waits for the command to exit; its exit status."""
        deadline = time.monotonic() + timeout
        while not self._closed and time.monotonic() < deadline:
            self._read(deadline - time.monotonic())
        try:
            return self.process.wait(timeout=max(deadline - time.monotonic(), 1))
        finally:
            os.close(self._master)

    def _read(self, timeout: float) -> bool:
        """Whatever the command printed within `timeout`; False when nothing came (or it ended)."""
        if self._closed:
            return False
        if not readable_within(self._master, min(timeout, 1.0)):
            return False
        try:
            chunk = os.read(self._master, 65536)
        except OSError:  # EIO: the command's side is closed, it has ended
            chunk = b""
        if not chunk:
            self._closed = True
            return False
        self.output += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return True


def citylogin_on_a_terminal(*args: str, env: dict[str, str] | None = None) -> Terminal:
    """`citylogin ARGS` in its own process on a pseudo-terminal, importing this tree (the servers the
    tests started are on this machine, so it reaches them by their URLs)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return Terminal([sys.executable, "-m", "citylogin", *args], env=environment)
