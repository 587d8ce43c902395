"""GET /metrics (issue 9, operability): Prometheus text behind CITYLOGIN_METRICS_TOKEN, and the
counters it shows move with requests, logins, evictions, event streams and DynamoDB calls."""
from __future__ import annotations

import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from citylogin.client.api import CityloginError
from tests.support.fixtures import bearer_problem, problem
from tests.support.live import PASSWORD, add_device, register_device

TOKEN = "metrics-scraper-token-0123456789"


def scrape(url: str, token: str = TOKEN) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of one scrape."""
    response = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(samples: dict[tuple, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_not_served_without_a_configured_token(make_server):
    url, _ = make_server()
    response = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert problem(response)[:2] == (404, "not_found")


def test_metrics_need_the_bearer_token(make_server):
    url, _ = make_server(metrics_token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}):
        response = requests.get(url + "/metrics", headers=headers, timeout=10)
        assert bearer_problem(response)[:2] == (401, "invalid_token"), headers
        assert TOKEN not in response.text
    assert scrape(url)


def test_counters_move_with_logins_requests_and_dynamodb_calls(make_server):
    url, _ = make_server(metrics_token=TOKEN)
    device = register_device(url)
    before = scrape(url)
    device.login(PASSWORD)
    assert device.request("GET", "/session/me").status_code == 200
    try:
        device.login("wrong password")
    except CityloginError as failed:
        assert failed.code == "invalid_credentials"
    # A request is counted when its response has gone out: wait for the last one's count (the failed
    # login) as well as the first's, or a busy machine scrapes before the failed login is counted.
    after = wait_for_scrape(url, lambda s: all(
        value(s, "citylogin_http_requests_total", **labels) > value(before, "citylogin_http_requests_total", **labels)
        for labels in ({"method": "GET", "route": "/session/me", "status": "200"},
                       {"method": "POST", "route": "/login/", "status": "401"})))

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("citylogin_http_requests_total", method="GET", route="/session/me", status="200") == 1
    assert moved("citylogin_http_requests_total", method="POST", route="/login/", status="200") == 1
    assert moved("citylogin_http_requests_total", method="POST", route="/login/", status="401") == 1
    assert moved("citylogin_http_request_duration_seconds_count", method="GET", route="/session/me",
                 status="200") == 1
    assert moved("citylogin_logins_total", result="success") == 1
    assert moved("citylogin_logins_total", result="invalid_credentials") == 1
    assert moved("citylogin_dynamodb_calls_total", operation="GetItem", source="request") >= 1  # the protected request
    assert moved("citylogin_dynamodb_calls_total", operation="TransactWriteItems", source="request") >= 1  # the login
    assert moved("citylogin_dynamodb_call_duration_seconds_count", operation="GetItem") >= 1
    assert moved("citylogin_audit_events_total", event="login_success") == 1


def test_evictions_and_event_streams_are_counted(make_server):
    url, ctx = make_server(metrics_token=TOKEN, concurrency_policy="force", events_heartbeat=1)
    first = register_device(url)
    second = add_device(ctx, first)
    first.login(PASSWORD)
    before = scrape(url)
    stream = first.request("GET", "/session/events", stream=True)
    assert stream.status_code == 200
    opened = scrape(url)
    assert value(opened, "citylogin_event_streams_active") == value(before, "citylogin_event_streams_active") + 1

    second.login(PASSWORD)  # displaces the first device: its stream ends with session_revoked
    assert b"session_revoked" in b"".join(stream.iter_content(chunk_size=None))
    stream.close()
    after = wait_for_scrape(url, lambda s: value(s, "citylogin_event_streams_active")
                            == value(before, "citylogin_event_streams_active"))
    assert value(after, "citylogin_evictions_total") - value(before, "citylogin_evictions_total") == 1
    assert value(after, "citylogin_logins_total", result="success") - \
        value(before, "citylogin_logins_total", result="success") == 1


def test_dynamodb_errors_are_counted_by_operation(make_server):
    url, ctx = make_server(metrics_token=TOKEN)
    before = scrape(url)
    try:
        ctx.dynamodb.get_item(TableName="no-such-table-here", Key={"k": {"S": "x"}})
    except ctx.dynamodb.exceptions.ResourceNotFoundException:
        pass
    after = scrape(url)
    assert value(after, "citylogin_dynamodb_errors_total", operation="GetItem", error="ResourceNotFoundException") \
        == value(before, "citylogin_dynamodb_errors_total", operation="GetItem",
                 error="ResourceNotFoundException") + 1


def wait_for_scrape(url: str, ready, timeout: float = 30.0) -> dict[tuple, float]:
    """Scrape until `ready(samples)`: a request is counted when its response is closed, which may
    be just after the client has read it."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)
