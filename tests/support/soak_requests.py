"""The soak's requests, each one named (issue 82, item 10): every request a soak thread sends carries an
X-Request-ID, which the server writes into its access line and its audit lines (common/web/request_log.py),
and the thread says what it is doing (`doing`: the step, and the part of it, with the client it sends as).
A request that got no answer (a read timeout, a reset) is kept, and reported with its step, method, path,
process and client and with the server's own lines for its id, read from the server's log file once the
run is over. A request that is still unanswered after DUMP_AFTER seconds has its server's threads dumped
(py-spy, when the venv has it) while it waits, so that the report says where the server was."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

HEADER = "X-Request-ID"
SLOWEST = 3  # the longest answered requests the figures name
DUMP_AFTER = 15.0  # seconds a request waits before its server's threads are dumped
PY_SPY = Path(sys.executable).parent / "py-spy"


@dataclass
class Unanswered:
    """A request that got no answer: what sent it, where to, and what came of it."""
    doing: str
    method: str
    url: str
    request_id: str
    error: str
    seconds: float
    dump: str = ""


@dataclass
class _InFlight:
    doing: str
    method: str
    url: str
    started: float
    dump: list[str] = field(default_factory=list)


class RequestLedger:
    """Names the soak's requests; `install` it before the run, ask `report()` after it."""

    def __init__(self, servers: dict[str, Path], *, dump_after: float = DUMP_AFTER) -> None:
        """`servers`: each process's base URL and the file its output goes to; a request unanswered for
        `dump_after` seconds has its server's threads dumped."""
        self.servers, self.dump_after = servers, dump_after
        self.unanswered: list[Unanswered] = []
        self.took: dict[str, list[float]] = defaultdict(list)  # seconds of each answered request, by step
        self.slowest: list[tuple[float, str]] = []  # (seconds, what) of the SLOWEST longest answered requests
        self._local = threading.local()
        self._in_flight: dict[str, _InFlight] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # --- what a thread is doing ----------------------------------------------------------------

    @contextmanager
    def doing(self, what: str) -> Iterator[None]:
        """Requests this thread sends meanwhile are `what` (nested: "step > part")."""
        outer = getattr(self._local, "doing", "")
        self._local.doing = f"{outer} > {what}" if outer else what
        try:
            yield
        finally:
            self._local.doing = outer

    def now_doing(self) -> str:
        return getattr(self._local, "doing", "") or threading.current_thread().name

    # --- the requests --------------------------------------------------------------------------

    def install(self, monkeypatch) -> None:
        """Every request of this process through requests' HTTPAdapter is named and watched."""
        send = HTTPAdapter.send
        ledger = self

        def named(adapter, request, *args, **kwargs):
            if not request.url.startswith(tuple(ledger.servers)):  # a receiver of the test's own
                return send(adapter, request, *args, **kwargs)
            request_id = request.headers.setdefault(HEADER, uuid.uuid4().hex)
            entry = _InFlight(ledger.now_doing(), request.method, request.url, time.monotonic())
            with ledger._lock:
                ledger._in_flight[request_id] = entry
            try:
                response = send(adapter, request, *args, **kwargs)
            except requests.RequestException as error:
                ledger._unanswered(entry, request_id, error)
                raise
            finally:
                with ledger._lock:
                    ledger._in_flight.pop(request_id, None)
            ledger._answered(entry, request_id, time.monotonic() - entry.started)
            return response
        monkeypatch.setattr(HTTPAdapter, "send", named)
        threading.Thread(target=self._watch, name="soak-request-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _answered(self, entry: _InFlight, request_id: str, seconds: float) -> None:
        step = entry.doing.split(" ", 1)[0] if " step" in entry.doing else "other"
        with self._lock:
            self.took[step].append(seconds)
            if len(self.slowest) < SLOWEST or seconds > self.slowest[0][0]:
                what = f"{entry.doing}: {entry.method} {urlsplit(entry.url).path} request_id={request_id}"
                self.slowest = sorted([*self.slowest, (seconds, what)])[-SLOWEST:]

    def _unanswered(self, entry: _InFlight, request_id: str, error: Exception) -> None:
        with self._lock:
            self.unanswered.append(Unanswered(entry.doing, entry.method, entry.url, request_id,
                                              f"{type(error).__name__}: {error}",
                                              time.monotonic() - entry.started, "".join(entry.dump)))

    def _watch(self) -> None:
        """Dump the threads of the server a request has waited on for DUMP_AFTER seconds, once per request."""
        while not self._stop.wait(1):
            now = time.monotonic()
            with self._lock:
                late = [e for e in self._in_flight.values() if now - e.started > self.dump_after and not e.dump]
            for entry in late:
                entry.dump.append(_thread_dump(entry.url))

    # --- the report ----------------------------------------------------------------------------

    def latencies(self) -> str:
        """The answered requests, and their p50, p99 and longest, in all and by the step that sent them."""
        def figures(seconds: list[float]) -> str:
            ordered = sorted(seconds)
            def at(q: float) -> float:
                return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
            return f"{len(ordered)} p50 {at(0.5):.2f} s p99 {at(0.99):.2f} s max {ordered[-1]:.2f} s"
        with self._lock:
            took = {step: list(seconds) for step, seconds in self.took.items() if seconds}
        everything = [s for seconds in took.values() for s in seconds]
        if not everything:
            return "no requests"
        return (f"{figures(everything)}; " + ", ".join(f"{step}: {figures(seconds)}" for step, seconds in sorted(
            took.items())) + "; the longest: " + "; ".join(f"{s:.2f} s {what}" for s, what in reversed(self.slowest)))

    def report(self) -> list[str]:
        """One paragraph per unanswered request: what sent it and the server's own lines for it."""
        return [self._describe(u) for u in self.unanswered]

    def _describe(self, u: Unanswered) -> str:
        split = urlsplit(u.url)
        base = f"{split.scheme}://{split.netloc}"
        process = next((f"process {i} ({url})" for i, url in enumerate(self.servers) if url == base), base)
        lines = self.server_lines(u.request_id)
        said = "\n    ".join(lines) if lines else "(none: the server never finished it)"
        text = (f"{u.doing}: {u.method} {split.path} to {process}, request_id={u.request_id}, "
                f"no answer after {u.seconds:.1f} s ({u.error})\n  the server's lines for it:\n    {said}")
        return text + (f"\n  its server's threads after {self.dump_after:.0f} s:\n{u.dump}" if u.dump else "")

    def server_lines(self, request_id: str) -> list[str]:
        found = []
        for log in self.servers.values():
            with open(log, encoding="utf-8", errors="replace") as lines:
                found += [line.rstrip("\n") for line in lines if request_id in line]
        return found


def _thread_dump(url: str) -> str:
    """py-spy's dump of the server process answering at `url` and its workers ('' without py-spy)."""
    port = urlsplit(url).port
    pid = _server_pid(port) if port else None
    if pid is None or not PY_SPY.exists():
        return ""
    done = subprocess.run([str(PY_SPY), "dump", "--subprocesses", "--pid", str(pid)], capture_output=True,
                          text=True, timeout=60)
    return serving_threads(done.stdout) + done.stderr


# The product's packages that serve a request (not the server's or the process's own machinery).
REQUEST_CODE = re.compile(r"\((accounts|devices|flows|oidc|operators|registration|relying_parties|sessions)/")


def serving_threads(dump: str) -> str:
    """Of py-spy's dump, the processes' headings and the threads in the product's request code: a
    worker's 64 threads are mostly idle, and the one that keeps a request waiting is among these."""
    kept = []
    for block in re.split(r"\n(?=Thread |Process )", dump):
        if block.startswith("Process ") or REQUEST_CODE.search(block):
            kept.append(block.rstrip("\n"))
    return "\n".join(kept) + "\n"


def _server_pid(port: int) -> int | None:
    """The process started with CITYLOGIN_PORT=`port` whose parent was not (gunicorn's master, not a worker)."""
    marker = f"CITYLOGIN_PORT={port}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return next((pid for pid, parent in found.items() if parent not in found), None) if found else None


def server_log(directory: Path, index: int) -> Path:
    """Where process `index` of a soak writes its output."""
    os.makedirs(directory, exist_ok=True)
    return directory / f"server{index}.log"
