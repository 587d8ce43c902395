"""gunicorn settings for citylogin (docs/guides/operating.md):

    export PROMETHEUS_MULTIPROC_DIR=/run/citylogin-metrics   # optional: /metrics across workers
    gunicorn -c deploy/gunicorn.conf.py --bind 0.0.0.0:8000 'citylogin.app:create_app()'

Command-line options override what is set here."""
import glob
import os

# gunicorn's gthread worker, except that its event loop reads each request before a thread takes it:
# a slow client holds no thread (docs/guides/production.md, "gunicorn")
worker_class = "citylogin.gunicorn_worker.ThreadWorker"
workers = 2
threads = 64
# citylogin writes its own access line (URL rule, status, latency, X-Request-ID); gunicorn's
# would carry the query string, and with it the event stream's ?access_token=.
accesslog = None


def _metrics_dir():
    # prometheus_client's own variable: every worker keeps its samples in files there, and a
    # scrape of any worker adds up the files of all of them.
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def on_starting(server):
    """Check once that the app can start (one line naming the setting if not, before any worker
    fails alike), and start the metrics from an empty directory: samples of an earlier run would be
    counted again."""
    from common.app_factory import check_start

    check_start()
    directory = _metrics_dir()
    if directory:
        os.makedirs(directory, exist_ok=True)
        for stale in glob.glob(os.path.join(directory, "*.db")):
            os.remove(stale)


def child_exit(server, worker):
    """A dead worker's open event streams must leave the `livesum` gauge."""
    if _metrics_dir():
        from prometheus_client import multiprocess
        multiprocess.mark_process_dead(worker.pid)
