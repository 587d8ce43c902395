"""A lean DynamoDB client for the data-plane calls: botocore's own pieces, without its per-call machinery.

Why: measured with cProfile (thread CPU) on a GetItem against DynamoDB Local, a boto3 client with
parameter validation off spends about 2 ms of CPU per call, of which

| part of a boto3 call                                   | share of its CPU |
|--------------------------------------------------------|------------------|
| urllib3 + http.client (send, read, header parsing)     | ~25 %            |
| the User-Agent string, rebuilt twice per call          | ~17 %            |
| request signing (SigV4Auth: AWSRequest, canonical form)| ~15 %            |
| model-driven response parsing (a walk of every shape)  | ~12 %            |
| model-driven serialisation (_convert_to_request_dict)  | ~10 %            |
| the event emitter's ~10 events and their handlers      | ~8 % (outside the above) |
| the endpoint ruleset resolved again on every call      | ~4 %             |

The lean client sends the same JSON API (`application/x-amz-json-1.0`, `X-Amz-Target:
DynamoDB_20120810.<Op>`), whose only model-driven type in the data plane is the binary attribute
(base64, handled here); the signature is a fixed-shape SigV4 with the signing key cached per day;
the endpoint is the one botocore resolved when the client was made; the HTTP is
common/database/dynamo_http's keep-alive pool (on urllib3 + http.client the client cost 0.55-1.36 ms a call).
bench/dynamo_client.py measures it: 0.17-0.52 ms of CPU per call at p50 against boto3's 1.2-2.6 ms.

What it keeps from botocore, so that it is a drop-in for the stores:
- the same methods (`get_item`, `transact_write_items`, ...), kwargs and response dicts, with
  `ResponseMetadata`; anything else (`create_table`, `describe_table`, paginators, waiters) goes to
  a regular boto3 client held inside, which also lends its `exceptions`, service model and config;
- errors: a response of 300 or more is parsed by botocore's own parser (with the modeled fields,
  e.g. `CancellationReasons`, or `Item` for ReturnValuesOnConditionCheckFailure) and raised as the
  client's modeled ClientError; no answer raises botocore's EndpointConnectionError,
  ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError, SSLError or HTTPClientError;
- retries: botocore's "standard" retry handler itself (attempts, quota, backoff), asked through the
  `needs-retry` event after an attempt that failed (or whose `x-amz-crc32` does not match), so
  handlers registered there first (common/database/dynamo's transaction-conflict retry) still come first;
- the events `before-parameter-build`, `before-call`, `after-call`, `after-call-error` and
  `needs-retry` (`<event>.dynamodb.<Operation>`, the same kwargs) on `meta.events`, a botocore
  HierarchicalEmitter: metrics and tests hook them as on a boto3 client;
- parameter validation against the model when asked (botocore's validator), the idempotency
  token of TransactWriteItems, the credential chain of the default boto3 session (refreshed as
  botocore refreshes it), connect/read timeouts and the pool size of the config.

What it adds: a refusal for the signature's time whose `Date` is more than MAX_SKEW from the
host's clock is signed again once on the server's time, which the client then keeps (as the AWS
SDKs for Java and JavaScript do; botocore does not).

How it is proven, since DynamoDB Local checks no signature: tests/common/database/test_sigv4_signatures.py
(byte for byte botocore's SigV4Auth for every operation; moto in server mode with signature
checking on), tests/common/database/test_rotating_credentials.py (the ECS container endpoint and web
identity rotating keys under a front that checks every signature), test_dynamodb_tls.py (nginx
with a private CA) and test_dynamodb_throttling.py (DynamoDB's throttling and 5xx answers).
"""
from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any, Callable, cast
from urllib.parse import urlsplit

import botocore
import orjson
from botocore import parsers
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import BotoCoreError, HTTPClientError, NoCredentialsError, ResponseStreamingError
from botocore.hooks import HierarchicalEmitter
from botocore.httpsession import get_cert_path
from botocore.retries import standard
from botocore.validate import validate_parameters

from common.database.dynamo_http import ConnectionPool

