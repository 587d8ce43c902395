"""/metrics under gunicorn with two workers and PROMETHEUS_MULTIPROC_DIR (deploy/gunicorn.conf.py):
any worker's scrape counts the requests every worker answered."""
from __future__ import annotations

from pathlib import Path

import requests

from tests.citylogin.test_metrics import TOKEN, scrape, value
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env
from tests.support.services import running_gunicorn
from tests.support.waiting import wait_until
from tests.support.worker_metrics import answered_by

ROOT = Path(__file__).resolve().parents[3]


def test_metrics_add_up_across_gunicorn_workers(dynamodb_endpoint, data_dir, table_prefix, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"stale")  # from an earlier run: removed at start
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir, "table_prefix": table_prefix,
                      "log_level": "WARNING", "metrics_token": TOKEN, **FAST_ARGON2, **RAISED_LIMITS})
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    with running_gunicorn(env, "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--workers", "2", "--threads", "4",
                          cwd=tmp_path) as url:
        assert not (metrics_dir / "counter_99999.db").exists()
        # Which worker accepts a new connection is the kernel's choice, not the test's: requests go on until
        # each of the two workers has counted some, read from its own file.
        requests_made = 0

        def both_workers_answered() -> bool:
            nonlocal requests_made
            requests.get(url + "/readyz", timeout=10)  # a new connection each
            requests_made += 1
            answered = answered_by(metrics_dir, "/readyz")
            return len([count for count in answered.values() if count > 0]) == 2

        wait_until(both_workers_answered, timeout=60, interval=0.0, what="both workers answer /readyz")
        # The last request is counted when its response is closed, which may be just after we read it.
        wait_until(lambda: value(scrape(url), "citylogin_http_requests_total", method="GET", route="/readyz",
                                 status="200") == requests_made, what="the last /readyz is counted")
        counts = {value(scrape(url), "citylogin_http_requests_total", method="GET", route="/readyz",
                        status="200") for _ in range(6)}
        assert counts == {requests_made}  # every scrape, whichever worker answers, sees all of them

def test_a_worker_that_stops_leaves_all_its_counts(dynamodb_endpoint, data_dir, table_prefix, tmp_path):
    """A worker writes its batched counts at exit (common.web.metrics): one replaced after each few requests
    (--max-requests) loses none of them."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir, "table_prefix": table_prefix,
                      "log_level": "WARNING", "metrics_token": TOKEN, **FAST_ARGON2, **RAISED_LIMITS})
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    with running_gunicorn(env, "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--workers", "1", "--threads", "2",
                          "--max-requests", "4", cwd=tmp_path) as url:
        requests_made = 10
        for _ in range(requests_made):
            assert requests.get(url + "/readyz", timeout=30).status_code == 200
        # The scrapes themselves count too (and end workers): only /readyz is read.
        wait_until(lambda: value(scrape(url), "citylogin_http_requests_total", method="GET", route="/readyz",
                                 status="200") == requests_made, what="every /readyz is counted")
        assert len(list(metrics_dir.glob("counter_*.db"))) >= 3  # the stopped workers' files, and the last one's
