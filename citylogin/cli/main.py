"""The `citylogin` command: serve, dynamodb-local, init, keys list/rotate/retire/backup/restore, password-parameters
list/record/retire, crl-sync, client, admin, apps, idp, mail, accounts import.

Each subcommand is imported only when it runs (citylogin.cli.lazy): `citylogin client login` on a laptop loads
the device's client, not the DynamoDB, Flask and operator code the service's commands need."""
from __future__ import annotations

import click

from citylogin.cli.lazy import LazyGroup
from common.version import running_version

# Each subcommand: the module that holds it and its name there.
COMMANDS = {
    "serve": "citylogin.cli.service:serve",
    "dynamodb-local": "citylogin.cli.service:dynamodb_local",
    "init": "citylogin.cli.service:init",
    "keys": "citylogin.cli.keys:keys",
    "password-parameters": "citylogin.cli.password_parameters:password_parameters",
    "crl-sync": "citylogin.cli.crl_sync:crl_sync",
    "client": "citylogin.client.cli:client",
    "admin": "citylogin.cli.admin:admin",
    "apps": "citylogin.cli.apps.commands:apps",
    "idp": "citylogin.cli.idp:idp",
    "mail": "citylogin.cli.mail:mail",
    "accounts": "citylogin.cli.accounts_import:accounts",
}


def _print_version(context: click.Context, _param: click.Parameter, wanted: bool) -> None:
    if wanted and not context.resilient_parsing:
        click.echo(f"citylogin {running_version()}")
        context.exit()


@click.group(cls=LazyGroup, commands_at=COMMANDS)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Print the installed citylogin's version (as /healthz and the console's footer say it) and exit.")
def main() -> None:
    """citylogin: accounts, device certificates, QR pairing and sessions."""


if __name__ == "__main__":
    main()
