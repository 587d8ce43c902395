"""DynamoDB throttling and server errors as Amazon DynamoDB sends them, in front of DynamoDB Local,
which never throttles nor fails: an HTTP proxy that answers chosen requests itself, by a plan the
test programs (`fail(...)`: the next N requests of an operation, a fraction of them, everything for
t seconds, or each request once so that its retry passes), and forwards the rest.

The answers are DynamoDB's own (status, `__type`, message and modeled members, `x-amzn-RequestId`,
`Content-Type: application/x-amz-json-1.0`, `x-amz-crc32` of the body; service-2.json and the
shapes people reported from production), plus what comes from in front of it: a load balancer's
503 with an HTML or an empty body, and an answer damaged on its way (a 200 cut short, so that it no
longer matches its `x-amz-crc32`; the request did reach DynamoDB, and a write took effect).

Like ContendedDynamoDB (tests/support/contended_dynamodb.py) it speaks HTTP/1.1 with keep-alive, as
the lean client expects; unlike it, it runs in the test's process, so the test can change the plan
between calls and read what the proxy answered (`answered`, per operation and shape), what it
forwarded (`forwarded`, per operation) and when (`exchanges`)."""
from __future__ import annotations

import hashlib
import http.client
import json
import random
import secrets
import socket
import string
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

ERROR_TYPE = "com.amazonaws.dynamodb.v20120810#"
JSON_TYPE = "application/x-amz-json-1.0"
TRANSACTIONS = frozenset({"TransactWriteItems", "TransactGetItems"})
READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
# What DynamoDB says when a table or partition is over its capacity (on-demand or provisioned),
# in a ThrottlingException and in a cancelled transaction's ThrottlingError alike.
OVER_CAPACITY = ("Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
                 "scaling your table or index so please try again shortly. If exceptions persist, check if you "
                 "have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/"
                 "bp-partition-key-design.html")
LOAD_BALANCER_503 = b"<html><body><b>Http/1.1 Service Unavailable</b></body> </html>"
ACCOUNT = "000000000000"
REGION = "us-east-1"

Answer = tuple[int, list[tuple[str, str]], bytes]


class Shape(str, Enum):
    """The answers the proxy can give instead of DynamoDB Local's."""

    PROVISIONED_THROUGHPUT_EXCEEDED = "ProvisionedThroughputExceededException"   # 400, provisioned table
    THROTTLING = "ThrottlingException"                                          # 400, on-demand table
    REQUEST_LIMIT_EXCEEDED = "RequestLimitExceeded"                              # 400, the account's quota
    THROTTLED_TRANSACTION = "TransactionCanceledException/ThrottlingError"       # 400, one item throttled
    INTERNAL_SERVER_ERROR = "InternalServerError"                                # 500
    HTML_503 = "503 text/html"            # a load balancer's answer: no JSON, no x-amz-* headers
    EMPTY_503 = "503 empty"
    CRC32_MISMATCH = "200 x-amz-crc32 mismatch"  # DynamoDB Local's 200, cut short on its way


@dataclass
class Fault:
    """One line of the plan: which requests it takes, and for how long."""

    shape: Shape
    operations: frozenset[str] | None   # None: every operation
    times: int | None                   # how many more requests it answers; None: no limit
    fraction: float                     # the share of the matching requests it answers
    until: float | None                 # time.monotonic() after which it is spent
    once_per_request: bool              # only a request's first attempt: its retries carry the same body

    def spent(self, now: float) -> bool:
        return self.times == 0 or (self.until is not None and now >= self.until)


@dataclass(frozen=True)
class Exchange:
    """One request the proxy saw: when (time.monotonic()), which operation, and the fault that
    answered it (None: forwarded to DynamoDB Local)."""

    at: float
    operation: str
    shape: Shape | None
    body: bytes = b""  # the request as the client sent it


