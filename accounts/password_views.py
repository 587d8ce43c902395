"""HTTP routes of the account's password: POST /account/password and
POST /account/password_reset(/confirm). Served by the login service (login_app/app_login.py)
and the all-in-one app."""
from __future__ import annotations

from flask import Blueprint, jsonify

from accounts import password_service
from accounts.models import AcceptedResponse, ChangePasswordRequest, PasswordResetConfirm, PasswordResetRequest
from common.caller import current_caller
from common.context import ctx
from common.openapi import operation
from common.validation import parse_body
from session_manager.guard import current_principal, require_session

bp = Blueprint("account_password", __name__, url_prefix="/account")

RESET_ACCEPTED = "If an account has this address, a link to reset its password is on its way."


@bp.post("/password")
@require_session
@operation("Change the password; the current one is asked again", body=ChangePasswordRequest, status=204,
           auth=True, errors=(429,))
def change_password():
    body = parse_body(ChangePasswordRequest)
    password_service.change_password(ctx(), principal=current_principal(), request=body, caller=current_caller())
    return "", 204


@bp.post("/password_reset")
@operation("E-mail a password reset link; the same answer whether or not an account has the address",
           body=PasswordResetRequest, response=AcceptedResponse, status=202, errors=(429,))
def request_password_reset():
    body = parse_body(PasswordResetRequest)
    password_service.request_password_reset(ctx(), email=str(body.email), caller=current_caller())
    return jsonify(AcceptedResponse(message=RESET_ACCEPTED).model_dump()), 202


@bp.post("/password_reset/confirm")
@operation("Set a new password with the token of a reset link; every session ends", body=PasswordResetConfirm,
           status=204)
def confirm_password_reset():
    body = parse_body(PasswordResetConfirm)
    password_service.confirm_password_reset(ctx(), token=body.token, new_password=body.new_password)
    return "", 204
