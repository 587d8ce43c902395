"""Prometheus metrics and `GET /metrics` (text format), also across gunicorn workers.

The metric objects are process-wide, as prometheus_client wants them. Under several worker
processes set PROMETHEUS_MULTIPROC_DIR (prometheus_client's own variable, read when it is first
imported) and have the server mark dead workers (deploy/gunicorn.conf.py).

What every request and every DynamoDB call counts goes through a batch (`_Batch`), written to the
metrics at each scrape of the process and FLUSH_SECONDS after its first count since the last write."""
from __future__ import annotations

import atexit
import bisect
import hmac
import os
import threading
import time
from typing import Any

from flask import Blueprint, Response, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder

from common import thread_kind
from common.errors import NotFound, Unauthorized
from common.runtime.context import ctx

HTTP_REQUESTS = Counter("citylogin_http_requests_total", "HTTP requests answered.",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("citylogin_http_request_duration_seconds",
                         "Time from a request's arrival to the end of its response.",
                         ["method", "route", "status"])
LOGINS = Counter("citylogin_logins_total", "Login attempts by result (success or the failure reason).", ["result"])
EVICTIONS = Counter("citylogin_evictions_total", "Sessions displaced by another device's login.")
AUDIT_EVENTS = Counter("citylogin_audit_events_total", "Security events written to the audit stream.", ["event"])
EVENT_STREAMS = Gauge("citylogin_event_streams_active", "Open GET /session/events streams.",
                      multiprocess_mode="livesum")
POLLS_HELD = Gauge("citylogin_ssf_polls_held", "RFC 8936 long polls held, waiting for an event.",
                   multiprocess_mode="livesum")
DYNAMODB_CALLS = Counter("citylogin_dynamodb_calls_total",
                         "DynamoDB API calls made, by the requests (and the work they leave for after their answer) "
                         "or by the process's own scheduled work (key ring, app registry, feeds, pushers, sweepers).",
                         ["operation", "source"])
DYNAMODB_ERRORS = Counter("citylogin_dynamodb_errors_total",
                          "DynamoDB API calls that failed, by error code or exception.", ["operation", "error"])
DYNAMODB_LATENCY = Histogram("citylogin_dynamodb_call_duration_seconds",
                             "DynamoDB API call time, retries included.", ["operation"])

OIDC_REFUSALS = Counter("citylogin_oidc_refusals_total",
                        "OpenID Provider requests refused (authorization, PAR, token, revocation), by the OAuth error "
                        "and a finer reason.", ["endpoint", "error", "reason"])

FEDERATION_REFUSALS = Counter("citylogin_federation_refusals_total",
                              "Answers of upstream identity providers refused at /federation (SPEC §16), by provider "
                              "and reason.", ["provider", "reason"])

_STARTED, _OPERATION = "citylogin_started", "citylogin_operation"

_HOOK_ID = "citylogin-metrics"


# Another process's scrape shows a request or DynamoDB call at most this long after it completed
# (docs/reference/metrics.md; bench/dynamo_calls.py reads the calls 0.5 s after its requests).
FLUSH_SECONDS = 0.2
_BOUNDS = tuple(Histogram.DEFAULT_BUCKETS)  # the upper bounds of both histograms of the batch


class _Batch:
    """The counts and times of requests and DynamoDB calls since they were last written to the metrics.

    Why: under PROMETHEUS_MULTIPROC_DIR every write to a metric takes a lock, checks the pid and writes the
    file, three writes per request and three per call; here a request costs one lock and a dict update.
    A scrape writes the batch first (`flush`), so it shows every request and call that completed in its
    own process before it began; a thread writes it FLUSH_SECONDS after its first count since the last
    write, so that other processes' scrapes see it too; so does the process's exit."""

    def __init__(self) -> None:
        self._start_empty()

    def _start_empty(self) -> None:
        self._lock = threading.Lock()  # the pending counts
        self._writing = threading.Lock()  # one flush at a time: a scrape waits for one under way
        self._counts: dict[tuple[Counter, tuple[str, ...]], int] = {}
        self._times: dict[tuple[Histogram, tuple[str, ...]], list[float]] = {}  # [sum, count per bound...]
        self._due = threading.Event()  # something is pending
        self._flusher: threading.Thread | None = None

    def count(self, counter: Counter, labels: tuple[str, ...]) -> None:
        with self._lock:
            self._counts[counter, labels] = self._counts.get((counter, labels), 0) + 1
            self._pending()

    def observe(self, histogram: Histogram, labels: tuple[str, ...], seconds: float) -> None:
        with self._lock:
            self._add_time(histogram, labels, seconds)
            self._pending()

    def count_and_observe(self, counter: Counter, histogram: Histogram, labels: tuple[str, ...],
                          seconds: float) -> None:
        with self._lock:
            self._counts[counter, labels] = self._counts.get((counter, labels), 0) + 1
            self._add_time(histogram, labels, seconds)
            self._pending()

    def _add_time(self, histogram: Histogram, labels: tuple[str, ...], seconds: float) -> None:
        times = self._times.get((histogram, labels))
        if times is None:
            times = self._times[histogram, labels] = [0.0] * (len(_BOUNDS) + 1)
        times[0] += seconds
        times[1 + bisect.bisect_left(_BOUNDS, seconds)] += 1  # the first bound >= seconds, as observe() finds it

    def _pending(self) -> None:
        if not self._due.is_set():
            self._due.set()
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_when_due, name="metrics-flush", daemon=True)
                self._flusher.start()
                atexit.register(self.flush)  # a worker that stops leaves its last counts in the files

    def _flush_when_due(self) -> None:
        while True:
            self._due.wait()
            time.sleep(FLUSH_SECONDS)  # the batch's window: what comes in it is written together
            self.flush()

    def flush(self) -> None:
        """Write what is pending to the metrics; on return, everything recorded before the call is in them."""
        with self._writing:
            with self._lock:
                counts, self._counts = self._counts, {}
                times, self._times = self._times, {}
                self._due.clear()
            for (counter, labels), n in counts.items():
                counter.labels(*labels).inc(n)
            for (histogram, labels), (total, *per_bound) in times.items():
                _add_observations(histogram.labels(*labels), total, per_bound)

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's pending counts are the parent's, and its thread did not come along."""
        self._start_empty()


def _add_observations(child: Histogram, total: float, per_bound: list[float]) -> None:
    # prometheus_client writes one observation at a time (observe); many at once means writing its
    # histogram's values directly: the sum, and one count per bucket (not cumulative, as observe() keeps
    # them). tests/common/web/test_metrics_batch.py holds a flushed histogram equal to one observed one by one.
    child._sum.inc(total)
    for bucket, n in zip(child._buckets, per_bound, strict=True):
        if n:
            bucket.inc(n)


_BATCH = _Batch()
os.register_at_fork(after_in_child=_BATCH.forget_after_fork)


def observe_request(*, method: str, route: str, status: int, seconds: float) -> None:
    _BATCH.count_and_observe(HTTP_REQUESTS, HTTP_LATENCY, (method, route, str(status)), seconds)


def count_audit_event(event: str, *, reason: str | None = None) -> None:
    """Counters fed by the audit stream: every event, logins by result, evictions."""
    AUDIT_EVENTS.labels(event).inc()
    if event == "login_success":
        LOGINS.labels("success").inc()
    elif event == "login_failure":
        LOGINS.labels(reason or "unknown").inc()
    elif event == "session_evicted":
        EVICTIONS.inc()


# --- DynamoDB calls: a botocore event hook on the app's client ---------------------------

def _before_call(model: Any, context: dict[str, Any], **_: Any) -> None:
    context[_STARTED], context[_OPERATION] = time.perf_counter(), model.name
    _BATCH.count(DYNAMODB_CALLS, (model.name, thread_kind.current()))


def _after_call(http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if http_response.status_code >= 300:  # a ClientError is raised right after this event
        code = (parsed.get("Error") or {}).get("Code") or str(http_response.status_code)
        DYNAMODB_ERRORS.labels(model.name, code).inc()
    _observe_call(context)


def _after_call_error(exception: BaseException, context: dict[str, Any], **_: Any) -> None:
    # No answer at all (timeout, connection refused): after-call is not emitted.
    DYNAMODB_ERRORS.labels(context.get(_OPERATION, "unknown"), type(exception).__name__).inc()
    _observe_call(context)


def _observe_call(context: dict[str, Any]) -> None:
    if _STARTED in context:
        _BATCH.observe(DYNAMODB_LATENCY, (context[_OPERATION],), time.perf_counter() - context[_STARTED])


def instrument_dynamodb(client: Any) -> None:
    """Count and time every call `client` makes; registering twice on one client is harmless."""
    events = client.meta.events
    events.register("before-call.dynamodb", _before_call, unique_id=_HOOK_ID + "-before")
    events.register("after-call.dynamodb", _after_call, unique_id=_HOOK_ID + "-after")
    events.register("after-call-error.dynamodb", _after_call_error, unique_id=_HOOK_ID + "-error")


# --- GET /metrics ----------------------------------------------------------------------------

def _registry() -> CollectorRegistry:
    # prometheus_client's own variable (not a CITYLOGIN_ setting): its values are then files that
    # every worker writes, and a scrape of any worker must read all of them.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _check_scraper() -> None:
    """404 unless CITYLOGIN_METRICS_TOKEN is set (not public by default); 401 unless it is the Bearer."""
    token = ctx().settings.metrics_token
    if token is None:
        raise NotFound()
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                              token.get_secret_value().encode()):
        raise Unauthorized("/metrics needs the Bearer token of CITYLOGIN_METRICS_TOKEN.")


def metrics_blueprint() -> Blueprint:
    bp = Blueprint("metrics", __name__)

    @bp.get("/metrics")
    def scrape() -> Response:
        _check_scraper()
        # text 0.0.4 or OpenMetrics; choose_encoder reads a missing header (None) as "" though typed str
        encode, content_type = choose_encoder(request.headers.get("Accept"))  # type: ignore[arg-type]
        _BATCH.flush()
        return Response(encode(_registry()), content_type=content_type, headers={"Cache-Control": "no-store"})

    return bp