class DynamoFaults:
    """The proxy (see the module docstring); `url` is the endpoint to give the client."""

    def __init__(self, upstream_url: str, *, seed: int = 0) -> None:
        self.upstream = urlsplit(upstream_url)
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._plan: list[Fault] = []
        self._seen: set[bytes] = set()
        self.answered: Counter[tuple[str, Shape]] = Counter()
        self.forwarded: Counter[str] = Counter()
        self.exchanges: list[Exchange] = []
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def fail(self, shape: Shape, *, operations: Iterable[str] | None = None, times: int | None = None,
             fraction: float = 1.0, seconds: float | None = None, once_per_request: bool = False) -> None:
        """Answer with `shape` the requests for `operations` (all by default; a throttled transaction
        only takes transactions), at most `times` of them, a `fraction` of them (seeded), for the next
        `seconds`, or only the first attempt of each request. Earlier faults come first."""
        chosen = frozenset(operations) if operations is not None else None
        if shape is Shape.THROTTLED_TRANSACTION:
            chosen = chosen or TRANSACTIONS
            if not chosen <= TRANSACTIONS:
                raise ValueError(f"only a transaction is cancelled: {sorted(chosen - TRANSACTIONS)}")
        until = time.monotonic() + seconds if seconds is not None else None
        with self._lock:
            self._plan.append(Fault(shape, chosen, times, fraction, until, once_per_request))

    def clear(self) -> None:
        """No more faults: everything is forwarded."""
        with self._lock:
            self._plan.clear()

    def forget_counts(self) -> None:
        """Start counting afresh (answered, forwarded, exchanges), e.g. once an app has started."""
        with self._lock:
            self.answered.clear()
            self.forwarded.clear()
            self.exchanges.clear()

    def attempts(self, operation: str) -> int:
        """The requests for `operation` the proxy saw, answered or forwarded."""
        with self._lock:
            return self.forwarded[operation] + sum(n for (op, _), n in self.answered.items() if op == operation)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "DynamoFaults":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _answer(self, operation: str, body: bytes, headers: dict[str, str]) -> Answer:
        shape = self._fault_for(operation, body)
        with self._lock:
            self.exchanges.append(Exchange(time.monotonic(), operation, shape, body))
            if shape is None:
                self.forwarded[operation] += 1
            else:
                self.answered[(operation, shape)] += 1
        if shape is None:
            return self._forward(body, headers)
        if shape is Shape.CRC32_MISMATCH:
            return _cut_short(self._forward(body, headers))
        return _SHAPES[shape](operation, json.loads(body or b"{}"))

    def _fault_for(self, operation: str, body: bytes) -> Shape | None:
        digest = hashlib.sha256(operation.encode() + body).digest()
        now = time.monotonic()
        with self._lock:
            first_attempt = digest not in self._seen
            self._seen.add(digest)
            for fault in self._plan:
                if fault.spent(now) or (fault.operations is not None and operation not in fault.operations):
                    continue
                if fault.once_per_request and not first_attempt:
                    continue
                if fault.fraction < 1.0 and self._random.random() >= fault.fraction:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                return fault.shape
        return None

    def _forward(self, body: bytes, headers: dict[str, str]) -> Answer:
        conn = http.client.HTTPConnection(self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=30)
        try:
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            kept = [(k, v) for k, v in response.getheaders()
                    if k.lower() not in ("content-length", "connection", "transfer-encoding")]
            return response.status, kept, response.read()
        finally:
            conn.close()


def _handler(proxy: DynamoFaults) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as DynamoDB and the lean client's pool speak it

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
            signed = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            status, headers, answer = proxy._answer(operation, body, signed)
            self.send_response_only(status)  # the answer's own Server and Date, not http.server's
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def _request_id() -> str:
    """DynamoDB's request ids: 52 upper-case letters and digits."""
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(52))


def _dynamodb_error(code: str, message: str, *, status: int = 400, message_key: str = "message",
                    **members: Any) -> Answer:
    body = json.dumps({"__type": ERROR_TYPE + code, message_key: message, **members}).encode()
    return status, [("Server", "Server"), ("Date", formatdate(usegmt=True)), ("x-amzn-RequestId", _request_id()),
                    ("Content-Type", JSON_TYPE), ("x-amz-crc32", str(zlib.crc32(body)))], body


