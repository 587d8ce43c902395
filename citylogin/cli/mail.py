"""`citylogin mail`: the outbox's mail waiting to go (since when, its tries, its next try), and its mail given
up (undelivered after CITYLOGIN_MAIL_GIVE_UP_HOURS, or refused for good), listed, re-sent or dropped.
Nothing printed is secret: a mail's address and contents stay sealed in the outbox."""
from __future__ import annotations

import click

from citylogin.cli.admin import REASON, _acting, _context
from citylogin.cli.output import OperatorGroup
from citylogin.cli.operator import OPERATOR_HELP, remember_operator


@click.group(cls=OperatorGroup)
@click.option("--operator", default=None, metavar="NAME", help=OPERATOR_HELP)
@click.pass_context
def mail(context: click.Context, operator: str | None) -> None:
    """The mail outbox: list the mail waiting to go; list, re-send or drop the mail that could not be delivered."""
    remember_operator(context, operator)


@mail.command("list")
def list_mail() -> None:
    """The mail waiting to go, the longest waiting first (since when it is tried, its tries, its next try),
    then the undelivered mail, oldest first (when it was written and given up): each one's id, event,
    account, tries and last error, never its address or contents. At most 1000 of each."""
    from operators import mail as operator_mail

    with _context() as ctx:
        waiting = operator_mail.waiting(ctx, operator=_acting(ctx))
        given_up = operator_mail.undelivered(ctx, operator=_acting(ctx))
    if not waiting:
        click.echo("no mail waits to go")
    for row in waiting:
        next_try = "being tried now" if row["trying"] else f"next try {row['next_try_at'] or '-'}"
        click.echo(f"waiting   {row['mail_id']}  {row['event']}  user {row['user_uuid']}  since {row['since'] or '-'}  "
                   f"{tries(row['attempts'])}  {next_try}  {row['last_error'] or '-'}")
    if not given_up:
        click.echo("no undelivered mail")
    for row in given_up:
        click.echo(f"given up  {row['mail_id']}  {row['event']}  user {row['user_uuid']}  written "
                   f"{row['written_at']}  given up {row['given_up_at'] or '-'}  {tries(row['attempts'])}  "
                   f"{row['last_error'] or '-'}")


def tries(count: int) -> str:
    return "1 try" if count == 1 else f"{count} tries"


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
