"""An operator produces a person's data export for them (an access or portability request they
handle): the support role, an account of a lower role, a reason, and an audit row, as every operator
action (operators/service.py); the document is the one the person gets themselves, with who acted on the
account and why, which the person's own export leaves out. Nobody is mailed: the person asked for it."""
from __future__ import annotations

from typing import Any

from accounts.models import Role, UserRecord
from flows import data_export
from operators.models import ActionRequest
from operators.service import Action, Operator, act
from common.web.caller import Caller
from common.runtime.context import AppContext

EXPORT = Action("export", Role.SUPPORT, destructive=False, tells=False)


def export_account(ctx: AppContext, *, operator: Operator, user_uuid: str, request: ActionRequest,
                   caller: Caller | None = None) -> dict[str, Any]:
    """The account's data export; audited (with how many items of each table it held) once it is whole."""
    produced: dict[str, Any] = {}

    def do(user: UserRecord) -> dict[str, Any]:
        produced.update(data_export.export(ctx, user_uuid=user.user_uuid, for_operator=True))
        return {"items": sum(len(produced[section]) for section in data_export.SECTIONS)}
    act(ctx, EXPORT, operator=operator, user_uuid=user_uuid, request=request, caller=caller, do=do)
    return produced