def _table(request: dict[str, Any]) -> str:
    if "TableName" in request:
        return request["TableName"]
    if request.get("RequestItems"):
        return next(iter(request["RequestItems"]))
    for item in request.get("TransactItems", []):
        for action in item.values():
            return action["TableName"]
    return "unknown"


def _throttling_reasons(operation: str, request: dict[str, Any], limit: str) -> list[dict[str, str]]:
    """The ThrottlingReason list DynamoDB has sent since 2025: Table<Read|Write><limit> and the table's ARN."""
    kind = "Read" if operation in READS else "Write"
    return [{"reason": f"Table{kind}{limit}",
             "resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{_table(request)}"}]


def _provisioned_throughput_exceeded(operation: str, request: dict[str, Any]) -> Answer:
    return _dynamodb_error(
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing your "
        "provisioning level with the UpdateTable API.",
        ThrottlingReasons=_throttling_reasons(operation, request, "ProvisionedThroughputExceeded"))


def _throttling(operation: str, request: dict[str, Any]) -> Answer:
    # the model names this member in lower camel case, unlike the other two throttling errors
    return _dynamodb_error("ThrottlingException", OVER_CAPACITY,
                           throttlingReasons=_throttling_reasons(operation, request, "KeyRangeThroughputExceeded"))


def _request_limit_exceeded(operation: str, request: dict[str, Any]) -> Answer:
    return _dynamodb_error(
        "RequestLimitExceeded",
        "Throughput exceeds the current throughput limit for your account. Please contact AWS Support at "
        "https://aws.amazon.com/support request a limit increase",
        ThrottlingReasons=_throttling_reasons(operation, request, "AccountLimitExceeded"))


def _throttled_transaction(operation: str, request: dict[str, Any]) -> Answer:
    """The first item throttled, the others "None" (they would have passed): nothing is written."""
    count = max(1, len(request.get("TransactItems", [])))
    reasons = [{"Code": "ThrottlingError", "Message": OVER_CAPACITY}] + [{"Code": "None"}] * (count - 1)
    listed = ", ".join(r["Code"] for r in reasons)
    return _dynamodb_error("TransactionCanceledException",
                           f"Transaction cancelled, please refer cancellation reasons for specific reasons [{listed}]",
                           message_key="Message", CancellationReasons=reasons)


def _internal_server_error(operation: str, request: dict[str, Any]) -> Answer:
    return _dynamodb_error("InternalServerError", "Internal server error", status=500)


def _html_503(operation: str, request: dict[str, Any]) -> Answer:
    return 503, [("Date", formatdate(usegmt=True)), ("Content-Type", "text/html")], LOAD_BALANCER_503


def _empty_503(operation: str, request: dict[str, Any]) -> Answer:
    return 503, [("Date", formatdate(usegmt=True))], b""


def _cut_short(answer: Answer) -> Answer:
    """DynamoDB Local's answer with its own x-amz-crc32 (one is added if it had none) and the
    second half of its body lost: no longer JSON, no longer the checksum's."""
    status, headers, body = answer
    if not any(name.lower() == "x-amz-crc32" for name, _ in headers):
        headers = [*headers, ("x-amz-crc32", str(zlib.crc32(body)))]
    return status, headers, body[:len(body) // 2]


_SHAPES: dict[Shape, Callable[[str, dict[str, Any]], Answer]] = {
    Shape.PROVISIONED_THROUGHPUT_EXCEEDED: _provisioned_throughput_exceeded,
    Shape.THROTTLING: _throttling,
    Shape.REQUEST_LIMIT_EXCEEDED: _request_limit_exceeded,
    Shape.THROTTLED_TRANSACTION: _throttled_transaction,
    Shape.INTERNAL_SERVER_ERROR: _internal_server_error,
    Shape.HTML_503: _html_503,
    Shape.EMPTY_503: _empty_503,
}