# The calls a request makes; everything else is delegated to the boto3 client inside.
DATA_PLANE = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
              "BatchWriteItem", "TransactGetItems", "TransactWriteItems")
SERVICE = "dynamodb"
CONTENT_TYPE = "application/x-amz-json-1.0"
USER_AGENT = f"Botocore/{botocore.__version__} citylogin-dynamodb-client"
log = logging.getLogger(__name__)
_BINARY_KEY = re.compile(rb'"BS?"\s*:')
# Refusals that may mean "your clock is off", as the AWS SDKs for Java and JavaScript read them
# (botocore has no correction): with a Date more than MAX_SKEW away, the call is signed again on
# the server's time, once; the offset then holds for the client's later calls.
CLOCK_SKEW_CODES = frozenset({"InvalidSignatureException", "SignatureDoesNotMatch", "RequestExpired",
                              "RequestInTheFuture", "RequestTimeTooSkewed", "AuthFailure"})
MAX_SKEW = 300.0
CREDENTIALS_RETRY_AFTER = 2.0  # seconds a failed refresh of the credentials is answered from memory


@dataclass(frozen=True)
class _Operation:
    """What one operation needs per call, worked out once."""
    model: Any              # botocore OperationModel: its `.name` is what hooks read
    target: str             # X-Amz-Target
    idempotent: tuple[str, ...]
    before_parameter_build: str
    before_call: str
    after_call: str
    after_call_error: str
    needs_retry: str


@dataclass
class _Meta:
    """The part of a boto3 client's `meta` that citylogin and its tests read."""
    events: HierarchicalEmitter
    config: Any
    region_name: str
    endpoint_url: str
    service_model: Any


class HttpResponse:
    """The attempt's answer as botocore's hooks read it (status_code, headers, content)."""
    __slots__ = ("url", "status_code", "headers", "content")

    def __init__(self, url: str, status_code: int, headers: Any, content: bytes) -> None:
        self.url, self.status_code, self.headers, self.content = url, status_code, headers, content


