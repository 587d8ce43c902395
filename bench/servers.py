"""The servers the benchmark talks to: `citylogin init`, then the all-in-one app under gunicorn,
both against an in-memory DynamoDB Local, all on 127.0.0.1."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import requests

from common.database.dynamodb_local import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LOCALHOST_ONLY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
METRICS_TOKEN = "bench-metrics-" + secrets.token_hex(8)
# Saturation loops log in far more often than a person would, and one user pairs dozens of devices:
# the per-IP challenge limit, the pairing-token limit and the device limit would answer 429/403.
# Settings an older checkout does not know are ignored (only known CITYLOGIN_ names are read).
RAISED_LIMITS = {"CITYLOGIN_CHALLENGES_PER_MINUTE_PER_IP": "1000000000",
                 "CITYLOGIN_PAIRING_TOKENS_PER_HOUR": "1000000000",
                 "CITYLOGIN_MAX_REGISTERED_DEVICES": "1000",
                 "CITYLOGIN_LOGIN_MAX_FAILURES": "1000000000",
                 "CITYLOGIN_LOGIN_MAX_FAILURES_PER_IP": "1000000000",
                 "CITYLOGIN_REGISTRATIONS_PER_HOUR_PER_IP": "1000000000",
                 "CITYLOGIN_REGISTRATION_REFUSALS_PER_HOUR_PER_IP": "1000000000",
                 "CITYLOGIN_RENEWALS_PER_DAY_PER_DEVICE": "1000000000",
                 "CITYLOGIN_AUTHORIZATION_REQUESTS_PER_MINUTE_PER_IP": "1000000000",
                 "CITYLOGIN_PUSHED_REQUESTS_PER_MINUTE_PER_IP": "1000000000"}


CITYLOGIN_APP = "citylogin.app:create_app()"
FLOOR_APP = "bench.floor_app:create_app()"  # bench/ is a namespace package from PROJECT_ROOT


def app_environment(*, endpoint_url: str, data_dir: Path, table_prefix: str = "bench_") -> dict[str, str]:
    """The server's environment: default Argon2id parameters, force policy so re-logins never 409,
    GET /metrics open to METRICS_TOKEN, the rate limits of RAISED_LIMITS raised; FLOOR_SECRET for
    the floor (bench/floor_app.py), which reads only the endpoint and the prefix besides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYLOGIN_")}
    env.update(LOCALHOST_ONLY)
    env.update({
        "CITYLOGIN_DYNAMODB_ENDPOINT_URL": endpoint_url,
        "CITYLOGIN_DATA_DIR": str(data_dir),
        "CITYLOGIN_TABLE_PREFIX": table_prefix,
        "CITYLOGIN_PUBLIC_URL": "http://127.0.0.1",  # required under gunicorn; the benchmark follows no link
        "CITYLOGIN_LOG_LEVEL": "WARNING",
        "CITYLOGIN_CONCURRENCY_POLICY": "force",
        "CITYLOGIN_METRICS_TOKEN": METRICS_TOKEN,
        **RAISED_LIMITS,
        "FLOOR_SECRET": secrets.token_hex(32),
    })
    return env


def run_init(env: dict[str, str], *, timeout: float = 120) -> str:
    """`citylogin init` once, so the two workers do not race on tables and keys."""
    done = subprocess.run([str(VENV_BIN / "citylogin"), "init"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"citylogin init failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout.strip()


def _wait_ready(base_url: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with requests.Session() as http:
        http.trust_env = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{_tail(log_path)}")
            try:
                if http.get(base_url + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn not ready within {timeout:.0f}s:\n{_tail(log_path)}")


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass(frozen=True)
class RunningApp:
    base_url: str
    pid: int  # the gunicorn master; the workers are its children
    workers: int


@contextmanager
def gunicorn_app(env: dict[str, str], *, log_path: Path, workers: int = 2, threads: int = 8,
                 ready_timeout: float = 60, app: str = CITYLOGIN_APP) -> Iterator[RunningApp]:
    """`app` (citylogin's, or FLOOR_APP) under gunicorn gthread on a free port; stopped on exit. Its
    workers share one prometheus_client multiprocess directory (its own, next to the log), so a
    scrape of GET /metrics counts the calls of every worker."""
    port = free_port()
    metrics_dir = log_path.with_suffix(".metrics")
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    command = [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--threads", str(threads), "--worker-class", "gthread", app]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_ready(base_url, process, log_path, ready_timeout)
        yield RunningApp(base_url=base_url, pid=process.pid, workers=workers)
    except BaseException:
        _stop(process)
        print(f"--- gunicorn log (tail) ---\n{_tail(log_path)}", file=sys.stderr)
        raise
    finally:
        _stop(process)
