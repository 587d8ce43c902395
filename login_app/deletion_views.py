"""HTTP route of the account's deletion: DELETE /account.

The deletion revokes the devices as well, so it lives above device_manager rather than in the
/account blueprint (accounts sits below device_manager)."""
from __future__ import annotations

from flask import Blueprint

from accounts.models import PasswordRequest
from common.caller import current_caller
from common.context import ctx
from common.openapi import operation
from common.validation import parse_body
from login_app import deletion_service
from session_manager.guard import current_principal, require_session

bp = Blueprint("account_deletion", __name__, url_prefix="/account")


@bp.delete("")
@require_session
@operation("Delete the account and its data; the password is asked again", body=PasswordRequest, status=204,
           auth=True, errors=(429,))
def delete_account():
    body = parse_body(PasswordRequest)
    deletion_service.delete_account(ctx(), principal=current_principal(), password=body.password,
                                    caller=current_caller())
    return "", 204