class _Signer:
    """SigV4 for a JSON POST to "/": the five headers it signs have fixed names, so the canonical
    request is one format string; the signing key is derived once per day and secret."""

    def __init__(self, credentials: Any, region: str, host: str, clock: Callable[[], float] = time.time) -> None:
        # botocore signs (and urllib3 sends) the host in lower case: "LocalHost:8000" as "localhost:8000"
        self._credentials, self._region, self._host, self._clock = credentials, region, host.lower(), clock
        self._keys: dict[tuple[str, str], bytes] = {}
        self.offset = 0.0  # seconds to add to this host's clock: the server's, learnt from a skew refusal
        self._refresh_lock = threading.Lock()
        self._failed: tuple[float, Exception] | None = None  # (until when, what) a refresh failed

    def now(self) -> float:
        return self._clock() + self.offset

    def set_time(self, server_time: float) -> None:
        """Sign on `server_time`'s clock from now on."""
        self.offset = server_time - self._clock()

    def headers(self, target: str, body: bytes) -> dict[str, str]:
        creds = self._frozen_credentials()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.now()))
        day = stamp[:8]
        headers = {"Content-Type": CONTENT_TYPE, "Host": self._host, "X-Amz-Date": stamp, "X-Amz-Target": target}
        token_line, signed = "", "content-type;host;x-amz-date;x-amz-target"
        if creds.token:
            headers["X-Amz-Security-Token"] = creds.token
            # sent as it is, signed as SigV4 (and botocore) canonicalise a value: trimmed, runs of spaces as one
            token_line, signed = f"x-amz-security-token:{' '.join(creds.token.split())}\n", \
                "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        canonical = (f"POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{self._host}\nx-amz-date:{stamp}\n"
                     f"{token_line}x-amz-target:{target}\n\n{signed}\n{hashlib.sha256(body).hexdigest()}")
        scope = f"{day}/{self._region}/{SERVICE}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._key(creds.secret_key, day), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}")
        headers["User-Agent"] = USER_AGENT
        return headers

    def _frozen_credentials(self) -> Any:
        """The credentials to sign with now. Where botocore must refresh them before any call may go
        on (its mandatory window), one caller at a time asks it, and a failed refresh (botocore has
        retried the source already) is answered to the others for CREDENTIALS_RETRY_AFTER seconds
        rather than each waiting out the same failing source in turn."""
        if self._credentials is None:
            raise NoCredentialsError()
        mandatory = getattr(self._credentials, "_mandatory_refresh_timeout", None)
        if mandatory is None or not self._credentials.refresh_needed(mandatory):
            return self._credentials.get_frozen_credentials()
        with self._refresh_lock:
            failed = self._failed
            if failed is not None and time.monotonic() < failed[0]:
                raise failed[1]
            try:
                creds = self._credentials.get_frozen_credentials()
            except BotoCoreError as exc:
                self._failed = (time.monotonic() + CREDENTIALS_RETRY_AFTER, exc)
                raise
            self._failed = None
            return creds

    def _key(self, secret: str, day: str) -> bytes:
        key = self._keys.get((secret, day))
        if key is None:
            key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
            for part in (self._region, SERVICE, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {(secret, day): key}  # one entry: yesterday's key is never needed again
        return key


def _encode_blob(value: Any) -> str:
    """json.dumps's fallback: binary attribute values (B, BS) travel as base64, as botocore sends them."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    inner = getattr(value, "value", None)  # boto3.dynamodb.types.Binary
    if isinstance(inner, (bytes, bytearray)):
        return base64.b64encode(inner).decode("ascii")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _decode_blobs(node: dict[str, Any]) -> dict[str, Any]:
    """json.loads's object hook: an attribute value {"B": "<base64>"} or {"BS": [...]} becomes bytes.
    Only attribute values have a single key B/BS with a string or list: a map's values are dicts."""
    if "B" in node:
        value = node["B"]
        if isinstance(value, str) and len(node) == 1:
            return {"B": base64.b64decode(value)}
    elif "BS" in node:
        values = node["BS"]
        if isinstance(values, list) and len(node) == 1:
            return {"BS": [base64.b64decode(v) for v in values]}
    return node


def _parse_body(content: bytes) -> dict[str, Any]:
    if not content:
        return {}
    # The hook costs a Python call per dict: only a body with a key B or BS pays it.
    return json.loads(content, object_hook=_decode_blobs) if _BINARY_KEY.search(content) else orjson.loads(content)


class LeanDynamoDBClient:
    """A drop-in for a boto3 DynamoDB client on the data plane (see the module docstring)."""

    def __init__(self, inner: Any, *, credentials: Any, connect_timeout: float, read_timeout: float,
                 max_pool_connections: int, max_attempts: int, parameter_validation: bool,
                 clock: Callable[[], float] = time.time, owns_inner: bool = True) -> None:
        self._inner, self._owns_inner = inner, owns_inner  # a shared one is left open by close()
        self.exceptions = inner.exceptions
        endpoint_url = inner.meta.endpoint_url
        self.meta = _Meta(events=HierarchicalEmitter(), config=inner.meta.config, region_name=inner.meta.region_name,
                          endpoint_url=endpoint_url, service_model=inner.meta.service_model)
        self._validate = parameter_validation
        self._url = endpoint_url.rstrip("/") + "/"  # the request's URL, as botocore's errors name it
        # TLS verified against AWS_CA_BUNDLE or botocore's own bundle, as botocore verifies it
        ca_certs = os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True)
        self._pool = ConnectionPool(self._url, connect_timeout=connect_timeout, read_timeout=read_timeout,
                                    maxsize=max_pool_connections, ca_certs=ca_certs)
        self._signer = _Signer(credentials, inner.meta.region_name, _host(endpoint_url), clock)
        self._parser = parsers.create_parser("json")
        self._operations = _operations(inner.meta.service_model)
        # botocore's own standard retries, hooked on this client's events (it reads meta only)
        standard.register_retry_handler(cast(Any, self), max_attempts=max_attempts)

    def __getattr__(self, name: str) -> Any:
        # Control-plane calls, paginators, waiters, can_paginate ...: the regular client's.
        return getattr(self._inner, name)

    def close(self) -> None:
        self._pool.close()
        if self._owns_inner:
            self._inner.close()

    def _call(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        op = self._operations[name]
        events = self.meta.events
        context: dict[str, Any] = {}
        events.emit(op.before_parameter_build, params=params, model=op.model, context=context)
        for member in op.idempotent:
            if member not in params:
                params[member] = str(uuid.uuid4())
        if self._validate:
            validate_parameters(params, op.model.input_shape)
        request = {"url_path": "/", "query_string": "", "method": "POST", "url": self._url, "context": context,
                   "body": orjson.dumps(params, default=_encode_blob)}
        _, answer = events.emit_until_response(op.before_call, model=op.model, params=request,
                                               request_signer=None, context=context)
        if answer is None:
            try:
                answer = self._send(op, request)
            except Exception as exc:
                events.emit(op.after_call_error, exception=exc, context=context)
                raise
        http, parsed = answer
        events.emit(op.after_call, http_response=http, parsed=parsed, model=op.model, context=context)
        if http.status_code >= 300:
            raise self.exceptions.from_code(parsed.get("Error", {}).get("Code"))(parsed, name)
        return parsed

    def _send(self, op: _Operation, request: dict[str, Any]) -> tuple[HttpResponse, dict[str, Any]]:
        """Attempts until one succeeds or the needs-retry handlers (conflicts, then botocore's
        standard retries) say no more; each attempt is signed afresh, as botocore signs it."""
        attempts, corrected = 1, False
        while True:
            signed_at = self._signer.now()  # the clock this attempt is signed on
            answer, error = self._attempt(op, request["body"])
            if error is None and answer is not None and _good(answer[0]):
                break
            if answer is not None and not corrected and self._corrected_clock(answer, signed_at):
                corrected = True  # one more attempt, signed on the server's time, outside the retry count
                continue
            delays = self.meta.events.emit(op.needs_retry, response=answer, endpoint=None, operation=op.model,
                                           attempts=attempts, caught_exception=error, request_dict=request)
            delay = next((d for _, d in delays if d is not None), None)
            if delay is None or delay is False:
                break
            time.sleep(delay)
            attempts += 1
        if error is not None:
            raise error
        assert answer is not None
        answer[1]["ResponseMetadata"]["RetryAttempts"] = attempts - 1
        return answer

    def _attempt(self, op: _Operation,
                 body: bytes) -> tuple[tuple[HttpResponse, dict[str, Any]] | None, Exception | None]:
        try:
            status, headers, content = self._pool.post(self._signer.headers(op.target, body), body)
        except (BotoConnectionError, HTTPClientError) as exc:  # no answer: refused, reset, timed out
            return None, exc
        http = HttpResponse(self._url, status, headers, content)
        if status >= 300 and _checksum_matches(http):  # botocore checks an error's x-amz-crc32 too
            return (http, self._parse_error(op, http)), None
        if not _good(http):
            # Damaged on its way (often cut short, so not JSON): never parsed, never returned as an
            # answer, but a failed exchange that botocore's standard mode retries like a reset.
            return None, ResponseStreamingError(error=f"the body does not match its x-amz-crc32 "
                                                      f"{headers.get('x-amz-crc32')} (status {status})")
        parsed = _parse_body(content)
        parsed["ResponseMetadata"] = _metadata(http)
        return (http, parsed), None

    def _corrected_clock(self, answer: tuple[HttpResponse, dict[str, Any]], signed_at: float) -> bool:
        """A refusal for the signature's time whose Date is more than MAX_SKEW from the time the
        attempt was signed on: take the server's clock (as the offset) unless a concurrent call
        already has, and say so; anything else: False."""
        http, parsed = answer
        if parsed.get("Error", {}).get("Code") not in CLOCK_SKEW_CODES:
            return False
        try:
            server = email.utils.parsedate_to_datetime(http.headers.get("date", "")).timestamp()
        except (TypeError, ValueError):
            return False
        if abs(server - signed_at) < MAX_SKEW:
            return False
        # Calls in flight when the skew shows were all signed on the old clock: the first to be
        # refused corrects it, the others (their Dates now near our corrected time) only retry.
        if abs(server - self._signer.now()) >= MAX_SKEW:
            self._signer.set_time(server)
            log.warning("DynamoDB refused a signature for the time (clock skew of %.0f s): signing on the "
                        "server's clock from now on", self._signer.offset)
        return True

    def _parse_error(self, op: _Operation, http: HttpResponse) -> dict[str, Any]:
        """botocore's own parse of an error answer, with the error shape's modeled fields."""
        response = {"headers": http.headers, "status_code": http.status_code, "body": http.content,
                    "context": {"operation_name": op.model.name}}
        parsed = self._parser.parse(response, op.model.output_shape)
        code = parsed.get("Error", {}).get("Code")
        shape = self.meta.service_model.shape_for_error_code(code) if code else None
        if shape is not None:
            parsed.update(self._parser.parse(response, shape))
        return parsed

    # The data-plane calls, as a boto3 client names them.
    def get_item(self, **params: Any) -> dict[str, Any]:
        return self._call("GetItem", params)

    def put_item(self, **params: Any) -> dict[str, Any]:
        return self._call("PutItem", params)

    def update_item(self, **params: Any) -> dict[str, Any]:
        return self._call("UpdateItem", params)

    def delete_item(self, **params: Any) -> dict[str, Any]:
        return self._call("DeleteItem", params)

    def query(self, **params: Any) -> dict[str, Any]:
        return self._call("Query", params)

    def scan(self, **params: Any) -> dict[str, Any]:
        return self._call("Scan", params)

    def batch_get_item(self, **params: Any) -> dict[str, Any]:
        return self._call("BatchGetItem", params)

    def batch_write_item(self, **params: Any) -> dict[str, Any]:
        return self._call("BatchWriteItem", params)

    def transact_get_items(self, **params: Any) -> dict[str, Any]:
        return self._call("TransactGetItems", params)

    def transact_write_items(self, **params: Any) -> dict[str, Any]:
        return self._call("TransactWriteItems", params)


def _good(http: HttpResponse) -> bool:
    """A 2xx whose body matches DynamoDB's x-amz-crc32 (botocore retries a mismatch)."""
    return http.status_code < 300 and _checksum_matches(http)


def _checksum_matches(http: HttpResponse) -> bool:
    expected = http.headers.get("x-amz-crc32")
    return expected is None or int(expected) == zlib.crc32(http.content) & 0xFFFFFFFF


def _metadata(http: HttpResponse) -> dict[str, Any]:
    headers = http.headers
    metadata: dict[str, Any] = {}
    request_id = headers.get("x-amzn-requestid")
    if request_id is not None:
        metadata["RequestId"] = request_id
    metadata["HTTPStatusCode"] = http.status_code
    metadata["HTTPHeaders"] = dict(headers)  # names already in lower case, as botocore gives them
    return metadata


# The data-plane operations of a service model, read once per model (clients of one configuration share theirs).
_OPERATIONS: dict[int, tuple[Any, dict[str, _Operation]]] = {}


def _operations(service_model: Any) -> dict[str, _Operation]:
    known = _OPERATIONS.get(id(service_model))
    if known is not None and known[0] is service_model:
        return known[1]
    operations = {name: _operation(service_model, name) for name in DATA_PLANE}
    if len(_OPERATIONS) >= 16:  # models of clients not shared (another endpoint each): kept only a while
        _OPERATIONS.clear()
    _OPERATIONS[id(service_model)] = (service_model, operations)
    return operations


def _operation(service_model: Any, name: str) -> _Operation:
    model = service_model.operation_model(name)
    prefix = service_model.metadata["targetPrefix"]
    return _Operation(model=model, target=f"{prefix}.{name}", idempotent=tuple(model.idempotent_members),
                      before_parameter_build=f"before-parameter-build.{SERVICE}.{name}",
                      before_call=f"before-call.{SERVICE}.{name}", after_call=f"after-call.{SERVICE}.{name}",
                      after_call_error=f"after-call-error.{SERVICE}.{name}",
                      needs_retry=f"needs-retry.{SERVICE}.{name}")


def _host(url: str) -> str:
    """The Host header (and signed host): the port only when it is not the scheme's default."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return host.rsplit(":", 1)[0] if parts.port is not None and parts.port == default else host
