"""`citylogin apps`: the apps that use citylogin (SPEC §11). A client secret is printed once, at
`add` and `rotate-secret`; citylogin keeps only its digest."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import click

from citylogin.admin_cli import _context
from citylogin.operator import OPERATOR_HELP, remember_operator

NAME_MAX = 100


def _push_url(_context_: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment or len(value) > 2048:
        raise click.BadParameter("an absolute http(s) URL without a fragment")
    return value


def _name(_context_: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.strip() or len(value) > NAME_MAX or not value.isprintable():
        raise click.BadParameter(f"1 to {NAME_MAX} printable characters")
    return value.strip()


@click.group()
@click.option("--operator", default=None, metavar="NAME", help=OPERATOR_HELP)
@click.pass_context
def apps(context: click.Context, operator: str | None) -> None:
    """The apps whose API servers check citylogin's tokens and receive its session events."""
    remember_operator(context, operator)


def _print_credentials(credentials, as_json: bool) -> None:
    app = credentials.app
    if as_json:
        click.echo(json.dumps({**app.public(), "client_secret": credentials.client_secret}))
        return
    click.echo(f"client_id      {app.client_id}")
    click.echo(f"client_secret  {credentials.client_secret}")
    click.echo("The secret is shown only now; citylogin keeps only its digest.")


@apps.command()
@click.argument("name", callback=_name)
@click.option("--push-url", default=None, callback=_push_url, metavar="URL",
              help="Where to POST each session-revoked event (RFC 8935); without it the app polls.")
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as one JSON object.")
def add(name: str, push_url: str | None, as_json: bool) -> None:
    """Register an app; print its client_id and client_secret once."""
    from apps import service

    with _context() as ctx:
        credentials = service.add_app(ctx, name=name, push_url=push_url)
    _print_credentials(credentials, as_json)


@apps.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def list_apps(as_json: bool) -> None:
    """Every app, oldest first."""
    from apps import service

    with _context() as ctx:
        listed = service.list_apps(ctx)
    if as_json:
        click.echo(json.dumps([app.public() for app in listed]))
        return
    for app in listed:
        click.echo(f"{app.client_id}  {app.name!r}  {'push ' + app.push_url if app.push_url else 'poll'}  "
                   f"added {app.created_at}")


@apps.command()
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def show(client_id: str, as_json: bool) -> None:
    """One app (never its secret)."""
    from apps import service

    with _context() as ctx:
        app = service.show_app(ctx, client_id=client_id)
    if as_json:
        click.echo(json.dumps(app.public()))
        return
    for label, value in app.public().items():
        click.echo(f"{label:18} {value if value is not None else '-'}")


@apps.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as one JSON object.")
def rotate_secret(client_id: str, as_json: bool) -> None:
    """Replace the app's secret (the old one stops working within seconds on every host); print the new one once."""
    from apps import service

    with _context() as ctx:
        credentials = service.rotate_secret(ctx, client_id=client_id)
    _print_credentials(credentials, as_json)


@apps.command()
@click.argument("client_id")
def remove(client_id: str) -> None:
    """Remove the app: its credentials stop working and it receives no more events."""
    from apps import service

    with _context() as ctx:
        service.remove_app(ctx, client_id=client_id)
    click.echo(f"removed app {client_id}")
