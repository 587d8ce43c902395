"""`citylogin apps registration-token`: initial access tokens for apps that register themselves at
POST /oidc/register (RFC 7591, SPEC §14). A token is printed once; citylogin keeps only its digest."""
from __future__ import annotations

import json

import click

from citylogin.cli.admin import _context


def _duration(_context_: click.Context, _param: click.Parameter, value: str) -> int:
    from relying_parties.registration_tokens import duration_seconds

    seconds = duration_seconds(value)
    if seconds is None:
        raise click.BadParameter("a number of seconds, or of minutes, hours or days (30m, 12h, 7d), up to 366d")
    return seconds


@click.command("registration-token")
@click.option("--expires-in", "expires_in", default="1d", show_default=True, callback=_duration, metavar="DURATION",
              help="How long the token registers apps: seconds, or 30m, 12h, 7d (at most 366d).")
@click.option("--uses", default=1, show_default=True, type=click.IntRange(1, 10_000),
              help="How many apps it may register.")
@click.option("--json", "as_json", is_flag=True, help="Print the token and its record as one JSON object.")
def registration_token(expires_in: int, uses: int, as_json: bool) -> None:
    """Make an initial access token for POST /oidc/register (RFC 7591) and print it once: whoever holds it
    may register up to --uses apps until it expires."""
    from relying_parties import registration_tokens
    from common.web.audit import current_operator

    with _context() as ctx:
        made = registration_tokens.make_token(ctx, expires_in=expires_in, uses=uses, created_by=current_operator())
    if as_json:
        click.echo(json.dumps({**made.record.public(), "token": made.token}))
        return
    click.echo(f"id     {made.record.token_id}")
    click.echo(f"token  {made.token}")
    click.echo(f"It registers up to {uses} app(s) until {made.record.public()['expires_at']}; it is shown only now "
               "(citylogin keeps only its digest). Revoke it with `citylogin apps revoke-registration-token ID`.")


@click.command("registration-tokens")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def registration_tokens_list(as_json: bool) -> None:
    """The initial access tokens kept, newest first (never the token): id, expiry, uses left."""
    from relying_parties import registration_tokens

    with _context() as ctx:
        listed = registration_tokens.list_tokens(ctx)
    if as_json:
        click.echo(json.dumps([token.public() for token in listed]))
        return
    for token in listed:
        shown = token.public()
        click.echo(f"{token.token_id}  expires {shown['expires_at']}  uses left {token.uses_left} of {token.uses}")


@click.command("revoke-registration-token")
@click.argument("token_id")
def revoke_registration_token(token_id: str) -> None:
    """Revoke an initial access token: it registers nothing more (the apps it registered stay)."""
    from relying_parties import registration_tokens

    with _context() as ctx:
        registration_tokens.revoke_token(ctx, token_id=token_id)
    click.echo(f"revoked initial access token {token_id}")
