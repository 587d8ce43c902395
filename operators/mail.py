"""The operator's view of the mail outbox (SPEC §7): the mail waiting to go (since when, its tries, its next
try), and the mail given up (undelivered), re-sent or dropped.
Each re-send or drop is an operator action (admin): one audit line, and a row in the account's history
and audit trail while the account exists. Nothing shown is secret: a mail's address and contents stay
sealed in the outbox, and only its id, event, account, times, tries and last error are listed."""
from __future__ import annotations

from typing import Any, Callable

from accounts import user_service as users
from accounts.models import Role
from common.errors import ErrorCode, NotFound
from common.timefmt import iso_from_epoch
from operators.service import Operator, ReasonRequired, need
from common.mail.outbox_store import OutboxStore, is_mail_id
from sessions import service as sessions
from common.web.audit import AuditEvent, audit, operator_acting
from common.runtime.context import AppContext

RESEND, DROP = "mail_resend", "mail_drop"


class MailNotFound(NotFound):
    code, detail = ErrorCode.MAIL_NOT_FOUND, ("No undelivered mail has this id (sent meanwhile, re-sent, dropped, "
                                              "or never one).")


def _store(ctx: AppContext) -> OutboxStore:
    return OutboxStore(ctx.dynamodb, ctx.tables.mail_outbox)


def undelivered(ctx: AppContext, *, operator: Operator) -> list[dict[str, Any]]:
    """The mail given up, oldest first: what an operator may re-send or drop."""
    need(operator, Role.ADMIN)
    return [_row(item) for item in _store(ctx).undelivered()]


def waiting(ctx: AppContext, *, operator: Operator) -> list[dict[str, Any]]:
    """The mail not sent yet nor given up, the longest waiting first: since when it is tried, its tries,
    when it is tried next (None: a sender is trying it now), and why its last try failed."""
    need(operator, Role.ADMIN)
    now = ctx.now().timestamp()
    return [_waiting_row(item, now=now) for item in _store(ctx).waiting()]


def _when(item: dict[str, Any], name: str) -> str | None:
    return iso_from_epoch(int(item[name])) if item.get(name) is not None else None


def _row(item: dict[str, Any]) -> dict[str, Any]:
    return {"mail_id": item["mail_id"], "event": item["event"], "user_uuid": item["user_uuid"],
            "written_at": _when(item, "created_at"), "given_up_at": _when(item, "gave_up_at"),
            "attempts": int(item.get("attempts", 0)), "last_error": item.get("last_error")}


def _waiting_row(item: dict[str, Any], *, now: float) -> dict[str, Any]:
    trying = item.get("lease_until") is not None and float(item["lease_until"]) >= now
    return {"mail_id": item["mail_id"], "event": item["event"], "user_uuid": item["user_uuid"],
            "written_at": _when(item, "created_at"), "since": _when(item, "since"),
            "attempts": int(item.get("attempts", 0)), "next_try_at": None if trying else _when(item, "due_at"),
            "trying": trying, "last_error": item.get("last_error")}


def resend(ctx: AppContext, *, operator: Operator, mail_id: str, reason: str | None) -> dict[str, Any]:
    """Due again now, for a new run of tries of CITYLOGIN_MAIL_GIVE_UP_HOURS: the next sender that
    looks (every CITYLOGIN_MAIL_SEND_INTERVAL seconds, in each serving process) sends it."""
    return _act(ctx, operator=operator, mail_id=mail_id, reason=reason, action=RESEND,
                do=lambda store: store.resend(mail_id, now=ctx.now().timestamp()))


def drop(ctx: AppContext, *, operator: Operator, mail_id: str, reason: str | None) -> dict[str, Any]:
    """Delete an undelivered mail for good."""
    return _act(ctx, operator=operator, mail_id=mail_id, reason=reason, action=DROP,
                do=lambda store: store.drop(mail_id))


def _act(ctx: AppContext, *, operator: Operator, mail_id: str, reason: str | None, action: str,
         do: Callable[[OutboxStore], bool]) -> dict[str, Any]:
    need(operator, Role.ADMIN)
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired()
    store = _store(ctx)
    item = store.get(mail_id) if is_mail_id(mail_id) else None
    if item is None or not do(store):
        raise MailNotFound()
    done = {"mail_id": mail_id, "event": item["event"], "user_uuid": item["user_uuid"]}
    with operator_acting(operator.label):
        details = {**operator.details(), "reason": reason, "mail_id": mail_id, "mail_event": item["event"]}
        audit(AuditEvent.OPERATOR_ACTION, action=action, user_uuid=item["user_uuid"], **details)
        user = users.get_user(ctx, user_uuid=item["user_uuid"])
        if user is not None and not user.deleting:  # a deleted account's notice leaves no row behind
            sessions.record_operator_action(ctx, user_uuid=item["user_uuid"], action=action, details=details)
    return done
