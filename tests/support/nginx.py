"""Debian's nginx as a child process running deploy/nginx/citylogin.conf.template, with its own
prefix, configuration and temp paths in a temporary directory: no root, no daemon, no system files."""
from __future__ import annotations

import os
import pwd
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import pytest

from tests.support.ports import free_port
from tests.support.waiting import stop, until_listening

NGINX = "/usr/sbin/nginx"


def require_nginx() -> None:
    """Skip a test without nginx locally; in CI (CI set) its absence is a failure."""
    if os.path.exists(NGINX):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{NGINX} is missing; CI must run this test (bash scripts/setup.sh --browser installs it)")
    pytest.skip(f"{NGINX} is missing: run `bash scripts/setup.sh --browser` to run the nginx test")
TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "citylogin.conf.template"
_PLACEHOLDER = re.compile(r"\$\{(NGINX_[A-Z_]+)\}")

_MAIN_CONF = """\
{user}worker_processes 1;
pid nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log access.log;  # as distributions ship nginx.conf: the "combined" format, query strings included
    client_body_temp_path temp/body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    include citylogin.conf;
}}
"""


def render_template(values: Mapping[str, str]) -> str:
    """The template with its ${NGINX_*} placeholders filled, as the README's envsubst line does."""
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], TEMPLATE.read_text())


@contextmanager
def running_nginx(prefix: Path, *, upstream_urls: list[str], tls_cert: Path, tls_key: Path,
                  client_ca: Path, client_crl: Path, port: int | None = None, timeout: float = 60.0) -> Iterator[str]:
    """nginx on 127.0.0.1:<port> (a free one by default) in front of `upstream_urls`; yields its https:// base URL.
    The template's access log is `prefix`/citylogin.access.log; the http context's is `prefix`/access.log.
    `reload_command(prefix)` reloads it (and so re-reads `client_crl`)."""
    port = port or free_port()
    (prefix / "temp").mkdir(parents=True)
    upstreams = " ".join(f"server {url.removeprefix('http://')};" for url in upstream_urls)
    (prefix / "citylogin.conf").write_text(render_template({
        "NGINX_LISTEN": f"127.0.0.1:{port}", "NGINX_SERVER_NAME": "localhost", "NGINX_TLS_CERT": str(tls_cert),
        "NGINX_TLS_KEY": str(tls_key), "NGINX_CLIENT_CA": str(client_ca), "NGINX_CLIENT_CRL": str(client_crl),
        "NGINX_UPSTREAM_SERVERS": upstreams, "NGINX_ACCESS_LOG": str(prefix / "citylogin.access.log")}))
    # As root the workers would drop to "nobody", who cannot enter pytest's 0700 temp directories.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(_MAIN_CONF.format(user=user))
    log_path = prefix / "stderr.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*_nginx_command(prefix), "-g", "daemon off; error_log stderr;"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        until_listening(process, port, timeout=timeout, name="nginx",
                        output=lambda: log_path.read_text(errors="replace"))
        yield f"https://127.0.0.1:{port}"
    finally:
        stop(process)  # SIGTERM: nginx's fast shutdown, workers included


def reload_command(prefix: Path) -> list[str]:
    """The `nginx -s reload` of the nginx that running_nginx(prefix) started."""
    return [*_nginx_command(prefix), "-s", "reload"]


def _nginx_command(prefix: Path) -> list[str]:
    return [NGINX, "-e", "stderr", "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf")]


SERVICES_TEMPLATE = TEMPLATE.with_name("citylogin-services.conf.template")
FORWARD_AUTH_TEMPLATE = TEMPLATE.with_name("citylogin-forward-auth.conf.template")


@contextmanager
def running_prefix_nginx(prefix: Path, *, port: int, upstreams: Mapping[str, str],
                         timeout: float = 60.0) -> Iterator[str]:
    """nginx on 127.0.0.1:`port` routing by path prefix (deploy/nginx/citylogin-services.conf.template)
    to `upstreams` (REGISTRATION, LOGIN, SESSION, DEVICE, WEB -> http://host:port); yields its base URL."""
    values = {f"NGINX_{name}": _servers([url]) for name, url in upstreams.items()}
    with _serving(prefix, SERVICES_TEMPLATE, values, port=port, timeout=timeout) as url:
        yield url


@contextmanager
def running_forward_auth_nginx(prefix: Path, *, citylogin_urls: list[str], app_urls: list[str],
                               timeout: float = 60.0) -> Iterator[str]:
    """nginx on 127.0.0.1:<free port> guarding the app at `app_urls` with citylogin's /session/check
    (deploy/nginx/citylogin-forward-auth.conf.template); yields its base URL."""
    values = {"NGINX_CITYLOGIN_SERVERS": _servers(citylogin_urls), "NGINX_APP_SERVERS": _servers(app_urls)}
    with _serving(prefix, FORWARD_AUTH_TEMPLATE, values, port=free_port(), timeout=timeout) as url:
        yield url


def _servers(urls: list[str]) -> str:
    return " ".join(f"server {url.removeprefix('http://')};" for url in urls)


@contextmanager
def _serving(prefix: Path, template: Path, values: Mapping[str, str], *, port: int,
             timeout: float) -> Iterator[str]:
    """nginx on 127.0.0.1:`port` running `template` filled with `values` (plus the listen address,
    the server name and the access log `prefix`/citylogin.access.log); yields its http:// base URL."""
    values = {**values, "NGINX_LISTEN": f"127.0.0.1:{port}", "NGINX_SERVER_NAME": "localhost",
              "NGINX_ACCESS_LOG": str(prefix / "citylogin.access.log")}
    with running_http_conf(prefix, _PLACEHOLDER.sub(lambda match: values[match.group(1)], template.read_text()),
                           port=port, timeout=timeout):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def running_http_conf(prefix: Path, http_conf: str, *, port: int, timeout: float = 60.0) -> Iterator[None]:
    """nginx running `http_conf` (directives of the http context, whose server listens on
    127.0.0.1:`port`) with its configuration, temp paths and stderr.log in `prefix`, until the block
    ends. Entered again on the same prefix, it starts a new nginx there: a restart."""
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    (prefix / "citylogin.conf").write_text(http_conf)
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    (prefix / "nginx.conf").write_text(_MAIN_CONF.format(user=user))
    log_path = prefix / "stderr.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([*_nginx_command(prefix), "-g", "daemon off; error_log stderr;"],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        until_listening(process, port, timeout=timeout, name="nginx",
                        output=lambda: log_path.read_text(errors="replace"))
        yield
    finally:
        stop(process)
