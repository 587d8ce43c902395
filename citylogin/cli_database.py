"""What the commands of `citylogin` (serve, init, keys, admin) run on: the settings, and the DynamoDB
they name or a DynamoDB Local of the data directory; their failures as one-line CLI errors."""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import click

from common.config import ConfigError, Settings, load_settings
from common.dynamodb_local import DataInUse, DynamoDBLocal

T = TypeVar("T")


def command_settings() -> Settings:
    """The configured settings; a bad one is a one-line CLI error."""
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def stop_on_sigterm() -> None:
    """SIGTERM as the same clean exit as Ctrl-C, so that a DynamoDB Local started here is stopped too."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def config_errors(action: Callable[[], T]) -> T:
    """`action()`, its ConfigError a one-line CLI error."""
    try:
        return action()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def database(settings: Settings, *, share_running: bool = False) -> Iterator[dict]:
    """Yields config overrides: none when an endpoint is set, else a persisted DynamoDB Local. The data
    is never opened twice: with `share_running` (init, keys, admin) a DynamoDB Local already running
    on it (`serve`, `dynamodb-local`) is used, and a KMS key means Amazon DynamoDB; else DataInUse."""
    if settings.dynamodb_endpoint_url or (share_running and settings.kms_key_id):
        yield {}
        return
    local = DynamoDBLocal(db_path=(settings.data_dir / "dynamodb").resolve())
    try:
        local.start()
    except DataInUse as exc:
        if not (share_running and exc.endpoint_url):
            raise
        running: str | None = exc.endpoint_url
    else:
        running = None
    if running:
        click.echo(f"DynamoDB Local of a running citylogin: {running} (data in {local.db_path})", err=True)
        yield {"dynamodb_endpoint_url": running}
        return
    click.echo(f"DynamoDB Local: {local.endpoint_url} (data in {local.db_path})", err=True)
    try:
        yield {"dynamodb_endpoint_url": local.endpoint_url}
    finally:
        local.stop()


class _NoDynamoDB(click.ClickException):
    exit_code = 2  # as the standalone services: nothing to serve from


@contextmanager
def dynamodb_start_errors() -> Iterator[None]:
    """botocore's errors of a start without a usable DynamoDB as one line naming the setting."""
    from common.app_factory import DYNAMODB_START_ERRORS, dynamodb_start_problem

    try:
        yield
    except DYNAMODB_START_ERRORS as exc:
        raise _NoDynamoDB(dynamodb_start_problem(exc, name="citylogin")) from None


@contextmanager
def command_dynamodb(settings: Settings) -> Iterator[tuple[Settings, Any, Any]]:
    """(settings, table names, client) of the configured DynamoDB for a command (a DynamoDB Local in
    the data directory if none: a running `serve`'s, else its own), with a start's patience rather
    than a request's; a DynamoDB that is not there is one line naming the setting."""
    from common import dynamo
    from common.context import STARTUP_TIMEOUT
    from common.dynamodb_local import DynamoDBLocalError

    try:
        with database(settings, share_running=True) as overrides, dynamodb_start_errors():
            settings = config_errors(lambda: load_settings(overrides))
            client = dynamo.make_client(region=settings.aws_region, endpoint_url=settings.dynamodb_endpoint_url,
                                        local=settings.dynamodb_local, connect_timeout=STARTUP_TIMEOUT,
                                        read_timeout=STARTUP_TIMEOUT, max_attempts=5)
            yield settings, dynamo.TableNames.with_prefix(settings.table_prefix), client
    except DynamoDBLocalError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def ring_store(settings: Settings, *, create_tables: bool = False,
               before_creating: Callable[[Any], None] | None = None) -> Iterator[Any]:
    """The key ring's store on the configured DynamoDB (a running service's, or a DynamoDB Local of the data
    directory), the operator named on every audit line; `create_tables` creates the missing tables first,
    after `before_creating(store)`, which may refuse."""
    from citylogin.operator import operator_name
    from common import dynamo
    from common.audit import operator_acting
    from common.key_encryption import key_encryptor
    from common.key_ring_store import KeyRingStore

    with command_dynamodb(settings) as (settings, tables, client):
        encryptor = config_errors(lambda: key_encryptor(settings))
        store = KeyRingStore(client, tables.key_ring, encryptor)
        with operator_acting(operator_name(settings)):
            if before_creating is not None:
                before_creating(store)
            if create_tables:
                dynamo.ensure_tables(client, tables)
            yield store


def command_audit(event: Any, **fields: Any) -> None:
    """Key changes go into the audit stream (and CITYLOGIN_AUDIT_LOG) like the services' events."""
    from common.audit import audit
    from common.log_setup import configure_logging

    configure_logging(command_settings())
    audit(event, **fields)
