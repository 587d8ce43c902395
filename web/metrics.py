"""Prometheus metrics and `GET /metrics` (text format), also across gunicorn workers.

The metric objects are process-wide, as prometheus_client wants them. Under several worker
processes set PROMETHEUS_MULTIPROC_DIR (prometheus_client's own variable, read when it is first
imported) and have the server mark dead workers (deploy/gunicorn.conf.py)."""
from __future__ import annotations

import hmac
import os
import time
from typing import Any

from flask import Blueprint, Response, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder

from common import thread_kind
from common.errors import NotFound, Unauthorized
from web.context import ctx

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

_STARTED, _OPERATION = "citylogin_started", "citylogin_operation"

_HOOK_ID = "citylogin-metrics"


def observe_request(*, method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route, str(status)).observe(seconds)


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

def _before_call(model: Any, context: dict, **_: Any) -> None:
    context[_STARTED], context[_OPERATION] = time.perf_counter(), model.name
    DYNAMODB_CALLS.labels(model.name, thread_kind.current()).inc()


def _after_call(http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
    if http_response.status_code >= 300:  # a ClientError is raised right after this event
        code = (parsed.get("Error") or {}).get("Code") or str(http_response.status_code)
        DYNAMODB_ERRORS.labels(model.name, code).inc()
    _observe_call(context)


def _after_call_error(exception: BaseException, context: dict, **_: Any) -> None:
    # No answer at all (timeout, connection refused): after-call is not emitted.
    DYNAMODB_ERRORS.labels(context.get(_OPERATION, "unknown"), type(exception).__name__).inc()
    _observe_call(context)


def _observe_call(context: dict) -> None:
    if _STARTED in context:
        DYNAMODB_LATENCY.labels(context[_OPERATION]).observe(time.perf_counter() - context[_STARTED])


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
    def scrape():
        _check_scraper()
        encode, content_type = choose_encoder(request.headers.get("Accept"))  # text 0.0.4 or OpenMetrics
        return Response(encode(_registry()), content_type=content_type, headers={"Cache-Control": "no-store"})

    return bp
