"""The batch of request and DynamoDB call counts (common.web.metrics._Batch, issue 66): what it writes adds up to
what prometheus_client would have counted one by one, under real threads, and a scrape shows every
request that completed in its process before it began."""
from __future__ import annotations

import sys
import threading

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from citylogin.app import create_app
from tests.citylogin.test_metrics import TOKEN, value
from tests.support.waiting import wait_until
from common.runtime.context import EXTENSION_KEY
from common.web.metrics import _Batch


def _pair(registry: CollectorRegistry) -> tuple[Counter, Histogram]:
    return (Counter("t_requests_total", "requests", ["route"], registry=registry),
            Histogram("t_request_seconds", "request time", ["route"], registry=registry))


def _samples(registry: CollectorRegistry) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples if not s.name.endswith("_created")}


durations = st.floats(min_value=0, max_value=30, allow_nan=False)
# The bounds themselves and their neighbours: a duration equal to a bound falls in that bound's bucket.
on_the_bounds = st.sampled_from([b for bound in Histogram.DEFAULT_BUCKETS[:-1] for b in (bound, bound * (1 - 1e-12),
                                                                                        bound * (1 + 1e-12))])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["/a", "/b/<id>"]), st.one_of(durations, on_the_bounds)), max_size=40))
def test_a_flushed_batch_shows_what_observing_one_by_one_shows(observations):
    one_by_one, batched = CollectorRegistry(), CollectorRegistry()
    counter, histogram = _pair(one_by_one)
    batch_counter, batch_histogram = _pair(batched)
    batch = _Batch()
    for route, seconds in observations:
        counter.labels(route).inc()
        histogram.labels(route).observe(seconds)
        batch.count_and_observe(batch_counter, batch_histogram, (route,), seconds)
    batch.flush()
    expected, got = _samples(one_by_one), _samples(batched)
    assert got.keys() == expected.keys()
    for name, number in expected.items():
        assert abs(got[name] - number) <= 1e-9 * max(1.0, abs(number)), name  # a sum may add in another order


def test_counts_from_many_threads_add_up_while_flushes_run():
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as they can: a count lost between two would show
    try:
        _count_from_threads()
    finally:
        sys.setswitchinterval(switch_interval)


def _count_from_threads() -> None:
    registry = CollectorRegistry()
    counter, histogram = _pair(registry)
    batch, threads_n, each = _Batch(), 8, 2000
    start, done = threading.Barrier(threads_n + 1), threading.Event()

    def requests() -> None:
        start.wait()
        for _ in range(each):
            batch.count_and_observe(counter, histogram, ("/a",), 0.003)

    def flushes() -> None:
        start.wait()
        while not done.is_set():
            batch.flush()

    workers = [threading.Thread(target=requests) for _ in range(threads_n)]
    flusher = threading.Thread(target=flushes)
    for thread in [*workers, flusher]:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    flusher.join()
    batch.flush()
    assert registry.get_sample_value("t_requests_total", {"route": "/a"}) == threads_n * each
    assert registry.get_sample_value("t_request_seconds_count", {"route": "/a"}) == threads_n * each
    assert registry.get_sample_value("t_request_seconds_bucket", {"route": "/a", "le": "0.005"}) == threads_n * each
    assert abs(registry.get_sample_value("t_request_seconds_sum", {"route": "/a"}) - 0.003 * threads_n * each) < 1e-6


def test_the_batch_is_written_without_a_scrape_within_its_bound():
    registry = CollectorRegistry()
    counter, histogram = _pair(registry)
    batch = _Batch()
    batch.count_and_observe(counter, histogram, ("/a",), 0.01)
    # No flush called here: the batch's own thread writes it (FLUSH_SECONDS after the count).
    # The flush writes the counter, then the histogram: wait for both, never assume the second follows at once.
    wait_until(lambda: registry.get_sample_value("t_requests_total", {"route": "/a"}) == 1
               and registry.get_sample_value("t_request_seconds_count", {"route": "/a"}) == 1,
               what="the batch's thread writes the count and the time")
    assert registry.get_sample_value("t_requests_total", {"route": "/a"}) == 1


def test_a_scrape_shows_every_request_completed_before_it(base_config):
    client = create_app({**base_config, "metrics_token": TOKEN}).test_client()
    before = _scrape(client)
    for n in range(1, 9):
        assert client.get("/healthz", buffered=True).status_code == 200  # buffered: closed, so completed
        after = _scrape(client)  # at once: no wait for the batch's thread
        labels = {"method": "GET", "route": "/healthz", "status": "200"}
        assert value(after, "citylogin_http_requests_total", **labels) \
            - value(before, "citylogin_http_requests_total", **labels) == n
        assert value(after, "citylogin_http_request_duration_seconds_count", **labels) \
            - value(before, "citylogin_http_request_duration_seconds_count", **labels) == n


def test_a_scrape_shows_every_dynamodb_call_completed_before_it(base_config):
    app = create_app({**base_config, "metrics_token": TOKEN})
    client, dynamodb = app.test_client(), app.extensions[EXTENSION_KEY].dynamodb
    before = _scrape(client)
    try:
        dynamodb.get_item(TableName="no-such-table-here", Key={"k": {"S": "x"}})
    except dynamodb.exceptions.ResourceNotFoundException:
        pass
    after = _scrape(client)  # at once: no wait for the batch's thread

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("citylogin_dynamodb_calls_total", operation="GetItem", source="request") == 1
    assert moved("citylogin_dynamodb_call_duration_seconds_count", operation="GetItem") >= 1  # pollers' reads too
    assert moved("citylogin_dynamodb_errors_total", operation="GetItem", error="ResourceNotFoundException") == 1


def _scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, buffered=True)
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}
