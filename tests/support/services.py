"""Start a real service as a subprocess on a free port and wait until it answers."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Callable, ContextManager, Iterator

import requests

from tests.support.ports import free_port
from tests.support.waiting import stop

GUNICORN = Path(sys.executable).parent / "gunicorn"


# How a server says that it could not bind its port (Python, gunicorn, Node).
PORT_TAKEN = re.compile(r"address already in use|connection in use|EADDRINUSE", re.IGNORECASE)
PORT_TRIES = 3


class PortTaken(RuntimeError):
    """The server exited because something else held its port."""


@contextmanager
def running_service(module: str, env: dict[str, str], timeout: float = 60.0,
                    args: tuple[str, ...] = (), log_path: Path | None = None) -> Iterator[str]:
    """`python -m <module> <args>` with `env` on 127.0.0.1:<free port>; yields its base URL. Its output
    goes to `log_path` if given (a test that reads the server's own lines), else to a file of its own."""
    def start(port: int) -> ContextManager[str]:
        return running_process([sys.executable, "-m", module, *args], port=port, timeout=timeout,
                               env={**env, "CITYLOGIN_HOST": "127.0.0.1", "CITYLOGIN_PORT": str(port)},
                               log_path=log_path)
    with on_a_free_port(start) as url:
        yield url


@contextmanager
def running_gunicorn(env: dict[str, str], *options: str, cwd: Path | None = None,
                     timeout: float = 60.0) -> Iterator[str]:
    """The all-in-one app under gunicorn with `options` on 127.0.0.1:<free port>; yields its base URL."""
    def start(port: int) -> ContextManager[str]:
        argv = [str(GUNICORN), *options, "-b", f"127.0.0.1:{port}", "citylogin.app:create_app()"]
        public = {"CITYLOGIN_PUBLIC_URL": f"http://127.0.0.1:{port}"}  # required under gunicorn
        return running_process(argv, port=port, env={**public, **env}, cwd=cwd, timeout=timeout)
    with on_a_free_port(start) as url:
        yield url


@contextmanager
def on_a_free_port(start: Callable[[int], ContextManager[str]]) -> Iterator[str]:
    """What `start(port)` runs, on a free port; on another one if a process outside the tests took the
    port before the server bound it (the server exits saying so)."""
    for attempt in range(1, PORT_TRIES + 1):
        with ExitStack() as stack:
            try:
                url = stack.enter_context(start(free_port()))
            except PortTaken:
                if attempt == PORT_TRIES:
                    raise
                continue
            yield url
            return


@contextmanager
def running_process(argv: list[str], *, port: int, env: dict[str, str], cwd: Path | None = None,
                    timeout: float = 60.0, log_path: Path | None = None) -> Iterator[str]:
    """A server process with `env` (and no CITYLOGIN_* of ours) that answers /healthz on `port`; its
    output goes to `log_path` (written from its start) if given."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    # the tests' apps live on 127.0.0.1, apps that registered themselves included (unless a test says otherwise)
    full_env.update(CITYLOGIN_OIDC_FETCH_PRIVATE_ADDRESSES="true")
    full_env.update(env, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    # Its log goes to a file: an unread pipe fills up (the audit stream is always on) and then
    # blocks the server in the middle of a request.
    with (open(log_path, "w+b") if log_path else tempfile.TemporaryFile()) as log:
        process = subprocess.Popen(argv, env=full_env, cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(process, base_url, timeout, log)
            yield base_url
        finally:
            stop(process, timeout=15)


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]


def _wait_healthy(process: subprocess.Popen, base_url: str, timeout: float, log: IO[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = _tail(log)
            raise (PortTaken if PORT_TAKEN.search(output) else RuntimeError)(f"{base_url} exited: {output}")
        try:
            if requests.get(base_url + "/healthz", timeout=10).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{base_url} did not become healthy in {timeout}s: {_tail(log)}")
