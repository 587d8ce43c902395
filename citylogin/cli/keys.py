"""`citylogin keys`: the key ring's CA, JWT signing keys and refresh-token secrets, in DynamoDB (list, rotate,
retire, backup, restore)."""
from __future__ import annotations

import click

from citylogin.cli.database import command_audit, command_settings, config_errors, ring_store
from citylogin.cli.key_backup import backup_keys, restore_keys
from citylogin.cli.operator import OPERATOR_HELP, remember_operator
from citylogin.cli.output import OperatorGroup
from common.web.audit_events import AuditEvent


@click.group(cls=OperatorGroup)
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
