"""What the server running this process says about itself, and how a long-lived response reaches
it. citylogin's gunicorn worker (citylogin/server/gunicorn_worker.py) records here, before it loads the
app, that it holds streams without a thread, and the open files its threads leave them; the cap on
open event streams follows from that.

A stream (DrivenStream) is served one of two ways (`stream_body`):
- held: the thread that answered the request waits on it and writes what it gives until it ends
  (Flask's server, gunicorn's own workers): one thread per open stream;
- parked: once its first bytes are out, the request's thread hands it to the server's stream pump
  (citylogin.server.stream_pump under citylogin's worker), one thread that serves every parked stream of
  the process. The server offers this by putting a callable under PARK in the WSGI environ."""
from __future__ import annotations

import resource
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

PARK = "citylogin.park_stream"
# open files a process keeps for everything but parked streams (listeners, DynamoDB, logs, pipes)
RESERVED_FILES = 1024


class DrivenStream(Protocol):
    def first(self) -> bytes:
        """Sent at once, with the response head."""

    def advance(self) -> tuple[bytes, bool]:
        """What to send now (maybe nothing), and whether it is the last."""

    def seconds_to_wake(self) -> float:
        """How long until advance() may have something to send, unless on_ready's callback comes first."""

    def wait(self, seconds: float) -> None:
        """Block up to `seconds`, or until something came (a held stream)."""

    def on_ready(self, callback: Callable[[], None]) -> None:
        """Call `callback` from any thread when something came (a parked stream)."""

    def close(self) -> None:
        """The stream ended or its client left: release what it holds."""


@dataclass(frozen=True)
class ServerKind:
    parks_streams: bool = False
    stream_files: int = 0  # open files left for parked streams


_server = ServerKind()


def set_server_kind(*, threads: int, parks_streams: bool) -> None:
    global _server
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    _server = ServerKind(parks_streams=parks_streams, stream_files=max(1, soft - RESERVED_FILES - threads))


def server_kind() -> ServerKind:
    return _server


_stopping = threading.Event()


def mark_stopping() -> None:
    """The server began a graceful stop (citylogin's gunicorn worker, at SIGTERM): a request held open to
    wait for news (an RFC 8936 long poll) is answered now, so that the stop waits for no client."""
    _stopping.set()


def stopping() -> bool:
    return _stopping.is_set()


def stream_body(stream: DrivenStream, environ: dict[str, Any]) -> Iterator[bytes]:
    """The response body of `stream`: parked if the server offers it, else held."""
    park = environ.get(PARK)
    return _Parked(stream, park) if park else _Held(stream)


class _Held:
    """Served by the thread that answered the request: it waits between the chunks."""

    def __init__(self, stream: DrivenStream) -> None:
        self.stream, self.started, self.ended = stream, False, False

    def __iter__(self) -> "_Held":
        return self

    def __next__(self) -> bytes:
        if not self.started:
            self.started = True
            return self.stream.first()
        while not self.ended:
            chunk, self.ended = self.stream.advance()
            if chunk:
                return chunk
            if not self.ended:
                self.stream.wait(self.stream.seconds_to_wake())
        raise StopIteration

    def close(self) -> None:
        """Also for a stream never read (its client left before the first chunk): its place is freed."""
        self.stream.close()


class _Parked:
    """The first chunk goes out from the request's thread; asked for the next one, it hands the
    stream to the server (which from then on owns it and the connection) and ends the response
    as far as the WSGI server is concerned."""

    def __init__(self, stream: DrivenStream, park: Callable[[DrivenStream], None]) -> None:
        self.stream, self.park, self.state = stream, park, "new"

    def __iter__(self) -> "_Parked":
        return self

    def __next__(self) -> bytes:
        if self.state == "new":
            self.state = "started"
            return self.stream.first()
        if self.state == "started":
            self.state = "parked"
            self.park(self.stream)
        raise StopIteration

    def close(self) -> None:
        if self.state != "parked":
            self.stream.close()
