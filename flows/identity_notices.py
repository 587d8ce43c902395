"""What a link or an unlink of an upstream identity leaves behind (SPEC §16): a mail to the account, in its
language, and a row in its history naming the provider — both entries of the transaction that links or
unlinks, so that they exist if and only if it committed. No Flask here."""
from __future__ import annotations

from dataclasses import dataclass

from accounts.models import UserRecord
from common.database.guarded_write import GuardedWrite
from common.mail.notifier import Notifier, Queued, localized_message, mail_time
from common.runtime.context import AppContext
from common.web.caller import Caller
from federation import providers
from sessions import service as sessions
from sessions.models import HistoryResult


@dataclass(frozen=True)
class Notice:
    """The mail and the history row of one link or unlink, for its transaction; `send` once it committed."""

    mail: Queued
    row: GuardedWrite

    @property
    def writes(self) -> list[GuardedWrite]:
        return [self.mail.write, self.row]


def display_name(ctx: AppContext, name: str) -> str:
    """What the person knows the provider `name` as ("Google"), disabled or not; its name if the operator
    removed it since."""
    try:
        return providers.get_provider(ctx, name, include_disabled=True).display_name
    except providers.IdpNotFound:
        return name


def notice(ctx: AppContext, *, user: UserRecord, linked: bool, provider: str, identity: str | None,
           caller: Caller | None, device_id: str | None = None) -> Notice:
    """The notice of an identity of `provider` (display name) linked to (`linked`) or unlinked from `user`;
    `identity`: what the person knows it by (its e-mail, else nothing)."""
    at = mail_time(ctx.now(), user.locale)
    if linked:
        message = localized_message("identity_linked", user_uuid=user.user_uuid, email=user.email, locale=user.locale,
                                    provider=provider, identity=identity or "", username=user.username, time=at)
    else:
        message = localized_message("identity_unlinked", user_uuid=user.user_uuid, email=user.email,
                                    locale=user.locale, provider=provider, identity=identity or "",
                                    username=user.username, time=at)
    mail = ctx.notifier.queued(message)
    row = sessions.history_row(ctx, user_uuid=user.user_uuid, device_id=device_id,
                               result=HistoryResult.IDENTITY_LINKED if linked else HistoryResult.IDENTITY_UNLINKED,
                               ip=caller.ip if caller else None, user_agent=caller.user_agent if caller else None,
                               provider=provider)
    return Notice(mail=mail, row=row)


def send(notifier: Notifier, done: Notice) -> None:
    """After the transaction that wrote `done` committed."""
    notifier.send_queued(done.mail)
