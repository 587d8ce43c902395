"""`citylogin mail`: the outbox's mail given up (undelivered after CITYLOGIN_MAIL_GIVE_UP_HOURS, or
refused for good), listed, re-sent or dropped. Nothing printed is secret: a mail's address and
contents stay sealed in the outbox."""
from __future__ import annotations

import click

from citylogin.cli.admin import REASON, _acting, _context
from citylogin.cli.output import OperatorGroup
from citylogin.cli.operator import OPERATOR_HELP, remember_operator


@click.group(cls=OperatorGroup)
@click.option("--operator", default=None, metavar="NAME", help=OPERATOR_HELP)
@click.pass_context
def mail(context: click.Context, operator: str | None) -> None:
    """The mail outbox: list, re-send or drop the mail that could not be delivered."""
    remember_operator(context, operator)


@mail.command("list")
def list_mail() -> None:
    """The undelivered mail, oldest first: its id, event, account, when it was written and given up,
    its tries and the last error (never its address or contents)."""
    from operators import mail as operator_mail

    with _context() as ctx:
        rows = operator_mail.undelivered(ctx, operator=_acting(ctx))
    if not rows:
        click.echo("no undelivered mail")
    for row in rows:
        click.echo(f"{row['mail_id']}  {row['event']}  user {row['user_uuid']}  written {row['written_at']}  "
                   f"given up {row['given_up_at'] or '-'}  {row['attempts']} tries  {row['last_error'] or '-'}")


@mail.command()
@click.argument("mail_id", metavar="ID")
@REASON
def resend(mail_id: str, reason: str) -> None:
    """Try an undelivered mail again: due now, for another CITYLOGIN_MAIL_GIVE_UP_HOURS of tries, sent by
    the running citylogin (its notifier, brand and public URL)."""
    from operators import mail as operator_mail

    with _context() as ctx:
        done = operator_mail.resend(ctx, operator=_acting(ctx), mail_id=mail_id, reason=reason)
    click.echo(f"mail {mail_id} ({done['event']}) is due again: the running citylogin sends it")


@mail.command()
@click.argument("mail_id", metavar="ID")
@REASON
def drop(mail_id: str, reason: str) -> None:
    """Delete an undelivered mail for good."""
    from operators import mail as operator_mail

    with _context() as ctx:
        done = operator_mail.drop(ctx, operator=_acting(ctx), mail_id=mail_id, reason=reason)
    click.echo(f"mail {mail_id} ({done['event']}) dropped")
