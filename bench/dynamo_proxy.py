"""A TCP proxy between the services and DynamoDB Local that adds a delay each way (an AWS-shaped
network on one box) and records every DynamoDB request it carries: (operation, tables).

It runs an asyncio loop on a thread of the process that starts it. Each chunk read from one side
is written to the other `delay` seconds after it arrived, in order: latency, not bandwidth. The
client-to-DynamoDB stream is also parsed as HTTP/1.1 (botocore sends a Content-Length body, never
chunked) to read `X-Amz-Target` and the tables named in the JSON body.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from common.database.dynamodb_local import free_port

# Operations that name their tables in a map (RequestItems) or a list of items (TransactItems).
TRANSACT_KINDS = ("ConditionCheck", "Put", "Delete", "Update", "Get")


@dataclass(frozen=True)
class DynamoRequest:
    at: float  # time.monotonic() when the request's last byte arrived
    operation: str  # e.g. "BatchGetItem"
    tables: tuple[str, ...]  # sorted, without repeats


def request_tables(body: dict) -> tuple[str, ...]:
    """The tables one DynamoDB request names (TableName, RequestItems or TransactItems)."""
    names = set()
    if "TableName" in body:
        names.add(body["TableName"])
    names.update(body.get("RequestItems", {}))
    for item in body.get("TransactItems", []):
        names.update(item[kind]["TableName"] for kind in TRANSACT_KINDS if kind in item)
    return tuple(sorted(names))


class _RequestParser:
    """Splits one connection's client bytes into HTTP requests and records each one."""

    def __init__(self, record) -> None:
        self.buffer, self.record = b"", record

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            headers = {}
            for line in self.buffer[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0"))
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4:end], self.buffer[end:]
            target = headers.get(b"x-amz-target", b"").decode()
            try:
                tables = request_tables(json.loads(body)) if body else ()
            except (ValueError, KeyError, TypeError):
                tables = ()
            self.record(DynamoRequest(at=time.monotonic(), operation=target.rpartition(".")[2] or "?",
                                      tables=tables))


@dataclass
class DelayProxy:
    """`with DelayProxy(upstream_port) as proxy:` -> proxy.endpoint_url; `proxy.delay` (seconds,
    each way) may change while it runs; `proxy.requests` holds what it carried."""
    upstream_port: int
    upstream_host: str = "127.0.0.1"
    delay: float = 0.0
    port: int = field(default_factory=free_port)
    requests: list[DynamoRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record(self, request: DynamoRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def since(self, start: int) -> list[DynamoRequest]:
        """The requests recorded after the first `start` ones (use len(proxy.requests) as a mark)."""
        with self._lock:
            return self.requests[start:]

    def mark(self) -> int:
        with self._lock:
            return len(self.requests)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser) -> None:
        """Copy reader to writer, each chunk `delay` after it arrived; a second task does the writing
        so that reading goes on meanwhile (a chunk's delay starts when it arrives, not when the
        previous one was delivered)."""
        queue: deque[tuple[float, bytes]] = deque()
        ready = asyncio.Event()
        done = False

        async def deliver() -> None:
            while True:
                while not queue:
                    if done:
                        return
                    ready.clear()
                    await ready.wait()
                due, data = queue.popleft()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(65536):
                if parser is not None:
                    parser.feed(data)
                queue.append((time.monotonic() + self.delay, data))
                ready.set()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            done = True
            ready.set()
            try:
                await sender
            except (ConnectionError, asyncio.CancelledError):
                pass
            writer.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(self._pipe(client_reader, upstream_writer, _RequestParser(self.record)),
                                 self._pipe(upstream_reader, client_writer, None), return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the proxy stops

    def start(self) -> DelayProxy:
        started = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
            started.set()
            loop.run_forever()
            self._server.close()
            # Open connections end with the loop: their tasks are cancelled and awaited first.
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=serve, name="dynamo-delay-proxy", daemon=True)
        self._thread.start()
        if not started.wait(timeout=10):
            raise RuntimeError("the DynamoDB proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
