"""/metrics under gunicorn with two workers and PROMETHEUS_MULTIPROC_DIR (deploy/gunicorn.conf.py):
any worker's scrape counts the requests every worker answered."""
from __future__ import annotations

from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.citylogin.test_metrics import TOKEN, value
from tests.conftest import FAST_ARGON2, RAISED_LIMITS, config_env
from tests.support.services import running_gunicorn
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]


def _scrape(url: str) -> dict[tuple, float]:
    response = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text[:300]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


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
        requests_made = 40
        for _ in range(requests_made):  # a new connection each: the two workers share them
            requests.get(url + "/readyz", timeout=10)
        # The last request is counted when its response is closed, which may be just after we read it.
        wait_until(lambda: value(_scrape(url), "citylogin_http_requests_total", method="GET", route="/readyz",
                                 status="200") == requests_made, what="the last /readyz is counted")
        counts = {value(_scrape(url), "citylogin_http_requests_total", method="GET", route="/readyz",
                        status="200") for _ in range(6)}
        assert counts == {requests_made}  # every scrape, whichever worker answers, sees all of them
        pids = {p.name.split("_")[-1].removesuffix(".db") for p in metrics_dir.glob("counter_*.db")}
        assert len(pids) == 2, pids  # each worker writes its own file


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
        wait_until(lambda: value(_scrape(url), "citylogin_http_requests_total", method="GET", route="/readyz",
                                 status="200") == requests_made, what="every /readyz is counted")
        assert len(list(metrics_dir.glob("counter_*.db"))) >= 3  # the stopped workers' files, and the last one's
