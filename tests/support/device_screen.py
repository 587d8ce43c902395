"""A screen of the device authorization grant (RFC 8628) as the tests run it: an app in its own process
that prints a user code and polls citylogin, its output read as it comes; and the person's side through
citylogin's JSON API (the web UI's /device page makes the same calls)."""
from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

from citylogin.client.api import Client
from tests.support.waiting import stop

# The code as citylogin shows it: 8 letters of its alphabet (no vowels, no look-alikes), XXXX-XXXX.
USER_CODE = re.compile(r"\b([BCDFGHJKMNPQRSTVWXZ]{4}-[BCDFGHJKMNPQRSTVWXZ]{4})\b")
# What a device code, an access, refresh or ID token would look like on the screen: a long run of
# URL-safe characters. Nothing the person reads (a link, a code, a name) is one.
LONG_SECRET = re.compile(r"[A-Za-z0-9_\-.]{40,}")


@dataclass
class Finished:
    status: int
    stdout: str
    stderr: str


class Screen:
    """The app's process: its stdout and stderr collected by threads, waited on by their content."""

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self._out: list[str] = []
        self._err: list[str] = []
        self._changed = threading.Condition()
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                         for stream, into in ((self.process.stdout, self._out), (self.process.stderr, self._err))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], into: list[str]) -> None:
        for line in stream:
            with self._changed:
                into.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def stdout(self) -> str:
        with self._changed:
            return "".join(self._out)

    @property
    def stderr(self) -> str:
        with self._changed:
            return "".join(self._err)

    def wait_for(self, pattern: re.Pattern[str], *, timeout: float = 60.0) -> re.Match[str]:
        """The first match of `pattern` in stdout, once the app has printed it; fails if the app exits
        or `timeout` passes first."""
        def seen() -> re.Match[str] | None:
            return pattern.search("".join(self._out))
        with self._changed:
            self._changed.wait_for(lambda: seen() or self.process.poll() is not None, timeout=timeout)
            found = seen()
        if found is None:
            raise AssertionError(f"the app did not print {pattern.pattern!r} within {timeout} s "
                                 f"(exit {self.process.poll()}):\n{self.stdout}\n{self.stderr}")
        return found

    def finish(self, *, timeout: float = 90.0) -> Finished:
        """Waits for the app to exit by itself (it stops polling on an answer); its status and output."""
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(self.process)
            raise AssertionError(f"the app still ran after {timeout} s:\n{self.stdout}\n{self.stderr}") from None
        for reader in self._readers:
            reader.join(timeout=10)
        return Finished(status, self.stdout, self.stderr)

    def close(self) -> None:
        if self.process.poll() is None:
            stop(self.process)


def approve(device: Client, user_code: str, *, device_name: str = "Living-room TV",
            force: bool = False) -> requests.Response:
    """The person approves on a device already signed in (its session, as the /device page's call)."""
    return device.request("POST", "/oidc/device/approve",
                          json={"user_code": user_code, "device_name": device_name, "force": force})


def deny(base_url: str, user_code: str) -> requests.Response:
    return requests.post(base_url + "/oidc/device/deny", json={"user_code": user_code}, timeout=20)
