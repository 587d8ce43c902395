"""`citylogin admin`: what an operator does to one account (show, lock, unlock, end its sessions,
unbind a device, set its concurrent-device limit, export its data). USER is a username, matched as login does.
Nothing printed is secret: no hashes, digests, tokens or private keys (`export` prints a person's data, with
their public certificates and keys)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, overload

import click

from citylogin.cli.database import command_settings, config_errors, database, dynamodb_start_errors
from citylogin.cli.output import OperatorGroup
from citylogin.cli.operator import OPERATOR_HELP, operator_name, remember_operator
from common.config import load_settings
from common.errors import ApiError
from common.database.dynamodb_local import DynamoDBLocalError

if TYPE_CHECKING:
    from accounts.models import UserRecord
    from common.config import Settings
    from operators.models import ActionRequest, LimitRequest, RoleRequest
    from operators.service import Operator
    from common.runtime.context import AppContext

DEFAULT = "default"
MAX_LIMIT = 1000  # the bound of CITYLOGIN_MAX_CONCURRENT_DEVICES


@contextmanager
def _context() -> Iterator[AppContext]:
    """An AppContext on the configured DynamoDB and key ring, as the services build it (tables and
    ring must exist: `citylogin init`); a domain error becomes a one-line CLI error."""
    from common.brand import using
    from common.web.audit import operator_acting
    from common.runtime.context import build_context
    from common.web.log_setup import configure_logging

    settings = command_settings()
    served = service_may_send(settings)
    try:
        with database(settings, share_running=True) as overrides, dynamodb_start_errors():
            settings = config_errors(lambda: load_settings({**overrides, "create_tables": False}))
            configure_logging(settings)  # the admin actions go into the audit stream
            ctx = config_errors(lambda: build_context(settings))
            # The mail of an action only goes into the outbox: the running service renders and sends it with
            # its own notifier, brand and public URL; this shell's would print it, its link too, right here.
            ctx.notifier.delivers = False
            try:
                with operator_acting(operator_name(settings)), using(ctx.brand):  # named on every audit line
                    yield ctx
            except ApiError as exc:
                raise click.ClickException(exc.detail) from None
            say_mail(ctx, served=served)
    except DynamoDBLocalError as exc:
        raise click.ClickException(str(exc)) from None


def service_may_send(settings: Settings) -> bool:
    """Whether a citylogin service may send what a command writes to the outbox: one runs on this machine,
    or the tables are a DynamoDB whose services may run on other hosts (an endpoint, Amazon DynamoDB)."""
    from citylogin.server.running_services import running

    return bool(settings.dynamodb_endpoint_url or settings.kms_key_id or running(settings))


def say_mail(ctx: AppContext, *, served: bool) -> None:
    """On stderr, where the mail the command wrote is: with the running service, which sends it within
    its CITYLOGIN_MAIL_SEND_INTERVAL; or waiting in the outbox until one runs. Never its address or link."""
    written = ctx.notifier.written
    if not written:
        return
    what = "the mail to the person" if len(written) == 1 else f"the {len(written)} mails to the person"
    if served:
        click.echo(f"{what} is in the outbox: the running citylogin sends it within seconds, with its own "
                   "settings (`citylogin mail list` shows mail it gave up on)", err=True)
    else:
        click.echo(f"{what} waits in the outbox: no citylogin serve runs; it goes when one does", err=True)


def _user(ctx: AppContext, username: str) -> UserRecord:
    from accounts import user_service as users

    user = users.find_user(ctx, username=username)
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


@click.group(cls=OperatorGroup)
@click.option("--operator", default=None, metavar="NAME", help=OPERATOR_HELP)
@click.pass_context
def admin(context: click.Context, operator: str | None) -> None:
    """Operators: inspect, lock and limit one account (USER is a username), grant roles. The console at
    /admin/ does the same through the admin API without database credentials."""
    remember_operator(context, operator)


@admin.command()
@click.argument("username", metavar="USER")
def show(username: str) -> None:
    """The account, its devices and its live sessions (the console's account page)."""
    from operators import service as operators

    with _context() as ctx:
        page = operators.account_page(ctx, operator=_acting(ctx), user_uuid=_user(ctx, username).user_uuid)
    for label, value in (("uuid", page.user_uuid), ("username", page.username), ("email", page.email),
                         ("created", page.created_at), ("locked", "yes" if page.locked else "no"),
                         ("paused", page.password_locked_until or "no"), ("roles", ", ".join(page.roles) or "-"),
                         ("limit", _limit_text(page.limit, page.default_limit))):
        click.echo(f"{label:9} {value}")
    click.echo(f"devices   {len(page.devices)}")
    for d in page.devices:
        click.echo(f"  {d.device_id}  {d.device_name!r}  {d.status}  last login {d.last_login_at or 'never'}")
    live = [s for s in page.sessions if s.status == "active"]
    click.echo(f"sessions  {len(live)} live")
    for s in live:
        click.echo(f"  {s.session_id}  device {s.device_id}  ip {s.ip or '-'}  last seen {s.last_seen_at}")


def _limit_text(own: int | None, default: int) -> str:
    def text(n: int) -> str:
        return "unlimited" if n == 0 else str(n)
    return f"{text(default)} (default)" if own is None else f"{text(own)} (set for this user)"


REASON = click.option("--reason", required=True, metavar="TEXT",
                      help="Why (required): named in the audit stream and the account's audit trail.")


def _acting(ctx: AppContext) -> Operator:
    """The CLI's operator: it holds the database's own credentials, so it acts as an admin, also on admins."""
    from accounts.models import Role
    from operators.service import Operator

    return Operator(role=Role.ADMIN, name=operator_name(ctx.settings), cli=True)


@overload
def _request(reason: str, *, limit: int | None) -> LimitRequest: ...


@overload
def _request(reason: str, *, role: str, grant: bool) -> RoleRequest: ...


@overload
def _request(reason: str) -> ActionRequest: ...


def _request(reason: str, **fields: Any) -> ActionRequest:
    from operators.models import ActionRequest, LimitRequest, RoleRequest

    model = LimitRequest if "limit" in fields else RoleRequest if "role" in fields else ActionRequest
    return model.model_validate({"reason": reason, **fields})


@admin.command()
@click.argument("username", metavar="USER")
@REASON
def lock(username: str, reason: str) -> None:
    """Refuse every login (403 account_locked) and end every session (reason admin)."""
    from operators import service as operators

    with _context() as ctx:
        done = operators.lock(ctx, operator=_acting(ctx), user_uuid=_user(ctx, username).user_uuid,
                              request=_request(reason))
        ended = done["sessions_ended"]
    click.echo(f"locked {username}; {ended} session(s) ended")


@admin.command()
@click.argument("username", metavar="USER")
@REASON
def unlock(username: str, reason: str) -> None:
    """Allow logins again, also after wrong passwords paused them (the sessions the lock ended stay ended)."""
    from operators import service as operators

    with _context() as ctx:
        operators.unlock(ctx, operator=_acting(ctx), user_uuid=_user(ctx, username).user_uuid,
                         request=_request(reason))
    click.echo(f"unlocked {username}")


@admin.command("revoke-sessions")
@click.argument("username", metavar="USER")
@REASON
def revoke_sessions(username: str, reason: str) -> None:
    """End every session of the account (reason admin); its devices stay registered."""
    from operators import service as operators

    with _context() as ctx:
        done = operators.revoke_sessions(ctx, operator=_acting(ctx), user_uuid=_user(ctx, username).user_uuid,
                                         request=_request(reason))
    click.echo(f"{done['sessions_ended']} session(s) of {username} ended")


@admin.command()
@click.argument("username", metavar="USER")
@click.argument("device_id")
@REASON
def unbind(username: str, device_id: str, reason: str) -> None:
    """Revoke a device's certificate for good and end its session (reason device_unbound),
    even the account's last device."""
    from operators import service as operators

    with _context() as ctx:
        operators.unbind_device(ctx, operator=_acting(ctx), user_uuid=_user(ctx, username).user_uuid,
                                device_id=device_id, request=_request(reason))
    click.echo(f"unbound device {device_id} of {username}")


@admin.command("set-limit")
@click.argument("username", metavar="USER")
@click.argument("limit", metavar="N", required=False)
@click.option("--clear", is_flag=True, help="Go back to CITYLOGIN_MAX_CONCURRENT_DEVICES (same as N = default).")
@REASON
def set_limit(username: str, limit: str | None, clear: bool, reason: str) -> None:
    """Devices the account may have logged in at once (0 = unlimited), replacing the configured
    total; `default` or --clear removes it."""
    from operators import service as operators

    own = None if clear or limit == DEFAULT else _parse_limit(limit)
    with _context() as ctx:
        operators.set_limit(ctx, operator=_acting(ctx), user_uuid=_user(ctx, username).user_uuid,
                            request=_request(reason, limit=own))
        default = ctx.settings.max_concurrent_devices
    click.echo(f"limit of {username}: {_limit_text(own, default)}")


def _parse_limit(value: str | None) -> int:
    if value is None:
        raise click.UsageError("give N, `default` or --clear")
    if not value.isdigit() or int(value) > MAX_LIMIT:
        raise click.BadParameter(f"a whole number from 0 to {MAX_LIMIT}, or `default`", param_hint="N")
    return int(value)


@admin.command("resend-verification")
@click.argument("username", metavar="USER")
@REASON
def resend_verification(username: str, reason: str) -> None:
    """Send the account's address its verification link again, unless it is verified."""
    from operators import service as operators

    with _context() as ctx:
        done = operators.resend_verification(ctx, operator=_acting(ctx), user_uuid=_user(ctx, username).user_uuid,
                                             request=_request(reason))
    click.echo(f"verification link of {username} made: it goes by mail" if done["sent"] else
               f"nothing sent: the address of {username} is verified, or not the account's")


@admin.command("password-reset")
@click.argument("username", metavar="USER")
@REASON
def password_reset(username: str, reason: str) -> None:
    """Mail the person a password reset link (nothing changes until they use it)."""
    from operators import service as operators

    with _context() as ctx:
        operators.start_password_reset(ctx, operator=_acting(ctx), user_uuid=_user(ctx, username).user_uuid,
                                       request=_request(reason))
    click.echo(f"password reset link for {username} made: it goes by mail to the person alone")


@admin.command()
@click.argument("username", metavar="USER")
@REASON
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None, metavar="FILE",
              help="Write the document to FILE (mode 0600, only once it is whole) instead of standard output.")
