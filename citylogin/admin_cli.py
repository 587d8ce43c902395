"""`citylogin admin`: what an operator does to one account (show, lock, unlock, end its sessions,
unbind a device, set its concurrent-device limit). USER is a username, matched as login does.
Nothing printed is secret: no hashes, digests, fingerprints, tokens or keys."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import click

from citylogin.cli_database import command_settings, config_errors, database, dynamodb_start_errors
from citylogin.operator import OPERATOR_HELP, operator_name, remember_operator
from common.config import load_settings
from common.dynamodb_local import DynamoDBLocalError
from common.errors import ApiError

DEFAULT = "default"
MAX_LIMIT = 1000  # the bound of CITYLOGIN_MAX_CONCURRENT_DEVICES


@contextmanager
def _context() -> Iterator:
    """An AppContext on the configured DynamoDB and key ring, as the services build it (tables and
    ring must exist: `citylogin init`); a domain error becomes a one-line CLI error."""
    from common.context import build_context
    from common.audit import operator_acting
    from common.log_setup import configure_logging

    settings = command_settings()
    try:
        with database(settings, share_running=True) as overrides, dynamodb_start_errors():
            settings = config_errors(lambda: load_settings({**overrides, "create_tables": False}))
            configure_logging(settings)  # the admin actions go into the audit stream
            ctx = config_errors(lambda: build_context(settings))
            try:
                with operator_acting(operator_name(settings)):  # named on every audit line
                    yield ctx
            except ApiError as exc:
                raise click.ClickException(exc.detail) from None
    except DynamoDBLocalError as exc:
        raise click.ClickException(str(exc)) from None


def _user(ctx, username: str):
    from accounts import user_service as users

    user = users.find_user(ctx, username=username)
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


@click.group()
@click.option("--operator", default=None, metavar="NAME", help=OPERATOR_HELP)
@click.pass_context
def admin(context: click.Context, operator: str | None) -> None:
    """Operators: inspect, lock and limit one account (USER is a username)."""
    remember_operator(context, operator)


@admin.command()
@click.argument("username", metavar="USER")
def show(username: str) -> None:
    """The account, its devices and its live sessions."""
    from devices import service as devices
    from sessions import service as sessions

    with _context() as ctx:
        user = _user(ctx, username)
        listed = devices.list_devices(ctx, user_uuid=user.user_uuid, current_device_id="")
        live = sessions.live_devices(ctx, user_uuid=user.user_uuid)
        default = ctx.settings.max_concurrent_devices
    for label, value in (("uuid", user.user_uuid), ("username", user.username), ("email", user.email),
                         ("created", user.created_at), ("locked", "yes" if user.locked else "no"),
                         ("limit", _limit_text(user.max_concurrent_devices, default))):
        click.echo(f"{label:9} {value}")
    click.echo(f"devices   {len(listed.devices)}")
    for d in listed.devices:
        click.echo(f"  {d.device_id}  {d.device_name!r}  {d.status}  last login {d.last_login_at or 'never'}")
    click.echo(f"sessions  {len(live)} live")
    for e in live:
        click.echo(f"  {e.session_id}  device {e.device_id}  ip {e.ip or '-'}  "
                   f"last seen {_iso(e.last_seen_epoch)}")


def _limit_text(own: int | None, default: int) -> str:
    def text(n: int) -> str:
        return "unlimited" if n == 0 else str(n)
    return f"{text(default)} (default)" if own is None else f"{text(own)} (set for this user)"


def _iso(epoch: int) -> str:
    from common.timefmt import iso_from_epoch
    return iso_from_epoch(epoch)


@admin.command()
@click.argument("username", metavar="USER")
def lock(username: str) -> None:
    """Refuse every login (403 account_locked) and end every session (reason admin)."""
    from accounts import user_service as users

    with _context() as ctx:
        ended = users.lock_account(ctx, user_uuid=_user(ctx, username).user_uuid)
    click.echo(f"locked {username}; {ended} session(s) ended")


@admin.command()
@click.argument("username", metavar="USER")
def unlock(username: str) -> None:
    """Allow logins again (the sessions the lock ended stay ended)."""
    from accounts import user_service as users

    with _context() as ctx:
        users.unlock_account(ctx, user_uuid=_user(ctx, username).user_uuid)
    click.echo(f"unlocked {username}")


@admin.command("revoke-sessions")
@click.argument("username", metavar="USER")
def revoke_sessions(username: str) -> None:
    """End every session of the account (reason admin); its devices stay registered."""
    from sessions import service as sessions
    from sessions.models import RevokeReason

    with _context() as ctx:
        ended = sessions.end_all_sessions(ctx, user_uuid=_user(ctx, username).user_uuid, reason=RevokeReason.ADMIN)
    click.echo(f"{ended} session(s) of {username} ended")


@admin.command()
@click.argument("username", metavar="USER")
@click.argument("device_id")
def unbind(username: str, device_id: str) -> None:
    """Revoke a device's certificate for good and end its session (reason device_unbound),
    even the account's last device."""
    from devices import service as devices

    with _context() as ctx:
        devices.unbind(ctx, user_uuid=_user(ctx, username).user_uuid, device_id=device_id, by_device=None,
                       confirm_last=True)
    click.echo(f"unbound device {device_id} of {username}")


@admin.command("set-limit")
@click.argument("username", metavar="USER")
@click.argument("limit", metavar="N", required=False)
@click.option("--clear", is_flag=True, help="Go back to CITYLOGIN_MAX_CONCURRENT_DEVICES (same as N = default).")
def set_limit(username: str, limit: str | None, clear: bool) -> None:
    """Devices the account may have logged in at once (0 = unlimited), replacing the configured
    total; `default` or --clear removes it."""
    from accounts import user_service as users

    own = None if clear or limit == DEFAULT else _parse_limit(limit)
    with _context() as ctx:
        users.set_concurrent_limit(ctx, user_uuid=_user(ctx, username).user_uuid, limit=own)
        default = ctx.settings.max_concurrent_devices
    click.echo(f"limit of {username}: {_limit_text(own, default)}")


def _parse_limit(value: str | None) -> int:
    if value is None:
        raise click.UsageError("give N, `default` or --clear")
    if not value.isdigit() or int(value) > MAX_LIMIT:
        raise click.BadParameter(f"a whole number from 0 to {MAX_LIMIT}, or `default`", param_hint="N")
    return int(value)


@admin.command("finish-deletions")
def finish_deletions() -> None:
    """Finish every account deletion begun more than CITYLOGIN_DELETION_SETTLE_SECONDS ago, and
    make the last pass of those finished that long ago (what each process's sweeper does)."""
    from flows import deletion as deletion_service

    with _context() as ctx:
        acted = deletion_service.sweep_deletions(ctx)
    click.echo(f"{acted} account deletion(s) finished or closed")
