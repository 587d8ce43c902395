"""gunicorn settings for citylogin (docs/guides/operating.md):

    export PROMETHEUS_MULTIPROC_DIR=/run/citylogin-metrics   # optional: /metrics across workers
    gunicorn -c deploy/gunicorn.conf.py --bind 0.0.0.0:8000 'citylogin.app:create_app()'

Command-line options override what is set here. The settings are citylogin.server.gunicorn_config's, the ones
`citylogin serve` runs with: citylogin's worker, 2 workers x 64 threads, idle connections kept 75 s,
no gunicorn access log, and the hooks that check the start and keep /metrics right across workers."""
from citylogin.server.gunicorn_config import (accesslog, child_exit, keepalive, on_starting, threads,  # noqa: F401
                                              worker_class, workers)
