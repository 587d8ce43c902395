"""citylogin behind the shipped nginx (deploy/nginx/citylogin.conf.template), as production runs it, for
bench/server_choice.py (issue 87): one candidate server (or two, routed by location) on its own tables,
a real nginx in front on a free 127.0.0.1 port with TLS (a throwaway server CA the clients trust) and the
service CA and CRL as the template needs them (GET /device/ca.pem and `citylogin crl-sync --once`, as at a
container's start). Everything is stopped on exit.

The candidates (CANDIDATES):
- gunicorn: `gunicorn -c deploy/gunicorn.conf.py` (citylogin's worker, 2 x 64 threads);
- granian: granian's WSGI interface, 2 workers, GRANIAN_THREADS blocking threads each (see there);
- split: granian for every route but the event streams and the held polls (STREAM_LOCATIONS), which nginx
  sends to citylogin's worker, both processes on the same tables and keys."""
from __future__ import annotations

import base64
import os
import pwd
import signal
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import requests

from bench.cpu import tree_pids
from bench.peer_servers import GUNICORN_CONF, _wait_ready, add_app, citylogin_environment
from bench.servers import PROJECT_ROOT, VENV_BIN, _stop, _tail, run_init
from citylogin.cli.crl_sync import SyncConfig, sync_once
from common.database.dynamodb_local import free_port
from sessions.streams import HELD_STREAMS
from tests.support.nginx import NGINX, render_template
from tests.support.tls import new_authority, server_certificate, write_cert, write_key

CANDIDATES = ("gunicorn", "granian", "split")
# granian's WSGI app runs on a pool of blocking threads per worker, made as requests need them (its default
# is backpressure / 2 = 256). Under granian an event stream or a held poll holds one of them for its life
# (common.web.serving: held, not parked), and the app caps a process's open streams at HELD_STREAMS (256)
# when its server does not park them: so as many threads as that cap, plus the 64 citylogin's worker has for
# ordinary requests, so that a process full of streams still answers. A bounded number, made only when used.
GRANIAN_THREADS = HELD_STREAMS + 64
# The routes whose answers are held open: the session's Server-Sent Events and the RFC 8936 long polls
# (POST /ssf/poll and /ssf/poll/<stream_id>). The device grant's token polls (RFC 8628) are answered at once.
STREAM_LOCATIONS = ("/session/events", "/ssf/poll")
CERT_HEADER = "X-Client-Cert"
MAIN_CONF = """\
{user}worker_processes 1;
worker_rlimit_nofile 16384;
pid nginx.pid;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    include citylogin.conf;
}}
"""
# tests/support/nginx.py's nginx.conf has 256 worker connections: a thousand idle clients need more. One
# worker, as there; the template's own access log (its NGINX_ACCESS_LOG) is kept, as production writes it.