@click.option("--format", "form", type=click.Choice(["json", "html"]), default="json", show_default=True,
              help="json: the machine-readable document; html: its readable copy, a printable page in the person's "
                   "language.")
@click.option("--time-zone", default=None, metavar="ZONE",
              help="The IANA time zone (Europe/Paris) of the readable copy's dates; UTC, said so, without one.")
def export(username: str, reason: str, output: str | None, form: str, time_zone: str | None) -> None:
    """Everything stored about the person, as the JSON document of Download my data (with who acted on
    the account and why), or its readable copy (--format html), to hand them for an access or portability
    request. No secret, hash or digest."""
    from operators import export as operator_export
    from common import timefmt

    if time_zone is not None and timefmt.time_zone(time_zone) is None:
        raise click.BadParameter(f"{time_zone!r} is not an IANA time zone this host knows (such as Europe/Paris)",
                                 param_hint="--time-zone")
    with _context() as ctx:
        document = operator_export.export_account(ctx, operator=_acting(ctx), user_uuid=_user(ctx, username).user_uuid,
                                                  request=_request(reason))
        text = _exported_text(ctx, document, form=form, time_zone=time_zone)
    if output is None:
        click.echo(text, nl=False)
        return
    _write_private(Path(output), text)
    click.echo(f"data of {username} written to {output}", err=True)


