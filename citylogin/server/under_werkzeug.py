"""`citylogin serve --dev`, and `serve` on a system other than Linux: werkzeug's development server,
threaded, one process, each request's socket under CITYLOGIN_REQUEST_READ_TIMEOUT.

With the reloader (--dev), werkzeug runs the server in a child process that it starts again when a
source file changes; this process, its parent, keeps DynamoDB Local and the listening socket, and
hands the child its settings in the environment."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from werkzeug.serving import WSGIRequestHandler, make_server, run_simple

from citylogin.cli.database import command_settings, config_errors, dynamodb_start_errors
from common.config import env_name

if TYPE_CHECKING:  # the app's modules are imported where it is made
    from flask import Flask

# werkzeug's stat reloader looks at Python files alone; its watchdog one (when watchdog is installed)
# watches every directory on sys.path, the working directory among them, whose .data/ DynamoDB Local
# writes to all the time (inotify's queue overflows).
RELOADER = "stat"


def timed_request_handler(seconds: float) -> type[WSGIRequestHandler]:
    """werkzeug's request handler with a socket timeout: a client silent for `seconds` (in the
    middle of its request, or idle between keep-alive requests) is disconnected."""
    return type("TimedRequestHandler", (WSGIRequestHandler,), {"timeout": seconds})


def serve_once(host: str, port: int, *, test_config: Mapping[str, Any], read_timeout: float) -> None:
    """The app in this process until Ctrl-C or SIGTERM (KeyboardInterrupt or SystemExit)."""
    server = make_server(host, port, _create_app(test_config), threaded=True,
                         request_handler=timed_request_handler(read_timeout))
    try:
        server.serve_forever()
    finally:
        server.server_close()


def serve_reloading(host: str, port: int, *, test_config: Mapping[str, Any], read_timeout: float) -> None:
    """The reloader's parent: listens, and runs the app in a child (serve_reloaded_child) until stopped."""
    # The child runs `citylogin serve --dev` again, with this process's environment: what this process
    # derived (DynamoDB Local's endpoint, the public URL) reaches it there, and no second DynamoDB Local starts.
    os.environ.update({env_name(name): str(value) for name, value in test_config.items()})
    run_simple(host, port, _served_by_the_child, use_reloader=True, reloader_type=RELOADER, threaded=True,
               request_handler=timed_request_handler(read_timeout))


def serve_reloaded_child(host: str | None, port: int | None) -> None:
    """In the reloader's child: the app, on the socket the parent listens on, until a file changes."""
    settings = command_settings()
    host, port = host or settings.host, port or settings.port or 5000
    run_simple(host, port, _create_app(None), use_reloader=True, reloader_type=RELOADER, threaded=True,
               request_handler=timed_request_handler(settings.request_read_timeout))


def _create_app(test_config: Mapping[str, Any] | None) -> Flask:
    from citylogin.app import create_app

    with dynamodb_start_errors():
        return config_errors(lambda: create_app(test_config=test_config))


def _served_by_the_child(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    raise RuntimeError("the reloader's parent serves nothing: its child does")  # never called: werkzeug's design
