"""Start a real service as a subprocess on a free port and wait until it answers."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import IO, Iterator

import requests

from common.dynamodb_local import free_port


@contextmanager
def running_service(module: str, env: dict[str, str], timeout: float = 30.0,
                    args: tuple[str, ...] = ()) -> Iterator[str]:
    """`python -m <module> <args>` with `env` on 127.0.0.1:<free port>; yields its base URL."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    full_env.update(env, CITYLOGIN_HOST="127.0.0.1", CITYLOGIN_PORT=str(port))
    # Its log goes to a file: an unread pipe fills up (the audit stream is always on) and then
    # blocks the server in the middle of a request.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, "-m", module, *args], env=full_env,
                                   stdout=subprocess.DEVNULL, stderr=log)
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(process, base_url, timeout, log)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _tail(log: IO[bytes]) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-3000:]


def _wait_healthy(process: subprocess.Popen, base_url: str, timeout: float, log: IO[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{base_url} exited: {_tail(log)}")
        try:
            if requests.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{base_url} did not become healthy in {timeout}s: {_tail(log)}")
