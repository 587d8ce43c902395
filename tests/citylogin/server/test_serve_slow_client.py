"""`citylogin serve --dev` (and serve off Linux) runs werkzeug's threaded server with a socket timeout of
CITYLOGIN_REQUEST_READ_TIMEOUT: a client that stops sending in the middle of its request head is
disconnected instead of holding its thread forever (issue 16 item 1). serve's default, gunicorn with
citylogin's worker, answers it 408 (tests/citylogin/server/test_serve_gunicorn.py)."""
from __future__ import annotations

import socket
import threading
import time

from flask import Flask
from werkzeug.serving import make_server

from citylogin.server.under_werkzeug import timed_request_handler


def test_a_client_silent_in_its_request_head_is_disconnected():
    app = Flask(__name__)
    app.get("/healthz")(lambda: "ok")
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=timed_request_handler(1.0))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and then nothing
            started = time.monotonic()
            assert sock.recv(1024) == b""
            assert time.monotonic() - started < 5
    finally:
        server.shutdown()
        server.server_close()