def _exported_text(ctx: AppContext, document: dict[str, Any], *, form: str, time_zone: str | None) -> str:
    """The document as JSON, or its readable copy as one HTML page (flows/readable_html.py)."""
    import json

    from flows.readable_html import readable_page

    if form == "json":
        return json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    return readable_page(document, settings=ctx.settings, locale=document["users"][0].get("locale", "en"),
                         zone_name=time_zone, product=ctx.brand.name)


def _write_private(path: Path, text: str) -> None:
    """`text` into `path`, readable by its owner alone, whole or not at all (a file beside it, then a rename)."""
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(partial, path)


ROLES = click.Choice(["viewer", "support", "admin"])


@admin.command()
@click.argument("username", metavar="USER")
@click.argument("role", metavar="ROLE", type=ROLES)
@click.option("--reason", default="citylogin admin grant", show_default=True, metavar="TEXT",
              help="Why: named in the audit stream and the account's audit trail.")
def grant(username: str, role: str, reason: str) -> None:
    """Give the account an operator role (viewer, support or admin): the first admin is made here."""
    _change_role(username, role, granted=True, reason=reason)
    click.echo(f"{username} holds the role {role}")


@admin.command()
@click.argument("username", metavar="USER")
@click.argument("role", metavar="ROLE", type=ROLES)
@click.option("--reason", default="citylogin admin revoke", show_default=True, metavar="TEXT",
              help="Why: named in the audit stream and the account's audit trail.")
def revoke(username: str, role: str, reason: str) -> None:
    """Take an operator role away; the account's next admin call is refused (403 forbidden). The last
    account with the admin role keeps it: grant it to another first."""
    _change_role(username, role, granted=False, reason=reason)
    click.echo(f"{username} no longer holds the role {role}")


def _change_role(username: str, role: str, *, granted: bool, reason: str) -> None:
    from accounts import user_service as users
    from operators import service as operators

    with _context() as ctx:
        if role == "admin":
            # Admins made before they were counted: counted now (a grant or a revoke), so that the last
            # admin keeps the role and an admin's account can be deleted while another admin is left.
            users.count_admins(ctx)
        operators.change_role(ctx, operator=_acting(ctx), user_uuid=_user(ctx, username).user_uuid,
                              request=_request(reason, role=role, grant=granted))


@admin.command("finish-deletions")
def finish_deletions() -> None:
    """Finish every account deletion begun more than CITYLOGIN_DELETION_SETTLE_SECONDS ago, and
    make the last pass of those finished that long ago (what each process's sweeper does)."""
    from flows import deletion as deletion_service

    with _context() as ctx:
        acted = deletion_service.sweep_deletions(ctx)
    click.echo(f"{acted} account deletion(s) finished or closed")
