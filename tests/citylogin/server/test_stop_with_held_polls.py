"""A graceful stop waits for no client. `citylogin serve` (gunicorn with citylogin's worker), stopped by
SIGTERM while an app's RFC 8936 long poll is held, answers that poll at once (nothing new) and exits
cleanly. Before, the worker held the stop for the rest of the poll's 30 s: a supervisor's stop deadline
then killed serve and left the worker behind, still answering on the port."""
from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading

import requests

from tests.citylogin.test_metrics import TOKEN, scrape, value
from tests.conftest import config_env
from tests.support.notes import add_app
from tests.support.ports import free_port
from tests.support.waiting import wait_until

# Far below the 30 s a held poll lasts (CITYLOGIN_SSF_LONG_POLL_SECONDS), far above a stop's usual second.
STOP_DEADLINE = 20


def ready(url: str) -> bool:
    try:
        return requests.get(url + "/readyz", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def test_sigterm_answers_a_held_long_poll_at_once_and_serve_exits_cleanly(base_config, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {**config_env(base_config), "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(port),
                "CITYLOGIN_PUBLIC_URL": url, "CITYLOGIN_METRICS_TOKEN": TOKEN,
                "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(settings, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen([sys.executable, "-m", "citylogin", "serve"], env=env, stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: ready(url) or serve.poll() is not None, timeout=120, what="serve ready")
        assert serve.poll() is None, log.read_text()
        app = add_app(settings, "poller")
        answers: list[requests.Response] = []
        poller = threading.Thread(target=lambda: answers.append(requests.post(
            url + "/ssf/poll", json={}, auth=(app["client_id"], app["client_secret"]), timeout=60)), daemon=True)
        poller.start()
        wait_until(lambda: value(scrape(url), "citylogin_ssf_polls_held") == 1, what="the poll held")

        serve.send_signal(signal.SIGTERM)
        try:
            code = serve.wait(timeout=STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve still running {STOP_DEADLINE} s after SIGTERM:\n{log.read_text()}") from None
        poller.join(timeout=10)
        assert code == 0 and "citylogin stopped" in log.read_text(), log.read_text()
        assert [(a.status_code, a.json()) for a in answers] == [(200, {"sets": {}, "moreAvailable": False})]
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
