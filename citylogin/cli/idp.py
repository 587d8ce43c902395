"""`citylogin idp`: the upstream providers people sign in with instead of a password (Google, Apple, Microsoft,
any OpenID Provider). A client secret (Apple: the .p8 private key) is read from a file, stored sealed under the
key-encryption key and never printed again: `list` and `show` say only whether one is set."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from citylogin.cli.admin import _context
from citylogin.cli.operator import OPERATOR_HELP, remember_operator
from citylogin.cli.output import OperatorGroup

PRESETS = ["google", "apple", "microsoft", "generic"]


def _secret_file(_context_: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """The file's text (`-`: standard input), never echoed; a file that is missing, unreadable or empty is
    refused naming the file only."""
    if value is None:
        return None
    try:
        text = sys.stdin.read() if value == "-" else Path(value).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.BadParameter(f"{value!r} is not UTF-8 text") from None
    except OSError as error:
        raise click.BadParameter(f"{value!r} cannot be read ({error.strerror or type(error).__name__})") from None
    if not text.strip():
        raise click.BadParameter(f"{value!r} is empty")
    return text


def provider_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options `add` and `update` share: each given one sets its field."""
    options = [
        click.option("--issuer", default=None, metavar="URL",
                     help="The provider's issuer (https); its discovery document is read from there. A preset "
                          "gives its own."),
        click.option("--client-id", default=None, metavar="ID", help="citylogin's client id at the provider."),
        click.option("--client-secret-file", "client_secret", default=None, callback=_secret_file, metavar="FILE",
                     help="A file holding the client secret (- : standard input); it is stored sealed."),
        click.option("--apple-key-file", "apple_private_key", default=None, callback=_secret_file, metavar="FILE",
                     help="--preset apple: the AuthKey_<key id>.p8 file Apple gives; citylogin signs its client "
                          "secret with it (ES256) and renews it."),
        click.option("--apple-team-id", default=None, metavar="ID", help="--preset apple: your Apple team id."),
        click.option("--apple-key-id", default=None, metavar="ID", help="--preset apple: the key's id."),
        click.option("--scope", default=None, metavar="S", help="The scopes asked for, openid among them."),
        click.option("--signup", type=click.Choice(["allow", "deny"]), default=None,
                     help="allow: a person whose identity is linked to no account may make one (the default)."),
        click.option("--display-name", default=None, metavar="NAME",
                     help='Shown as "Continue with NAME" (1 to 40 characters).'),
        click.option("--json", "as_json", is_flag=True, help="Print the provider as one JSON object."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _print(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(view))
        return
    for label, value in view.items():
        click.echo(f"{label:18} {value if value not in (None, '') else '-'}")


@click.group(cls=OperatorGroup)
@click.option("--operator", default=None, metavar="NAME", help=OPERATOR_HELP)
@click.pass_context
def idp(context: click.Context, operator: str | None) -> None:
    """The upstream providers people may sign up and sign in with instead of a password."""
    remember_operator(context, operator)


@idp.command()
@click.argument("name")
@click.option("--preset", type=click.Choice(PRESETS), default="generic", show_default=True,
              help="The provider's defaults and quirks (issuer, scope, how it answers); options given override them.")
@provider_options
def add(name: str, preset: str, client_id: str | None, as_json: bool, **fields: Any) -> None:
    """Add provider NAME (its redirect URI: <public URL>/federation/NAME/callback)."""
    from federation import providers

    if not client_id:
        raise click.UsageError("--client-id is required")
    given = {field: value for field, value in fields.items() if value is not None}
    with _context() as ctx:
        added = providers.add_provider(ctx, name=name, preset=preset, client_id=client_id, **given)
        view = providers.provider_view(ctx.settings, added)
    _print(view, as_json)


@idp.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def list_providers(as_json: bool) -> None:
    """Every provider, enabled or not, by name (never a secret)."""
    from federation import providers

    with _context() as ctx:
        views = [providers.provider_view(ctx.settings, p) for p in providers.list_providers(ctx, include_disabled=True)]
    if as_json:
        click.echo(json.dumps(views))
        return
    if not views:
        click.echo("no providers: add one with `citylogin idp add NAME --preset google --client-id ID "
                   "--client-secret-file FILE`")
    for view in views:
        state = "enabled" if view["enabled"] else "disabled"
        click.echo(f"{view['name']}  {view['display_name']!r}  {view['preset']}  {view['issuer']}  "
                   f"signup {view['signup']}  {state}")


@idp.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def show(name: str, as_json: bool) -> None:
    """One provider: whether its secret is set, never the secret."""
    from federation import providers

    with _context() as ctx:
        view = providers.provider_view(ctx.settings, providers.get_provider(ctx, name, include_disabled=True))
    _print(view, as_json)


@idp.command()
@click.argument("name")
@provider_options
@click.option("--enable/--disable", "enabled", default=None,
              help="Offer the provider to people, or keep it without offering it.")
def update(name: str, as_json: bool, **fields: Any) -> None:
    """Change the options given; the others stay (a new secret file replaces the secret)."""
    from federation import providers

    given = {field: value for field, value in fields.items() if value is not None}
    if not given:
        raise click.UsageError("name at least one option to change")
    with _context() as ctx:
        view = providers.provider_view(ctx.settings, providers.update_provider(ctx, name=name, **given))
    _print(view, as_json)


@idp.command()
@click.argument("name")
def remove(name: str) -> None:
    """Remove the provider: it is offered no more; identities linked through it stay on their accounts."""
    from federation import providers

    with _context() as ctx:
        providers.remove_provider(ctx, name=name)
    click.echo(f"removed provider {name}")
