"""The commands that run citylogin and prepare its data: `citylogin serve`, `citylogin dynamodb-local` and
`citylogin init`."""
from __future__ import annotations

import click

from citylogin.cli.database import command_settings, config_errors, ring_store, stop_on_sigterm
from citylogin.cli.output import OperatorCommand
from citylogin.server import gunicorn_config
from common.database import dynamo
from common.database.dynamodb_local import DynamoDBLocal, DynamoDBLocalError


@click.command()
@click.option("--host", default=None, help="Interface to bind, and the host of the address it announces "
              "(default CITYLOGIN_HOST, localhost; 0.0.0.0 for every interface).")
@click.option("--port", default=None, type=int, help="Port (default CITYLOGIN_PORT, 5000).")
@click.option("--workers", default=None, type=click.IntRange(min=1),
              help=f"gunicorn's worker processes, each with {gunicorn_config.threads} threads (default "
              f"{gunicorn_config.workers}, as in production).")
@click.option("--dev", is_flag=True, help="werkzeug's development server instead, in one process, started again "
              "when the code changes: for working on citylogin, not for production.")
def serve(host: str | None, port: int | None, workers: int | None, dev: bool) -> None:
    """Run every service and the web UI on one port, with DynamoDB Local unless configured: under gunicorn
    with citylogin's worker, as production runs it (werkzeug's development server with --dev, or on a
    system other than Linux)."""
    from citylogin.server.serve import run_serve

    run_serve(host=host, port=port, workers=workers, dev=dev)


@click.command("dynamodb-local")
@click.option("--port", default=None, type=click.IntRange(0, 65535),
              help="Its port (default CITYLOGIN_DYNAMODB_LOCAL_PORT, else 8000); 0: any free port (the line it "
                   "prints names it).")
@click.option("--in-memory", is_flag=True, help="Keep nothing on disk.")
def dynamodb_local(port: int | None, in_memory: bool) -> None:
    """Run DynamoDB Local alone, for several service processes to share."""
    settings = command_settings()
    stop_on_sigterm()
    db_path = None if in_memory else (settings.data_dir / "dynamodb").resolve()
    chosen, setting = ((port, "--port") if port is not None
                       else (settings.dynamodb_local_port or 8000, "CITYLOGIN_DYNAMODB_LOCAL_PORT"))
    try:
        with DynamoDBLocal(port=chosen, db_path=db_path, port_setting=setting) as local:
            click.echo(f"DynamoDB Local on {local.endpoint_url}; in another shell:\n"
                       f"  export CITYLOGIN_DYNAMODB_ENDPOINT_URL={local.endpoint_url}")
            local.wait()
    except KeyboardInterrupt:
        pass
    except DynamoDBLocalError as exc:
        raise click.ClickException(str(exc)) from None


@click.command(cls=OperatorCommand)
def init() -> None:
    """Create the tables and the key ring if missing (idempotent); a new ring imports the CA and keys
    of the data directory or the CA settings."""
    from common.keys.ring import ensure_ring
    from common.keys.ring_import import initial_entries, legacy_key_files

    settings = command_settings()
    with ring_store(settings, create_tables=True) as store:
        _, created = config_errors(lambda: ensure_ring(store, initial=lambda: initial_entries(settings)))
        click.echo(f"tables: {', '.join(dynamo.TableNames.with_prefix(settings.table_prefix).all())}")
        if not created:
            click.echo(f"key ring: already in {store.table}; nothing imported")
            return
        click.echo(f"key ring: created in {store.table}")
        imported = legacy_key_files(settings)
        if imported:
            click.echo("imported into the ring (keep an offline backup, then delete them): "
                       + ", ".join(str(p) for p in imported))
