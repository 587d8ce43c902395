"""An app's API server for the forward-auth tests, in its own process: every request is answered
200 with the X-Citylogin-* headers it arrived with, so a test sees exactly what the proxy let through.

    python -m tests.support.echo_app PORT
"""
from __future__ import annotations

import sys

from flask import Flask, jsonify, request
from werkzeug.serving import run_simple


def create_app() -> Flask:
    app = Flask("echo_app")

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "DELETE"])
    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE"])
    def echo(path: str):
        # a list, not a dict: a header that came twice must show twice
        citylogin = [[name, value] for name, value in request.headers.items()
                     if name.lower().startswith("x-citylogin-")]
        return jsonify(method=request.method, path="/" + path, citylogin=citylogin,
                       body=request.get_data(as_text=True))

    return app


if __name__ == "__main__":
    run_simple("127.0.0.1", int(sys.argv[1]), create_app(), threaded=True)
