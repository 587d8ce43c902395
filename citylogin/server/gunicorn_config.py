"""citylogin's gunicorn settings, in one place: deploy/gunicorn.conf.py takes them all (`gunicorn -c`),
and `citylogin serve` runs with them too (citylogin.server.under_gunicorn). Written as a gunicorn config
file is, by gunicorn's names, so `gunicorn -c python:citylogin.server.gunicorn_config` works as well."""
import glob
import os
from typing import Any

# gunicorn's gthread worker, except that its event loop reads each request before a thread takes it:
# a slow client holds no thread (docs/guides/production.md, "gunicorn")
worker_class = "citylogin.server.gunicorn_worker.ThreadWorker"
workers = 2
threads = 64
# An idle kept-alive connection stays open 75 s (gunicorn's default is 2 s): longer than the idle timeout
# of the proxies in front (nginx's upstream keepalive_timeout and AWS load balancers, 60 s), so that the
# proxy, not citylogin, ends an idle connection. The other way round, a request the proxy sends as
# citylogin closes the connection is lost (a reset, a 502 for a POST). An idle connection holds no
# thread (citylogin's worker waits for it in its event loop); at a stop it is closed within 2 s.
keepalive = 75
# citylogin writes its own access line (URL rule, status, latency, X-Request-ID); gunicorn's
# would carry the query string, and with it the event stream's ?access_token=.
accesslog = None

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def metrics_dir() -> str | None:
    # prometheus_client's own variable: every worker keeps its samples in files there, and a
    # scrape of any worker adds up the files of all of them.
    return os.environ.get(METRICS_DIR)


def empty_metrics_dir(directory: str) -> None:
    """Samples of an earlier run must not be counted again."""
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(directory, "*.db")):
        os.remove(stale)


def on_starting(server: Any) -> None:
    """Check once that the app can start (one line naming the setting if not, before any worker
    fails alike), and start the metrics from an empty directory."""
    from common.web.app_factory import check_start

    check_start()
    directory = metrics_dir()
    if directory:
        empty_metrics_dir(directory)


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's open event streams must leave the `livesum` gauge."""
    if metrics_dir():
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)


# What `citylogin serve` takes, by gunicorn's names: all of the above but on_starting, whose checks
# serve makes itself, with the DynamoDB Local and the address it runs with.
SERVE_SETTINGS = {"worker_class": worker_class, "workers": workers, "threads": threads, "keepalive": keepalive,
                  "accesslog": accesslog, "child_exit": child_exit}
