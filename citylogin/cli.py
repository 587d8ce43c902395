"""The `citylogin` command: serve, dynamodb-local, init, keys rotate, client."""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from typing import Iterator

import click

from citylogin.client_cli import client
from common.config import ConfigError, Settings, load_settings
from common.dynamodb_local import DynamoDBLocal, DynamoDBLocalError


def _stop_on_sigterm() -> None:
    # Turn SIGTERM into the same clean exit as Ctrl-C, so DynamoDB Local is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


@contextmanager
def _database(settings: Settings) -> Iterator[dict]:
    """Yields config overrides: none when an endpoint is set, else a persisted DynamoDB Local."""
    if settings.dynamodb_endpoint_url:
        yield {}
        return
    local = DynamoDBLocal(db_path=(settings.data_dir / "dynamodb").resolve())
    click.echo(f"DynamoDB Local: {local.endpoint_url} (data in {local.db_path})", err=True)
    with local:
        yield {"dynamodb_endpoint_url": local.endpoint_url}


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """citylogin: accounts, device certificates, QR pairing and sessions."""


@main.command()
@click.option("--host", default=None, help="Interface to bind (default CITYLOGIN_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default CITYLOGIN_PORT, 5000).")
def serve(host: str | None, port: int | None) -> None:
    """Run every service and the web UI in one process, with DynamoDB Local unless configured."""
    from werkzeug.serving import make_server

    from citylogin.app import create_app

    settings = _settings()
    _stop_on_sigterm()
    try:
        with _database(settings) as overrides:
            app = create_app(test_config={**overrides})
            host, port = host or settings.host, port or settings.port or 5000
            server = make_server(host, port, app, threaded=True)
            click.echo(f"citylogin listening on http://{host}:{port}/ (Ctrl-C stops)", err=True)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
            finally:
                server.server_close()
    except DynamoDBLocalError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("citylogin stopped", err=True)


@main.command("dynamodb-local")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--in-memory", is_flag=True, help="Keep nothing on disk.")
def dynamodb_local(port: int, in_memory: bool) -> None:
    """Run DynamoDB Local alone, for several service processes to share."""
    settings = _settings()
    _stop_on_sigterm()
    db_path = None if in_memory else (settings.data_dir / "dynamodb").resolve()
    try:
        with DynamoDBLocal(port=port, db_path=db_path) as local:
            click.echo(f"DynamoDB Local on {local.endpoint_url}; in another shell:\n"
                       f"  export CITYLOGIN_DYNAMODB_ENDPOINT_URL={local.endpoint_url}")
            local.process.wait()
    except KeyboardInterrupt:
        pass
    except DynamoDBLocalError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
def init() -> None:
    """Create the tables, the CA and the signing keys if missing (idempotent)."""
    from common.context import build_context, keys_dir

    settings = _settings()
    try:
        with _database(settings) as overrides:
            context = build_context(load_settings(overrides))
    except DynamoDBLocalError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"tables: {', '.join(context.tables.all())}")
    click.echo(f"CA and signing keys in {keys_dir(settings).resolve()}")


@main.group()
def keys() -> None:
    """JWT signing keys."""


@keys.command("rotate")
def rotate_keys() -> None:
    """Add a new signing key; tokens signed with older keys stay valid until they expire."""
    from common.context import keys_dir
    from common.jwt_keys import add_jwt_key

    key = add_jwt_key(keys_dir(_settings()))
    click.echo(f"new signing key {key.kid}; running services pick it up within a minute")


main.add_command(client)

if __name__ == "__main__":
    main()
