"""What the commands of `citylogin` (serve, init, keys, admin) run on: the settings, and the DynamoDB
they name or a DynamoDB Local of the data directory; their failures as one-line CLI errors."""
from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

import click

from common.config import ConfigError, Settings, load_settings
from common.database.dynamodb_local import DATA_FILE, ENDPOINT_FILE, DataInUse, DynamoDBLocal

if TYPE_CHECKING:  # imported where used: a command that needs no service starts without it
    from citylogin.server.running_services import RunningService

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


class ConfigProblem(click.ClickException):
    """A ConfigError as a one-line CLI error; `error` is the ConfigError, for a caller that says more."""

    def __init__(self, error: ConfigError) -> None:
        super().__init__(str(error))
        self.error = error


def config_errors(action: Callable[[], T]) -> T:
    """`action()`, its ConfigError a one-line CLI error."""
    try:
        return action()
    except ConfigError as exc:
        raise ConfigProblem(exc) from None


@contextmanager
def database(settings: Settings, *, share_running: bool = False, may_create: bool = False) -> Iterator[dict[str, Any]]:
    """Yields config overrides: none when an endpoint is set, else a DynamoDB Local. The data is never
    opened twice. `serve` and `dynamodb-local` start one on the data directory (DataInUse if another runs
    on it). The operator commands (`share_running`) use the running `citylogin serve` that is theirs, and
    start a DynamoDB Local of their own only on their own data: see `operator_database`."""
    if share_running:
        with operator_database(settings, may_create=may_create) as overrides:
            yield overrides
        return
    if settings.dynamodb_endpoint_url:
        yield {}
        return
    local = DynamoDBLocal(db_path=(settings.data_dir / "dynamodb").resolve(), port=settings.dynamodb_local_port,
                          port_setting="CITYLOGIN_DYNAMODB_LOCAL_PORT")
    local.start()
    click.echo(f"DynamoDB Local: {local.endpoint_url} (data in {local.db_path})", err=True)
    try:
        yield {"dynamodb_endpoint_url": local.endpoint_url}
    finally:
        local.stop()


def operator_service(settings: Settings, *, may_create: bool) -> tuple[Any, list[RunningService]]:
    """(the running service an operator command acts on or None, the services running), as
    citylogin.server.service_choice chooses: none is looked for against Amazon DynamoDB unless named."""
    from citylogin.server.running_services import running
    from citylogin.server.service_choice import chosen_service, named_service, records_apply

    named = named_service()
    if not records_apply(settings, named):
        return None, []
    services = running(settings)
    return chosen_service(settings, services, named, may_create=may_create), services


@contextmanager
def operator_database(settings: Settings, *, may_create: bool) -> Iterator[dict[str, Any]]:
    """Which citylogin an operator command acts on, said on stderr: the running `serve` its settings or folder
    point to, or the one named with --service (citylogin.server.service_choice; refused where that is none of those
    running); else the DynamoDB its settings name, or the data directory's own data in a DynamoDB Local
    started for the command (unless `may_create`, only where there is data). Never a second engine beside a
    running service; a refusal says what to do."""
    chosen, services = operator_service(settings, may_create=may_create)
    if chosen:
        yield _using(settings, chosen)
        return
    if settings.dynamodb_endpoint_url or settings.kms_key_id:
        yield {}  # the DynamoDB the settings name (a KMS key: Amazon DynamoDB's)
        return
    data_dir = settings.data_dir.resolve()
    db_path = data_dir / "dynamodb"
    if not may_create and not (db_path / DATA_FILE).exists() and not (db_path / ENDPOINT_FILE).exists():
        raise click.ClickException(_nothing_here(data_dir, services))
    local = DynamoDBLocal(db_path=db_path)
    try:
        local.start()
    except DataInUse as exc:
        if not exc.endpoint_url:
            raise
        click.echo(f"DynamoDB Local of a running citylogin: {exc.endpoint_url} (data in {db_path})", err=True)
        yield {"dynamodb_endpoint_url": exc.endpoint_url}
        return
    click.echo(f"DynamoDB Local: {local.endpoint_url} (data in {db_path}; no citylogin serve runs on it)", err=True)
    try:
        yield {"dynamodb_endpoint_url": local.endpoint_url}
    except ConfigProblem as problem:
        from common.keys.ring import NoKeyRing

        if isinstance(problem.error, NoKeyRing) and not may_create:
            raise click.ClickException(f"the citylogin data in {data_dir} holds no key ring, and no citylogin serve "
                                       "runs on it: if your citylogin runs from another folder, start it there (or "
                                       "set CITYLOGIN_DATA_DIR to its data directory) and run this command again, "
                                       "or name the running one with --service") from None
        raise
    finally:
        local.stop()


def _using(settings: Settings, service: Any) -> dict[str, Any]:
    """The overrides that reach a running service's tables and key ring, said on stderr."""
    click.echo(f"DynamoDB Local of a running citylogin: {service.dynamodb_endpoint_url} (data in "
               f"{Path(service.data_dir) / 'dynamodb'}); citylogin serve at {service.url}, pid {service.pid}", err=True)
    return {"dynamodb_endpoint_url": service.dynamodb_endpoint_url, "data_dir": service.data_dir,
            "table_prefix": service.table_prefix}


def _nothing_here(data_dir: Path, services: list[RunningService]) -> str:
    """Why a command has no citylogin to act on, and what to do (never `citylogin init`: that makes a new one)."""
    from citylogin.server.service_choice import HOW_TO_CHOOSE, listing

    if services:  # CITYLOGIN_DATA_DIR names another folder than the services' own
        return (f"no citylogin data in {data_dir} (CITYLOGIN_DATA_DIR), and no citylogin running uses it; "
                f"those that run: {listing(services)}. To act on one, {HOW_TO_CHOOSE}")
    return (f"no citylogin runs and there is no citylogin data in {data_dir}: start `citylogin serve` (in its own "
            "terminal, in the folder that holds its data), run this command in that folder, or set "
            "CITYLOGIN_DATA_DIR to its data directory")


class _NoDynamoDB(click.ClickException):
    exit_code = 2  # as the standalone services: nothing to serve from


@contextmanager
def dynamodb_start_errors() -> Iterator[None]:
    """botocore's errors of a start without a usable DynamoDB as one line naming the setting."""
    from common.web.app_factory import DYNAMODB_START_ERRORS, dynamodb_start_problem

    try:
        yield
    except DYNAMODB_START_ERRORS as exc:
        raise _NoDynamoDB(dynamodb_start_problem(exc, name="citylogin")) from None


@contextmanager
def command_dynamodb(settings: Settings, *, may_create: bool = False) -> Iterator[tuple[Settings, Any, Any]]:
    """(settings, table names, client) of the configured DynamoDB for a command (a DynamoDB Local in
    the data directory if none: a running `serve`'s, else its own), with a start's patience rather
    than a request's; a DynamoDB that is not there is one line naming the setting."""
    from common.database import dynamo
    from common.database.dynamodb_local import DynamoDBLocalError
    from common.runtime.context import STARTUP_TIMEOUT

    try:
        with database(settings, share_running=True, may_create=may_create) as overrides, dynamodb_start_errors():
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
    from citylogin.cli.operator import operator_name
    from common.database import dynamo
    from common.keys.encryption import key_encryptor
    from common.keys.ring_store import KeyRingStore
    from common.web.audit import operator_acting

    with command_dynamodb(settings, may_create=create_tables) as (settings, tables, client):
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
    from common.web.audit import audit
    from common.web.log_setup import configure_logging

    configure_logging(command_settings())
    audit(event, **fields)
