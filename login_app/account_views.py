"""HTTP routes of /account that reach the devices too: DELETE /account and POST /account/not_me.

Both revoke device certificates, so they live above device_manager rather than in the /account
blueprint of accounts (which sits below device_manager)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from accounts.models import PasswordRequest
from common.caller import current_caller
from common.context import EXTENSION_KEY, ctx
from common.openapi import operation
from common.validation import parse_body
from device_manager import not_me_service
from device_manager.models import NotMeRequest, NotMeResult
from login_app import deletion_service, deletion_sweeper
from session_manager.guard import current_principal, require_session
from session_manager.models import RevokeReason

bp = Blueprint("account_devices", __name__, url_prefix="/account")
# Every process serving deletions also finishes those whose request did not.
bp.record_once(lambda state: deletion_sweeper.start_sweeper(state.app.extensions[EXTENSION_KEY]))


@bp.delete("")
@require_session(accept_ended_reason=RevokeReason.ACCOUNT_DELETED)  # a retry after the deletion ended it
@operation("Delete the account and its data; the password is asked again", body=PasswordRequest, status=204,
           auth=True, errors=(429,))
def delete_account():
    body = parse_body(PasswordRequest)
    deletion_service.delete_account(ctx(), principal=current_principal(), password=body.password,
                                    caller=current_caller())
    return "", 204


@bp.post("/not_me")
@operation('"Wasn\'t you?": remove the device a sign-in or new-device message named', body=NotMeRequest,
           response=NotMeResult)
def not_me():
    body = parse_body(NotMeRequest)
    result = not_me_service.remove_device(ctx(), token=body.token, end_all_sessions=body.end_all_sessions)
    return jsonify(result.model_dump())
