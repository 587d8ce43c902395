"""What every request pays in citylogin's app around its view (issue 66, item 3), without a server:

    .venv/bin/python bench/request_overhead.py [--multiprocess] [--level INFO] [--cors] [--rounds 5] [--n 3000]

Not a test. One DynamoDB Local in memory, `citylogin init`, then `create_app()` in this process beside a bare
Flask app with the same `/healthz` view (`jsonify(status=..., version=...)`). Both are called as WSGI apps,
the answer read and closed as a server closes it (so the access line and the request's metrics run, which
bench/profile_row.py's test client, leaving its answers open, never reaches), `--n` requests a round, the
two alternating for `--rounds` rounds. Each prints its CPU per request per round (`time.thread_time()`),
and the difference of the two minimums is citylogin's per-request overhead: the access line and request
id, the metrics, the hooks before and after each request, CORS, the answer's JSON.

`--multiprocess` sets PROMETHEUS_MULTIPROC_DIR (a temporary directory), as deploy/ and the benches'
gunicorn run it; `--level` is CITYLOGIN_LOG_LEVEL (the benches run WARNING, so the access line is not
written; INFO is the default); `--cors` sets CITYLOGIN_CORS_ORIGINS (flask-cors on every answer).
The log goes to a file, as a server's stderr would. bench/ copied into an older checkout gives its
"before" figures, as for run_bench.py.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--multiprocess", action="store_true", help="prometheus_client's multiprocess mode")
    parser.add_argument("--level", default="WARNING", help="CITYLOGIN_LOG_LEVEL (WARNING: no access line)")
    parser.add_argument("--cors", action="store_true", help="CITYLOGIN_CORS_ORIGINS set (flask-cors)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=3000, help="requests a round, each app")
    args = parser.parse_args()
    if args.multiprocess:  # read when prometheus_client is first imported: before the app's modules
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="request-overhead-metrics-")
    from bench.servers import app_environment, run_init
    from common.database.dynamodb_local import DynamoDBLocal, free_port

    with tempfile.TemporaryDirectory(prefix="request-overhead-") as work, \
            DynamoDBLocal(port=free_port(), db_path=None) as local:
        env = app_environment(endpoint_url=local.endpoint_url, data_dir=Path(work))
        env["CITYLOGIN_LOG_LEVEL"] = args.level
        if args.cors:
            env["CITYLOGIN_CORS_ORIGINS"] = "https://app.example.com"
        run_init(env)
        os.environ.update({name: value for name, value in env.items() if name.startswith("CITYLOGIN_")})
        with open(Path(work) / "log.txt", "a") as log_file:
            _measure({"citylogin": _citylogin_app(log_file), "bare Flask": _bare_app()},
                     rounds=args.rounds, n=args.n)


def _citylogin_app(log_file: Any) -> Callable:
    import logging

    from citylogin.app import create_app
    app = create_app()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    return app


def _bare_app() -> Callable:
    from flask import Flask, jsonify

    from common.version import running_version
    bare = Flask("bare")

    @bare.get("/healthz")
    def healthz():
        return jsonify(status="ok", version=running_version())

    return bare


def _measure(apps: dict[str, Callable], *, rounds: int, n: int) -> None:
    from werkzeug.test import EnvironBuilder
    builder = EnvironBuilder(path="/healthz", method="GET", headers=[("Host", "127.0.0.1")])
    environ: dict[str, Any] = builder.get_environ()

    def one(app: Callable) -> None:
        statuses: list[str] = []
        answer = app({**environ, "wsgi.input": io.BytesIO(b"")}, lambda status, headers, exc_info=None:
                     statuses.append(status))
        try:
            for _ in answer:
                pass
        finally:
            answer.close()  # as a server does: the access line and the request's metrics run here
        if statuses != ["200 OK"]:
            raise RuntimeError(f"/healthz answered {statuses}")

    for app in apps.values():
        for _ in range(300):  # warm-up
            one(app)
    cpu_ms: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, app in apps.items():
            started = time.thread_time()
            for _ in range(n):
                one(app)
            cpu_ms[name].append(1000 * (time.thread_time() - started) / n)
    for name, figures in cpu_ms.items():
        print(f"{name}: " + " ".join(f"{f:.3f}" for f in figures) + f" ms of CPU per request, min {min(figures):.3f}")
    print(f"overhead: {min(cpu_ms['citylogin']) - min(cpu_ms['bare Flask']):.3f} ms per request")


if __name__ == "__main__":
    main()
