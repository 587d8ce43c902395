"""DynamoDB goes away and comes back (issue 8, defect 2): while it is away every request answers
503 service_unavailable with Retry-After, never 500; the log gets a line per burst, not a
traceback per request; the event stream's watcher survives; and the service recovers by itself.
DynamoDB Local sits behind a proxy whose line is cut and restored: to the app that is a killed and
restarted DynamoDB (refused and reset connections), without the JVM's start-up time."""
from __future__ import annotations

import logging
import time

import requests

from sessions.streams import EVENT_FEED
from tests.sessions.test_events import EventReader
from tests.support.fixtures import problem
from tests.support.live import PASSWORD, register_device, settle_background
from tests.support.tcp_faults import FaultyProxy
from tests.test_code_shape import ROOT, python_packages

PRODUCT = frozenset(package.name for package in python_packages(ROOT))


def of_the_product(record: logging.LogRecord) -> bool:
    """A line the product logged: not one of another library's, such as asyncio's word on a browser
    test's task the garbage collector found pending, which an earlier test of this process left."""
    return record.name.split(".")[0] in PRODUCT


OUTAGE_SECONDS = 4.0


def requests_during_outage(url: str, client) -> list[requests.Response]:
    """A mix of routes (a protected read, refresh, login with its background reads, registration,
    readiness) sent for OUTAGE_SECONDS."""
    login = {"username": client.key_file.username, "password": PASSWORD, "challenge": "c" * 43,
             "signature": "AAAA", "client_cert": client.key_file.client_cert_b64()}

    def calls() -> list[tuple[str, str, dict]]:  # new DPoP proofs each round: a proof is single-use
        return [("GET", "/session/me", {"headers": client.auth_headers("GET", url + "/session/me")}),
                ("POST", "/session/refresh", {"json": {"refresh_token": client.refresh_token},
                                              "headers": {"DPoP": client.proof("POST", url + "/session/refresh")}}),
                ("POST", "/login/", {"json": login}),
                ("POST", "/login/challenge", {"json": {}}),
                ("POST", "/registration/", {"json": {"username": "outage", "email": "outage@example.com",
                                                     "password": PASSWORD}}),
                ("GET", "/readyz", {})]

    answers = []
    deadline = time.monotonic() + OUTAGE_SECONDS
    while time.monotonic() < deadline:
        for method, path, kwargs in calls():
            answers.append(requests.request(method, url + path, timeout=15, **kwargs))
    return answers


def wait_until_ready(url: str, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if requests.get(url + "/readyz", timeout=5).status_code == 200:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"not ready {timeout} s after DynamoDB came back")


def test_outage_answers_503_logs_once_per_burst_and_recovers(make_server, dynamodb_endpoint, caplog):
    caplog.set_level(logging.INFO)
    line = FaultyProxy(dynamodb_endpoint)  # cut and restored like a killed and restarted DynamoDB
    try:
        url, ctx = make_server(dynamodb_endpoint_url=line.url)
        client = register_device(url)
        client.login(PASSWORD)
        stream = EventReader(url, client)
        assert stream.opened
        settle_background(ctx)  # the login's history row is written before the cut

        line.close()
        caplog.clear()
        answers = requests_during_outage(url, client)
        feed = ctx.slots.get(EVENT_FEED)
        watcher_alive = feed is not None and feed._thread.is_alive()
        outage_records = [r for r in caplog.records if r.levelno >= logging.WARNING and of_the_product(r)]

        line = line.restarted()
        recovered_in = wait_until_ready(url, timeout=10)
        me = client.request("GET", "/session/me")
        client.logout()
        event = stream.wait(10)
    finally:
        line.close()

    assert len(answers) > 30
    statuses = {(problem(a)[:2], a.headers.get("Retry-After")) for a in answers}
    assert statuses == {((503, "service_unavailable"), "5")}
    # One line from the request handler and one from the session watcher for the whole burst.
    assert len(outage_records) <= 2, [r.getMessage() for r in outage_records]
    assert all(r.exc_info is None for r in outage_records)
    assert any("DynamoDB unavailable" in r.getMessage() for r in outage_records)
    assert watcher_alive
    assert recovered_in < 10 and me.status_code == 200
    assert event[0] == "session_revoked" and event[1]["reason"] == "logged_out"  # the watcher kept polling
