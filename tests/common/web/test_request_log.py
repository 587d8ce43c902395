"""The access log (issue 9, operability): one line per request with method, URL rule, status,
latency and request id; the id echoed in X-Request-ID; never a query string or a raw path."""
from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
import uuid

import pytest
import requests

from tests.conftest import config_env
from common.web.log_setup import JsonFormatter
from common.web.request_log import request_id_from

ACCESS = "citylogin.access"


def access_records(caplog, count: int = 1) -> list[logging.LogRecord]:
    """The access records, once there are `count`: a line is written when the server closes the
    response, which may be just after the client has read it."""
    deadline = time.monotonic() + 30
    while True:
        records = [r for r in caplog.records if r.name == ACCESS]
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


@pytest.mark.parametrize("given", ["abc-123", "A.b_c-9", "x" * 128])
def test_a_sane_request_id_is_kept(given):
    assert request_id_from(given) == given


@pytest.mark.parametrize("given", [None, "", "x" * 129, "has space", "semi;colon", "new\nline", "ünï"])
def test_any_other_request_id_is_replaced(given):
    made = request_id_from(given)
    assert made != given and len(made) == 32 and int(made, 16) >= 0


def test_one_json_access_line_per_request_with_the_clients_request_id(make_server, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS)
    url, _ = make_server()
    response = requests.get(url + "/healthz", headers={"X-Request-ID": "req-from-client.1"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "req-from-client.1"

    (record,) = [r for r in access_records(caplog) if r.request_id == "req-from-client.1"]
    line = json.loads(JsonFormatter().format(record))
    assert line["logger"] == ACCESS and line["level"] == "INFO" and line["time"]
    assert {k: line[k] for k in ("method", "route", "status", "request_id")} == {
        "method": "GET", "route": "/healthz", "status": 200, "request_id": "req-from-client.1"}
    assert isinstance(line["latency_ms"], float) and 0 <= line["latency_ms"] < 10_000


def test_an_insane_request_id_is_replaced_and_returned(make_server, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS)
    url, _ = make_server()
    response = requests.get(url + "/healthz", headers={"X-Request-ID": "bad id " + "x" * 200}, timeout=10)
    made = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)  # a new id, nothing of the one sent (whose "bad" is hex too)
    assert [r.request_id for r in access_records(caplog)] == [made]


def test_the_route_is_the_url_rule_never_the_path_or_query(make_server, caplog):
    caplog.set_level(logging.DEBUG)
    url, _ = make_server()
    secret = "eyJsecret" + uuid.uuid4().hex
    session_id = str(uuid.uuid4())
    # Each line is written when the server closes its response, perhaps after the next request:
    # wait for it, so that the lines are in the order of the requests.
    assert requests.get(f"{url}/session/events?access_token={secret}", timeout=10).status_code == 401
    access_records(caplog, 1)
    assert requests.delete(f"{url}/session/{session_id}", headers={"Authorization": f"Bearer {secret}"},
                           timeout=10).status_code == 401
    access_records(caplog, 2)
    assert requests.get(f"{url}/no/such/{secret}", timeout=10).status_code == 404

    lines = [json.loads(JsonFormatter().format(r)) for r in access_records(caplog, 3)]
    assert [(x["method"], x["route"], x["status"]) for x in lines] == [
        ("GET", "/session/events", 401), ("DELETE", "/session/<uuid:session_id>", 401),
        ("GET", "<unmatched>", 404)]
    everything = caplog.text + "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert secret not in everything and session_id not in everything


def test_json_format_writes_only_json_lines(dynamodb_endpoint, data_dir, table_prefix, tmp_path):
    """CITYLOGIN_LOG_FORMAT=json in a real process: every line on stderr is one JSON object."""
    script = (
        "from citylogin.app import create_app\n"
        "app = create_app()\n"
        "with app.test_client() as client:\n"
        "    client.get('/healthz', headers={'X-Request-ID': 'req-42'}).close()\n"
        "    client.get('/session/events?access_token=sekrit-value').close()\n"
        "import logging; logging.getLogger('citylogin.test').warning('multi\\nline')\n")
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir,
                      "table_prefix": table_prefix + "json_", "log_format": "json", "log_level": "INFO",
                      "argon2_memory_cost": 8192})
    done = subprocess.run([sys.executable, "-c", script], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # each line parses
    access = [x for x in lines if x["logger"] == ACCESS]
    assert [(x["route"], x["status"], x["request_id"]) for x in access][0] == ("/healthz", 200, "req-42")
    assert access[1]["route"] == "/session/events" and access[1]["status"] == 401
    assert any(x["message"] == "multi\nline" for x in lines)
    assert "sekrit-value" not in done.stderr


def test_an_apps_answered_poll_is_logged_at_debug_and_a_refused_one_at_info(make_server, caplog):
    """A guard polls its events every few seconds for as long as it runs: a poll answered 200 is steady
    state (DEBUG, kept out of an INFO log); a refused one says something changed (INFO)."""
    from relying_parties import service as apps

    caplog.set_level(logging.DEBUG, logger=ACCESS)
    url, ctx = make_server()
    app = apps.add_app(ctx, name="polling app", push_url=None)
    credentials = (app.app.client_id, app.client_secret)
    for request_id, auth in (("poll-answered", credentials), ("poll-refused", (app.app.client_id, "wrong"))):
        requests.post(url + "/ssf/poll", json={"returnImmediately": True}, auth=auth,
                      headers={"X-Request-ID": request_id}, timeout=10)
    requests.get(url + "/healthz", headers={"X-Request-ID": "beside-the-polls"}, timeout=10)
    records = {r.request_id: (r.route, r.status, r.levelname) for r in access_records(caplog, 3)}
    assert records == {"poll-answered": ("/ssf/poll", 200, "DEBUG"), "poll-refused": ("/ssf/poll", 401, "INFO"),
                       "beside-the-polls": ("/healthz", 200, "INFO")}


def test_a_request_answered_outside_flask_is_logged_and_counted_as_any(caplog):
    """request_log.record (the worker's prepared answers): the same access line and request metrics."""
    from prometheus_client import REGISTRY

    from common.web import metrics
    from common.web.request_log import record

    labels = {"method": "HEAD", "route": "/.well-known/record-test", "status": "304"}
    before = REGISTRY.get_sample_value("citylogin_http_requests_total", labels) or 0.0
    caplog.set_level(logging.INFO, logger=ACCESS)
    record(method="HEAD", route="/.well-known/record-test", status=304, seconds=0.0042, request_id="prepared-1")
    [line] = [r for r in caplog.records if r.name == ACCESS]
    assert (line.method, line.route, line.status, line.latency_ms, line.request_id) \
        == ("HEAD", "/.well-known/record-test", 304, 4.2, "prepared-1")
    assert line.getMessage() == "HEAD /.well-known/record-test 304 4.2ms request_id=prepared-1"
    metrics._BATCH.flush()  # what a scrape does first
    assert REGISTRY.get_sample_value("citylogin_http_requests_total", labels) == before + 1
    assert REGISTRY.get_sample_value("citylogin_http_request_duration_seconds_bucket", {**labels, "le": "0.005"}) \
        == before + 1
