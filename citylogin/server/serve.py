"""`citylogin serve`: every service and the web UI on one port, with a persisted DynamoDB Local unless one
is configured. On Linux it runs what production runs, gunicorn with citylogin's worker
(citylogin.server.under_gunicorn); with --dev, or on another system, werkzeug's development server
(citylogin.server.under_werkzeug). Either way this process starts DynamoDB Local, checks that the app can
start, says where it listens and on which server, and stops everything on Ctrl-C or SIGTERM."""
from __future__ import annotations

import ipaddress
import socket
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import click

from citylogin.cli.database import command_settings, config_errors, database, dynamodb_start_errors, stop_on_sigterm
from common.config import LOCAL_HOSTS, Settings, is_local_dynamodb
from common.version import running_version
from common.database.dynamodb_local import DynamoDBLocalError


@dataclass(frozen=True)
class Server:
    """Which server serve runs (gunicorn's workers, or werkzeug's server and whether it reloads), and
    the log line that says so."""

    line: str
    workers: int = 0
    reloads: bool = False

    @property
    def is_gunicorn(self) -> bool:
        return self.workers > 0


def choose_server(*, dev: bool, workers: int | None, platform: str | None = None) -> Server:
    """gunicorn as production runs it, unless --dev or not on Linux (citylogin's worker is Linux's)."""
    if dev:
        if workers is not None:
            raise click.UsageError("--workers is gunicorn's; --dev runs werkzeug's server, one process")
        return Server("serving with werkzeug's development server (--dev), reloading when the code changes: "
                      "not for production", reloads=True)
    platform = platform or sys.platform
    if not platform.startswith("linux"):
        return Server(f"serving with werkzeug's development server: gunicorn with citylogin's worker runs on "
                      f"Linux, this is {platform}; not for production")
    import gunicorn

    from citylogin.server import gunicorn_config

    count = workers or gunicorn_config.workers
    return Server(f"serving with gunicorn {gunicorn.__version__}, citylogin's worker, {count} "
                  f"worker{'s' if count != 1 else ''} x {gunicorn_config.threads} threads", workers=count)


def run_serve(*, host: str | None, port: int | None, workers: int | None, dev: bool) -> None:
    """The serve command: the server chosen, until Ctrl-C or SIGTERM; "citylogin stopped" at a clean stop."""
    server = choose_server(dev=dev, workers=workers)
    if server.reloads and _in_reloaded_child():
        from citylogin.server.under_werkzeug import serve_reloaded_child

        serve_reloaded_child(host, port)  # the parent holds DynamoDB Local and says everything
        return
    # First, before anything can fail: a log sent with a report says which citylogin it came from.
    click.echo(f"citylogin {running_version()} starting", err=True)
    settings = command_settings()
    if _records_itself(settings):
        from citylogin.server.running_services import check_runtime_folder

        check_runtime_folder(settings)  # refused before anything starts
    stop_on_sigterm()  # gunicorn's master and werkzeug's reloader later put their own, to the same end
    try:
        with database(settings) as overrides:
            host, port = host or settings.host, port or settings.port or 5000
            public_url = settings.public_url or bound_url(host, port)
            test_config = {**overrides, "public_url": public_url}
            with _metrics_directory(server, settings):
                _check_start(test_config)
                click.echo(announcement(host, port, public_url, given=settings.public_url is not None), err=True)
                click.echo(server.line, err=True)
                with _recorded(settings, public_url, overrides.get("dynamodb_endpoint_url"), _http_url(host, port)):
                    _until_stopped(_runner(server, settings, host, port, test_config))
    except DynamoDBLocalError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("citylogin stopped", err=True)


def _runner(server: Server, settings: Settings, host: str, port: int,
            test_config: Mapping[str, Any]) -> Callable[[], None]:
    if server.is_gunicorn:
        from citylogin.server import under_gunicorn as serve_gunicorn

        return lambda: serve_gunicorn.serve(host=host, port=port, workers=server.workers,
                                            log_level=settings.log_level, test_config=test_config)
    from citylogin.server import under_werkzeug as serve_werkzeug

    run = serve_werkzeug.serve_reloading if server.reloads else serve_werkzeug.serve_once
    return lambda: run(host, port, test_config=test_config, read_timeout=settings.request_read_timeout)


def _recorded(settings: Settings, url: str, started_endpoint: str | None,
              listen_url: str) -> AbstractContextManager[Any]:
    """Where this serve runs, for the operator commands of any folder (citylogin.server.running_services), while
    it serves on a DynamoDB Local: against Amazon DynamoDB a command needs the deployment's settings anyway."""
    endpoint = started_endpoint or settings.dynamodb_endpoint_url
    if not endpoint or not _records_itself(settings):
        return nullcontext()
    from citylogin.server.running_services import recorded

    return recorded(settings, url=url, dynamodb_endpoint_url=endpoint, listen_url=listen_url)


def _records_itself(settings: Settings) -> bool:
    """Whether serve records where it runs: on a DynamoDB Local, the one it starts (no endpoint set) or the
    one set. Known before anything starts, so that a refused runtime folder starts nothing."""
    return not settings.dynamodb_endpoint_url or is_local_dynamodb(settings.dynamodb_endpoint_url,
                                                                   settings.dynamodb_local)


def _metrics_directory(server: Server, settings: Settings) -> AbstractContextManager[Any]:
    if not server.is_gunicorn:
        return nullcontext()
    from citylogin.server.under_gunicorn import metrics_directory

    return metrics_directory(settings.data_dir)


def _check_start(test_config: Mapping[str, Any]) -> None:
    """Once, before any server starts: a start that cannot work is one line naming what to set."""
    from common.web.app_factory import try_start

    with dynamodb_start_errors():
        config_errors(lambda: try_start(test_config))


def _until_stopped(run: Callable[[], None]) -> None:
    """run(), whose normal end is Ctrl-C (KeyboardInterrupt) or SIGTERM (SystemExit 0)."""
    try:
        run()
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


def _in_reloaded_child() -> bool:
    from werkzeug.serving import is_running_from_reloader

    return is_running_from_reloader()


def bound_url(host: str, port: int) -> str:
    """The web UI's address as `serve` binds it: the host as typed (`localhost` stays `localhost`,
    `127.0.0.1` stays `127.0.0.1`), or for a wildcard this machine's name."""
    # As typed, never another spelling of it: the issuer that OpenID Connect clients compare with
    # the address they fetched discovery at, the passkeys' relying party and the browser's storage
    # of the device key all belong to one origin, and localhost and 127.0.0.1 are two.
    return _http_url(socket.gethostname() if host in ("", "0.0.0.0", "::") else host, port)


def announcement(host: str, port: int, public_url: str, *, given: bool) -> str:
    """serve's line of where it listens and where its links lead (`given`: by CITYLOGIN_PUBLIC_URL)."""
    if given:
        return (f"citylogin listening on {_http_url(host, port)}/ (Ctrl-C stops); links in QR codes and mail, "
                f"and the OpenID Connect issuer, are {public_url} (CITYLOGIN_PUBLIC_URL)")
    named = urlsplit(public_url).hostname or ""
    passkeys = " (passkeys need a host name: --host localhost)" if _is_ip_address(named) else ""
    phone = ("; for a phone, set CITYLOGIN_PUBLIC_URL to this machine's network address and serve "
             "--host 0.0.0.0") if named in LOCAL_HOSTS else ""
    return (f"citylogin on {public_url}/ (Ctrl-C stops): open it at this address, the one of QR codes, mail "
            f"links and the OpenID Connect issuer{passkeys}{phone}")


def _http_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
