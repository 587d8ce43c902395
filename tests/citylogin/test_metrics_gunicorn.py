"""/metrics under gunicorn with two workers and PROMETHEUS_MULTIPROC_DIR (deploy/gunicorn.conf.py):
any worker's scrape counts the requests every worker answered."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from common.dynamodb_local import free_port
from tests.citylogin.test_metrics import TOKEN, value
from tests.conftest import FAST_ARGON2, config_env

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"


def _scrape(url: str) -> dict[tuple, float]:
    response = requests.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text[:300]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def _wait_healthy(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text(errors="replace")[-3000:]
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(log_path.read_text(errors="replace")[-3000:])


def test_metrics_add_up_across_gunicorn_workers(dynamodb_endpoint, data_dir, table_prefix, tmp_path):
    port, metrics_dir, log_path = free_port(), tmp_path / "prometheus", tmp_path / "gunicorn.log"
    metrics_dir.mkdir()
    (metrics_dir / "counter_99999.db").write_bytes(b"stale")  # from an earlier run: removed at start
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    env.update(config_env({"dynamodb_endpoint_url": dynamodb_endpoint, "data_dir": data_dir,
                           "table_prefix": table_prefix, "log_level": "WARNING", "metrics_token": TOKEN,
                           **FAST_ARGON2}),
               PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(GUNICORN), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--workers", "2", "--threads", "4",
             "-b", f"127.0.0.1:{port}", "citylogin.app:create_app()"],
            env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log_path)
        assert not (metrics_dir / "counter_99999.db").exists()
        requests_made = 40
        for _ in range(requests_made):  # a new connection each: the two workers share them
            requests.get(url + "/readyz", timeout=10)
        time.sleep(0.3)  # the last request is counted when its response is closed
        counts = {value(_scrape(url), "citylogin_http_requests_total", method="GET", route="/readyz",
                        status="200") for _ in range(6)}
        assert counts == {requests_made}  # every scrape, whichever worker answers, sees all of them
        pids = {p.name.split("_")[-1].removesuffix(".db") for p in metrics_dir.glob("counter_*.db")}
        assert len(pids) == 2, pids  # each worker writes its own file
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
