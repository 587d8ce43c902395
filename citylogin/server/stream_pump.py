"""One thread per worker process that serves every parked event stream (common.web.serving): a stream
whose response head and first bytes are out costs an open socket and a few objects, not a thread.

The pump waits, in one selector, on its wake-up pipe and on every parked connection (a client that
leaves makes its socket readable: end of file). It sends what a stream gives when the stream's
timer comes (heartbeats, the token's expiry) or when the stream says something came (its session
ended: the feed's thread calls back). Writes never block the pump: an SSE chunk is a few hundred
bytes into a socket's send buffer; a client that leaves that much unread has gone, and is dropped.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import os
import selectors
import socket
import threading
import time
from collections import deque

from common.thread_kind import scheduled_thread
from common.web.serving import DrivenStream

log = logging.getLogger(__name__)

THREAD_NAME = "citylogin-stream-pump"
_LAST_CHUNK = b"0\r\n\r\n"


class _Parked:
    __slots__ = ("stream", "sock", "chunked", "due", "ended")

    def __init__(self, stream: DrivenStream, sock: socket.socket, chunked: bool) -> None:
        self.stream, self.sock, self.chunked = stream, sock, chunked
        self.due = 0.0
        self.ended = False


class StreamPump:
    """`park(stream, sock, chunked)` from any thread; the pump then owns both."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._arriving: deque[_Parked] = deque()
        self._ready: deque[_Parked] = deque()
        self._timers: list[tuple[float, int, _Parked]] = []
        self._order = itertools.count()
        self._open = 0
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    @property
    def open_streams(self) -> int:
        return self._open

    def park(self, stream: DrivenStream, sock: socket.socket, *, chunked: bool) -> None:
        self._arriving.append(_Parked(stream, sock, chunked))
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"\0")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already: the pump will look

    def _run(self) -> None:
        scheduled_thread()  # its DynamoDB calls are the process's own, not a request's
        while True:
            try:
                self._turn()
            except Exception:  # a bug must not silence every stream of the process
                log.exception("stream pump turn failed")

    def _turn(self) -> None:
        timeout = max(0.0, self._timers[0][0] - time.monotonic()) if self._timers else None
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                self._drain_wakeups()
            else:
                self._on_readable(key.data)
        while self._arriving:
            self._adopt(self._arriving.popleft())
        while self._ready:
            self._step(self._ready.popleft())
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            due, _, parked = heapq.heappop(self._timers)
            if not parked.ended and parked.due == due:
                self._step(parked)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass

    def _adopt(self, parked: _Parked) -> None:
        parked.sock.setblocking(False)
        try:
            self._selector.register(parked.sock, selectors.EVENT_READ, parked)
        except (ValueError, OSError):  # closed already
            parked.ended = True
            parked.stream.close()
            return
        self._open += 1
        parked.stream.on_ready(lambda: self._on_ready(parked))
        self._step(parked)

    def _on_ready(self, parked: _Parked) -> None:
        """On the feed's thread."""
        self._ready.append(parked)
        self._wake()

    def _on_readable(self, parked: _Parked) -> None:
        """A client sends nothing on an event stream: readable means it left (or misbehaves)."""
        try:
            data = parked.sock.recv(1024)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._end(parked, last=b"")

    def _step(self, parked: _Parked) -> None:
        if parked.ended:
            return
        chunk, last = parked.stream.advance()
        if chunk and not self._send(parked, _framed(chunk, parked.chunked)):
            self._end(parked, last=b"")
        elif last:
            self._end(parked, last=_LAST_CHUNK if parked.chunked else b"")
        else:
            parked.due = time.monotonic() + parked.stream.seconds_to_wake()
            heapq.heappush(self._timers, (parked.due, next(self._order), parked))

    @staticmethod
    def _send(parked: _Parked, data: bytes) -> bool:
        try:
            return parked.sock.send(data) == len(data)
        except OSError:  # would block, reset, broken pipe
            return False

    def _end(self, parked: _Parked, *, last: bytes) -> None:
        parked.ended = True
        self._open -= 1
        if last:
            self._send(parked, last)
        try:
            self._selector.unregister(parked.sock)
        except (KeyError, ValueError, OSError):
            pass
        parked.sock.close()
        parked.stream.close()


def _framed(chunk: bytes, chunked: bool) -> bytes:
    return b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