def stop_tree(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, to `process` and every process it started: a server's master killed alone would
    leave its workers running (granian's do)."""
    started = {pid: _cmdline(pid) for pid in tree_pids(process.pid) if pid != process.pid}
    _stop(process)
    for pid, cmdline in started.items():
        if cmdline and _cmdline(pid) == cmdline:  # still the very process (not gone, its pid not reused)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass  # gone meanwhile


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def server_command(server: str, port: int) -> list[str]:
    """The command of one server (`gunicorn` or `granian`) of citylogin's app on 127.0.0.1:`port`."""
    if server == "gunicorn":
        return [str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{port}",
                "citylogin.app:create_app()"]
    return [str(VENV_BIN / "granian"), "--interface", "wsgi", "--workers", "2", "--blocking-threads",
            str(GRANIAN_THREADS), "--host", "127.0.0.1", "--port", str(port), "--no-ws", "--log-level", "warning",
            "--factory", "citylogin.app:create_app"]


def shown(server: str) -> str:
    """The server's command as the results name it: the program's name, paths from the checkout, no address."""
    command, parts = server_command(server, 0), []
    for before, part in zip(["", *command], command, strict=False):
        if part in ("--bind", "--host", "--port") or before in ("--bind", "--host", "--port"):
            continue
        parts.append(Path(part).name if part == command[0] else part.replace(f"{PROJECT_ROOT}/", ""))
    return " ".join(parts)


@dataclass
class Deployment:
    """One candidate behind its nginx: the https URL, the root pid of each app server (their trees are the
    app's CPU), nginx's master (its tree: nginx's CPU), the app's credentials, what a client trusts."""
    name: str
    url: str
    servers: dict[str, int]
    nginx_pid: int
    app: dict[str, str]
    server_ca: Path
    env: dict[str, str]
    upstreams: dict[str, str] = field(default_factory=dict)  # server -> http://127.0.0.1:port

    def https(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.server_ca)
        return session


@dataclass(frozen=True)
class Tls:
    """nginx's server certificate (for 127.0.0.1) and the CA the clients trust."""
    cert: Path
    key: Path
    ca: Path

    @classmethod
    def make(cls, directory: Path) -> Tls:
        directory.mkdir(parents=True, exist_ok=True)
        authority = new_authority("server-choice bench CA")
        cert, key = server_certificate(authority)
        return cls(write_cert(directory / "server.pem", cert), write_key(directory / "server.key", key),
                   write_cert(directory / "ca.pem", authority.cert))


def environment(endpoint_url: str, work_dir: Path, *, table_prefix: str, public_url: str) -> dict[str, str]:
    """The peer bench's settings (raised limits, force policy) behind a proxy: its public URL nginx's, the
    client certificate header and one trusted hop, a key-encryption key all its servers share, and stream
    caps per session and user above what the protections check opens."""
    return {**citylogin_environment(endpoint_url, work_dir, table_prefix), "CITYLOGIN_PUBLIC_URL": public_url,
            "CITYLOGIN_TRUSTED_CLIENT_CERT_HEADER": CERT_HEADER, "CITYLOGIN_TRUSTED_PROXIES": "1",
            "CITYLOGIN_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
            "CITYLOGIN_EVENTS_MAX_STREAMS_PER_SESSION": "1000", "CITYLOGIN_EVENTS_MAX_STREAMS_PER_USER": "1000",
            "PYTHONPATH": str(PROJECT_ROOT)}


@contextmanager
def app_server(server: str, env: dict[str, str], work_dir: Path) -> Iterator[tuple[str, int]]:
    """citylogin's app under `server` on a free port, its /metrics directory its own; (URL, pid)."""
    port = free_port()
    metrics = work_dir / f"{server}.metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / f"{server}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(server_command(server, port), env={**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)},
                                   cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url + "/readyz", process, log_path)
        yield url, process.pid
    except BaseException:
        print(f"--- {server} log (tail) ---\n{_tail(log_path)}", file=sys.stderr)
        raise
    finally:
        stop_tree(process)


def nginx_conf(*, port: int, tls: Tls, client_ca: Path, crl: Path, upstream: str, streams: str | None,
               access_log: Path) -> str:
    """The shipped template for one upstream; with `streams`, a second upstream (keepalive 32 as the first)
    that STREAM_LOCATIONS go to, the template's proxy settings inherited."""
    conf = render_template({
        "NGINX_LISTEN": f"127.0.0.1:{port}", "NGINX_SERVER_NAME": "localhost", "NGINX_TLS_CERT": str(tls.cert),
        "NGINX_TLS_KEY": str(tls.key), "NGINX_CLIENT_CA": str(client_ca), "NGINX_CLIENT_CRL": str(crl),
        "NGINX_UPSTREAM_SERVERS": f"server {upstream.removeprefix('http://')};",
        "NGINX_ACCESS_LOG": str(access_log)})
    if streams is None:
        return conf
    upstream_block = (f"upstream citylogin_streams {{\n    server {streams.removeprefix('http://')};\n"
                      "    keepalive 32;\n}\n\n")
    locations = "".join(f"    location {path} {{\n        proxy_pass http://citylogin_streams;\n    }}\n\n"
                        for path in STREAM_LOCATIONS)
    conf = conf.replace("\nserver {", "\n" + upstream_block + "server {", 1)
    return conf.replace("    location / {", locations + "    location / {", 1)


@contextmanager
def running_nginx(prefix: Path, conf: str, port: int, ca: Path) -> Iterator[int]:
    """nginx with `conf` in the http context, its files under `prefix`; its master's pid."""
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    (prefix / "citylogin.conf").write_text(conf)
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(MAIN_CONF.format(user=user))
    log_path = prefix / "stderr.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([NGINX, "-e", "stderr", "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"),
                                    "-g", "daemon off; error_log stderr;"], stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=log)
    try:
        _until_https(port, process, log_path, ca)
        yield process.pid
    finally:
        _stop(process)


def _until_https(port: int, process: subprocess.Popen, log_path: Path, ca: Path) -> None:
    """Until nginx answers /healthz over TLS (the app's answer, through it)."""
    deadline = time.monotonic() + 60
    http = requests.Session()
    http.trust_env = False
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            if http.get(f"https://127.0.0.1:{port}/healthz", timeout=2, verify=str(ca)).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nginx not answering within 60s:\n{_tail(log_path)}")


@contextmanager
def deployed(candidate: str, endpoint_url: str, work_dir: Path, tls: Tls) -> Iterator[Deployment]:
    """`candidate` (CANDIDATES) on tables of its own behind its own nginx."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    env = environment(endpoint_url, work_dir, table_prefix=f"choice_{candidate}_", public_url=url)
    run_init(env)
    app = add_app(env)
    with ExitStack() as stack:
        servers = ("granian", "gunicorn") if candidate == "split" else (candidate,)
        started = {server: stack.enter_context(app_server(server, env, work_dir)) for server in servers}
        first = started[servers[0]][0]
        service_ca = work_dir / "service-ca.pem"
        service_ca.write_text(requests.get(first + "/device/ca.pem", timeout=10).text)
        crl = work_dir / "crl.pem"
        if not sync_once(SyncConfig(service_url=first, crl_file=crl, ca_file=service_ca, reload_cmd="")):
            raise RuntimeError("citylogin crl-sync --once found no valid CRL")
        conf = nginx_conf(port=port, tls=tls, client_ca=service_ca, crl=crl, upstream=first,
                          streams=started["gunicorn"][0] if candidate == "split" else None,
                          access_log=work_dir / "nginx-access.log")
        nginx_pid = stack.enter_context(running_nginx(work_dir / "nginx", conf, port, tls.ca))
        yield Deployment(name=candidate, url=url, servers={s: pid for s, (_, pid) in started.items()},
                         nginx_pid=nginx_pid, app=app, server_ca=tls.ca, env=env,
                         upstreams={s: u for s, (u, _) in started.items()})
