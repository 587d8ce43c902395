"""`citylogin serve` on the server production runs: gunicorn with citylogin's worker and the settings of
citylogin.server.gunicorn_config. gunicorn's master is this process, which has started DynamoDB Local and
checked the start, and imported the app's modules; each worker it forks creates the app with serve's settings."""
from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, NoReturn

import click
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer

from citylogin.server import gunicorn_config

if TYPE_CHECKING:
    from flask import Flask

# Exit statuses with which gunicorn's master stops when a worker could not start (instead of forking
# it again and again): the app did not load, or the worker itself failed before serving.
_WORKER_START_FAILURES = (Arbiter.APP_LOAD_ERROR, Arbiter.WORKER_BOOT_ERROR)


class ServeApplication(BaseApplication):
    """gunicorn in this process, bound to `bind`, its workers each creating the all-in-one app."""

    def __init__(self, *, bind: str, workers: int, log_level: str, test_config: Mapping[str, Any]) -> None:
        self.options = {**gunicorn_config.SERVE_SETTINGS, "workers": workers, "bind": [bind],
                        "loglevel": log_level.lower()}
        self.test_config = dict(test_config)
        super().__init__()  # reads the configuration: load_config()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)
        # gunicorn's control socket (25.1 on) is one path per user: two servers would take it from each other.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Flask:
        """In each worker: a start that cannot work raises gunicorn's AppImportError (one line,
        common.web.app_factory)."""
        from citylogin.app import create_app

        return create_app(test_config=self.test_config)

    def run(self) -> None:
        """gunicorn's master until it stops (SystemExit). The app's modules are imported here, once, after
        serve's start check: each worker forks with them and only builds its app (else each worker imports
        them again, about a second of CPU at each worker's start)."""
        import citylogin.app  # noqa: F401

        arbiter = Arbiter(self)
        try:
            arbiter.run()
        except HaltServer as exc:
            # A second worker that failed to boot, reaped while the master halts for the first, escapes
            # gunicorn's halt, which then leaves any other worker running.
            _end_workers(list(arbiter.WORKERS))
            raise SystemExit(exc.exit_status) from None
        except RuntimeError as exc:  # what gunicorn's own run() prints as one line, e.g. an address it cannot use
            raise click.ClickException(str(exc)) from None


def _end_workers(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def bind_address(host: str, port: int) -> str:
    """gunicorn's spelling of where to listen: an IPv6 address in brackets, no host for every interface."""
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host or '0.0.0.0'}:{port}"


def serve(*, host: str, port: int, workers: int, log_level: str, test_config: Mapping[str, Any]) -> None:
    """gunicorn's master until Ctrl-C or SIGTERM (SystemExit 0). A worker that cannot start stops it all,
    its error above: a click error here."""
    master = os.getpid()
    try:
        ServeApplication(bind=bind_address(host, port), workers=workers, log_level=log_level,
                         test_config=test_config).run()
    except BaseException as exc:
        if os.getpid() != master:
            _leave_worker(exc)
        if isinstance(exc, SystemExit) and exc.code in _WORKER_START_FAILURES:
            raise click.ClickException("a gunicorn worker could not start: the lines above say why") from None
        raise


def _leave_worker(exc: BaseException) -> NoReturn:
    """A worker ends here, where gunicorn's code returns to serve's: what serve holds (DynamoDB Local,
    its lock, the metrics directory) is the master's to release, not the worker's."""
    code = exc.code if isinstance(exc, SystemExit) else 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else int(code is not None))


@contextmanager
def metrics_directory(data_dir: Path) -> Iterator[str]:
    """PROMETHEUS_MULTIPROC_DIR, where each worker keeps its samples and /metrics adds them up: the one
    set, emptied, else a new one under the data directory, removed at the stop (two serves may share a
    data directory)."""
    given = gunicorn_config.metrics_dir()
    if given:
        gunicorn_config.empty_metrics_dir(given)
        yield given
        return
    # prometheus_client reads the variable when it is first imported: so before the master's start check.
    if "prometheus_client" in sys.modules:
        raise RuntimeError("PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is imported")
    parent = data_dir.resolve() / "metrics"
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="serve-", dir=parent) as directory:
        os.environ[gunicorn_config.METRICS_DIR] = directory
        try:
            yield directory
        finally:
            del os.environ[gunicorn_config.METRICS_DIR]
