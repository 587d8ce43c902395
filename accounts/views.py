"""HTTP routes of /account: parse, call one service function, shape the answer.

POST /account/recovery_codes checks the password under the lockout, which lives in login_app,
so its route sits in login_app/recovery_views.py (above both) and not here."""
from __future__ import annotations

from flask import Blueprint, jsonify

from accounts import service
from accounts.models import AccountView
from common.context import ctx
from common.openapi import operation
from session_manager.guard import current_principal, require_session

bp = Blueprint("accounts", __name__, url_prefix="/account")


@bp.get("")
@require_session
@operation("The caller's account", response=AccountView, auth=True)
def account():
    return jsonify(service.account_view(ctx(), user_uuid=current_principal().user_uuid).model_dump())
