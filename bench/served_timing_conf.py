"""gunicorn settings for bench/served_costs.py: deploy/gunicorn.conf.py's, plus a hook that wraps the functions named
in BENCH_TIME_FUNCTIONS (space-separated MODULE:FUNCTION) in each worker (bench/function_timing.py) and answers the
bench's snapshot requests in BENCH_TIMING_DIR. Not for production."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from citylogin.server.gunicorn_config import (accesslog, child_exit, keepalive, threads, worker_class,  # noqa: E402,F401
                                              workers)

if "FLOOR_SECRET" not in os.environ:  # citylogin's start check (the provider floor has no citylogin settings)
    from citylogin.server.gunicorn_config import on_starting  # noqa: F401


def post_worker_init(worker):  # gunicorn's hook, after the app is loaded in the worker
    from bench.function_timing import answer_snapshots, timed_functions
    totals = timed_functions(os.environ["BENCH_TIME_FUNCTIONS"].split())
    answer_snapshots(totals, Path(os.environ["BENCH_TIMING_DIR"]))
