"""Which server `citylogin serve` runs and with what (issue 53): by default gunicorn with the settings
deploy/gunicorn.conf.py runs production with, taken from one place (citylogin.server.gunicorn_config); with
--dev, or off Linux, werkzeug's development server; and one line that says which."""
from __future__ import annotations

import runpy
from pathlib import Path

import click
import gunicorn
import pytest

from citylogin.server import gunicorn_config
from citylogin.server.serve import choose_server
from citylogin.server.under_gunicorn import ServeApplication, bind_address, metrics_directory

ROOT = Path(__file__).resolve().parents[3]


def test_the_default_is_gunicorn_with_citylogins_worker_and_says_so():
    server = choose_server(dev=False, workers=None, platform="linux")
    assert server.is_gunicorn and server.workers == gunicorn_config.workers == 2
    assert server.line == f"serving with gunicorn {gunicorn.__version__}, citylogin's worker, 2 workers x 64 threads"
    one = choose_server(dev=False, workers=1, platform="linux")
    assert one.line.endswith("citylogin's worker, 1 worker x 64 threads")
    assert choose_server(dev=False, workers=5, platform="linux").workers == 5


def test_dev_and_other_systems_run_werkzeugs_development_server_and_say_so():
    dev = choose_server(dev=True, workers=None, platform="linux")
    assert not dev.is_gunicorn and dev.reloads
    assert dev.line == ("serving with werkzeug's development server (--dev), reloading when the code changes: "
                        "not for production")
    mac = choose_server(dev=False, workers=None, platform="darwin")
    assert not mac.is_gunicorn and not mac.reloads
    assert mac.line.startswith("serving with werkzeug's development server: ") and "darwin" in mac.line
    assert "not for production" in mac.line
    with pytest.raises(click.UsageError, match="--workers"):
        choose_server(dev=True, workers=2, platform="linux")


def test_serve_runs_gunicorn_with_the_settings_production_runs_with():
    application = ServeApplication(bind="127.0.0.1:5000", workers=3, log_level="INFO",
                                   test_config={"public_url": "http://127.0.0.1:5000"})
    cfg = application.cfg
    assert cfg.worker_class_str == "citylogin.server.gunicorn_worker.ThreadWorker"
    assert (cfg.threads, cfg.workers, cfg.accesslog, cfg.bind) == (64, 3, None, ["127.0.0.1:5000"])
    assert cfg.loglevel == "info"
    assert cfg.keepalive == gunicorn_config.keepalive > 60  # past the proxies' idle timeouts: they close first
    assert cfg.child_exit is gunicorn_config.child_exit  # /metrics forgets a dead worker's streams
    assert cfg.on_starting is not gunicorn_config.on_starting  # serve checks the start itself, with its settings
    assert cfg.settings["control_socket_disable"].get()  # two serves would take one socket path from each other
    assert application.test_config == {"public_url": "http://127.0.0.1:5000"}


def test_deploys_config_file_is_the_same_settings():
    shipped = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    for name, setting in gunicorn_config.SERVE_SETTINGS.items():
        assert shipped[name] is setting, name
    assert shipped["on_starting"] is gunicorn_config.on_starting


def test_gunicorn_binds_where_serve_was_asked_to():
    assert bind_address("localhost", 5000) == "localhost:5000"
    assert bind_address("0.0.0.0", 80) == "0.0.0.0:80"
    assert bind_address("", 5000) == "0.0.0.0:5000"
    assert bind_address("::1", 5000) == "[::1]:5000"


def test_a_given_metrics_directory_is_emptied_at_start(tmp_path, monkeypatch):
    (tmp_path / "counter_99999.db").write_bytes(b"stale")
    (tmp_path / "notes.txt").write_text("kept")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with metrics_directory(tmp_path / "data") as directory:
        assert directory == str(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
