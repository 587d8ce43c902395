"""The `citylogin` command: serve, dynamodb-local, init, keys list/rotate/retire/backup/restore, password-parameters
list/record/retire, crl-sync, client, admin."""
from __future__ import annotations


import click

from citylogin.server import gunicorn_config
from citylogin.cli.admin import admin
from citylogin.cli.apps.commands import apps
from citylogin.cli.database import command_audit, command_settings, config_errors, ring_store, stop_on_sigterm
from citylogin.cli.output import OperatorCommand, OperatorGroup
from citylogin.cli.password_parameters import password_parameters
from citylogin.client.cli import client
from citylogin.cli.crl_sync import crl_sync
from citylogin.cli.key_backup import backup_keys, restore_keys
from citylogin.cli.mail import mail
from citylogin.cli.operator import OPERATOR_HELP, remember_operator
from common.version import running_version
from common.database import dynamo
from common.database.dynamodb_local import DynamoDBLocal, DynamoDBLocalError
from common.web.audit_events import AuditEvent


def _print_version(context: click.Context, _param: click.Parameter, wanted: bool) -> None:
    if wanted and not context.resilient_parsing:
        click.echo(f"citylogin {running_version()}")
        context.exit()


@click.group()
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Print the installed citylogin's version (as /healthz and the console's footer say it) and exit.")
def main() -> None:
    """citylogin: accounts, device certificates, QR pairing and sessions."""


@main.command()
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


@main.command("dynamodb-local")
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


@main.command(cls=OperatorCommand)
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


@main.group(cls=OperatorGroup)
@click.option("--operator", default=None, metavar="NAME", help=OPERATOR_HELP)
@click.pass_context
def keys(context: click.Context, operator: str | None) -> None:
    """The key ring: the CA, JWT signing keys and refresh-token secrets, in DynamoDB."""
    remember_operator(context, operator)


@keys.command("list")
def list_keys() -> None:
    """Kinds, kids, ages and states (signing / verify-only); never private material."""
    from common.keys.ring import describe, read_ring

    with ring_store(command_settings()) as store:
        contents = config_errors(lambda: read_ring(store))
        for row in describe(contents):
            click.echo(f"{row['kind']:8} {row['kid']:40} {_age(row['age_seconds']):>8}  {row['state']}")
        click.echo(f"ring version {contents.ring.version} (one per retirement)")


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# common.keys.ring.ROTATED_KINDS, named here without importing the key ring (a command's start stays light)
ROTATED_KIND_NAMES = ("jwt", "jwt_rsa", "jwt_ec", "refresh")


@keys.command("rotate")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(ROTATED_KIND_NAMES),
              help="Rotate only this kind of key (repeatable): jwt (EdDSA, citylogin's tokens and EdDSA ID "
                   "tokens), jwt_rsa (RS256), jwt_ec (ES256), refresh. Every kind by default.")
def rotate_keys(kinds: tuple[str, ...]) -> None:
    """Add a JWT signing key of each kind and a refresh secret (or the kinds named); older ones go on
    verifying until retired."""
    from common.keys.ring import ROTATED_KINDS, rotate

    settings = command_settings()
    with ring_store(settings) as store:
        for entry in config_errors(lambda: rotate(store, kinds=kinds or ROTATED_KINDS)):
            click.echo(f"new {entry.kind} key {entry.kid}")
            command_audit(AuditEvent.KEY_ROTATED, kind=entry.kind, kid=entry.kid)
    click.echo(f"running services sign with them within {settings.key_ring_reload_seconds:g} seconds")


@keys.command("retire")
@click.argument("kid")
@click.option("--force", is_flag=True, help="Retire even if tokens it signed may still be valid (ends them).")
def retire_key(kid: str, force: bool) -> None:
    """Remove an old key from the ring; refused for the newest, and while its tokens may be valid."""
    from common.keys.ring import RetireRefused, read_ring, retire

    settings = command_settings()
    with ring_store(settings) as store:
        try:
            entry = config_errors(lambda: retire(store, kid=kid, settings=settings, force=force))
        except RetireRefused as exc:
            raise click.ClickException(str(exc)) from None
        # Kept outside the table (the audit stream, the operator's notes), the version is what tells a
        # ring restored from before this retirement: it shows a lower one (docs/guides/key-ring.md).
        version = config_errors(lambda: read_ring(store)).ring.version
        command_audit(AuditEvent.KEY_RETIRED, kind=entry.kind, kid=entry.kid, forced=force, ring_version=version)
    click.echo(f"retired {entry.kind} key {entry.kid}; the ring is at version {version}")


keys.add_command(backup_keys)
keys.add_command(restore_keys)
main.add_command(client)
main.add_command(admin)
main.add_command(mail)
main.add_command(apps)
main.add_command(crl_sync)
main.add_command(password_parameters)

if __name__ == "__main__":
    main()
